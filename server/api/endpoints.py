"""Imports every endpoint module so each registers its routes on ``server.api.api``."""

from __future__ import annotations

from server.api import (
    accounts,
    audit,
    comments,
    feedback,
    files,
    imports,
    inbox,
    members,
    notes,
    password_reset,
    preferences,
    projects,
    reports,
    requests,
    tasks,
    tokens,
    waiting,
    webhooks,
    workflow,
    workflow_templates,
)

__all__ = [
    "accounts",
    "audit",
    "comments",
    "feedback",
    "files",
    "imports",
    "inbox",
    "members",
    "notes",
    "password_reset",
    "preferences",
    "projects",
    "reports",
    "requests",
    "tasks",
    "tokens",
    "waiting",
    "webhooks",
    "workflow",
    "workflow_templates",
]
