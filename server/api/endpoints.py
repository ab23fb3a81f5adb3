"""Imports every endpoint module so each registers its routes on ``server.api.api``."""

from __future__ import annotations

from server.api import accounts, comments, inbox, members, notes, projects, tasks, workflow

__all__ = ["accounts", "comments", "inbox", "members", "notes", "projects", "tasks", "workflow"]
