"""Imports every endpoint module so each registers its routes on ``server.api.api``."""

from __future__ import annotations

from server.accounts.routes import (
    accounts,
    members,
    organization,
    passkeys,
    password_reset,
    preferences,
    second_factor,
    sessions,
    sign_in_link,
    staff,
    tokens,
    ws_ticket,
)
from server.activity import routes as activity
from server.audit import routes as audit
from server.board.routes import imports, projects, tasks, workflow, workflow_templates
from server.discussion import routes as comments
from server.feedback import mark_routes as feedback_marks
from server.feedback import routes as feedback
from server.files import routes as files
from server.inbox import routes as inbox
from server.notes import routes as notes
from server.reports import routes as reports
from server.requests import routes as requests
from server.search import routes as search
from server.waiting import routes as waiting
from server.webhooks import routes as webhooks

__all__ = [
    "accounts",
    "activity",
    "audit",
    "comments",
    "feedback",
    "feedback_marks",
    "files",
    "imports",
    "inbox",
    "members",
    "notes",
    "organization",
    "passkeys",
    "password_reset",
    "preferences",
    "projects",
    "reports",
    "requests",
    "search",
    "second_factor",
    "sessions",
    "sign_in_link",
    "staff",
    "tasks",
    "tokens",
    "waiting",
    "webhooks",
    "workflow",
    "workflow_templates",
    "ws_ticket",
]
