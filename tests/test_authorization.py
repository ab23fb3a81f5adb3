"""The authorization matrix: every route x every role, with the exact status, and no leak in any answer.

Roles: owner (admin of A), staff (member of PX), customer (of client X, customer on PX), viewer (of X, viewer on
PX), other_customer (of client Y, on PY only), stranger (owner of organization B), anonymous.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from server.api import api
from server.app import create_app
from tests.conftest import bearer, copy_workspace, make_settings, postgres_database
from tests.workspace import PASSWORD, Workspace, write_seed_blobs

ALL = ("owner", "staff", "customer", "viewer", "other_customer", "stranger", "anonymous")
READ_PX = dict(owner=200, staff=200, customer=200, viewer=200, other_customer=404, stranger=404, anonymous=401)
READ_INTERNAL = dict(owner=200, staff=200, customer=404, viewer=404, other_customer=404, stranger=404, anonymous=401)
MANAGE_PX = dict(owner=200, staff=403, customer=403, viewer=403, other_customer=404, stranger=404, anonymous=401)
STAFF_WRITE_PX = dict(owner=200, staff=200, customer=403, viewer=403, other_customer=404, stranger=404, anonymous=401)
STAFF_WRITE_INTERNAL = dict(
    owner=200, staff=200, customer=404, viewer=404, other_customer=404, stranger=404, anonymous=401
)
ANY_SIGNED_IN = dict(owner=200, staff=200, customer=200, viewer=200, other_customer=200, stranger=200, anonymous=401)
STAFF_ONLY = dict(owner=200, staff=200, customer=403, viewer=403, other_customer=403, stranger=200, anonymous=401)
OWNER_ONLY = dict(owner=200, staff=403, customer=403, viewer=403, other_customer=403, stranger=200, anonymous=401)
ADMIN_ONLY = dict(owner=200, staff=403, customer=403, viewer=403, other_customer=403, stranger=200, anonymous=401)
PARTICIPATE_PX = dict(owner=200, staff=200, customer=200, viewer=403, other_customer=404, stranger=404, anonymous=401)
# Webhooks: staff read them all, managers manage them; customer members read and manage the shared-audience ones.
WEBHOOK_READ_SHARED = dict(
    owner=200, staff=200, customer=200, viewer=403, other_customer=404, stranger=404, anonymous=401
)
WEBHOOK_MANAGE_SHARED = dict(
    owner=200, staff=403, customer=200, viewer=403, other_customer=404, stranger=404, anonymous=401
)
WEBHOOK_MANAGE_INTERNAL = dict(
    owner=200, staff=403, customer=404, viewer=404, other_customer=404, stranger=404, anonymous=401
)


def ok(expect: dict[str, int], status: int) -> dict[str, int]:
    """``expect`` with its success status replaced (201 for creations, 204 for deletions)."""
    return {role: (status if code == 200 else code) for role, code in expect.items()}


@dataclass(frozen=True)
class Case:
    method: str
    route: str  # the path as declared, e.g. /api/tasks/{task_id:int}
    path: str  # with placeholders from the workspace, e.g. /api/tasks/{px_shared_task}
    expect: dict[str, int]
    body: dict[str, Any] | None = None
    name: str = ""


CASES = [
    Case(
        "POST",
        "/api/auth/login",
        "/api/auth/login",
        {r: 401 for r in ALL},
        {"email": "customer@example.test", "password": "wrong password"},
        "login-wrong-password",
    ),
    Case(
        "POST",
        "/api/auth/password-reset",
        "/api/auth/password-reset",
        {r: 202 for r in ALL},
        {"email": "customer@example.test"},
    ),
    Case(
        "POST",
        "/api/auth/password-reset/confirm",
        "/api/auth/password-reset/confirm",
        {r: 404 for r in ALL},
        {"token": "not-a-real-reset-token", "password": "a long enough pass"},
        "bogus-token",
    ),
    Case("POST", "/api/auth/link", "/api/auth/link", {r: 202 for r in ALL}, {"email": "customer@example.test"}),
    Case(
        "POST",
        "/api/auth/link/redeem",
        "/api/auth/link/redeem",
        {r: 404 for r in ALL},
        {"token": "not-a-real-sign-in-link-token"},
        "bogus-link",
    ),
    Case("POST", "/api/auth/logout", "/api/auth/logout", ok(ANY_SIGNED_IN, 204)),
    Case("POST", "/api/auth/logout-everywhere", "/api/auth/logout-everywhere", ok(ANY_SIGNED_IN, 204)),
    Case("GET", "/api/auth/session", "/api/auth/session", {r: 200 for r in ALL}),
    # A ticket opens a socket as its asker, whom admission then checks as any socket (tests/test_socket_admission.py).
    Case("POST", "/api/ws-ticket", "/api/ws-ticket", ok(ANY_SIGNED_IN, 201)),
    Case("GET", "/api/me", "/api/me", ANY_SIGNED_IN),
    Case("PATCH", "/api/me", "/api/me", ANY_SIGNED_IN, {"locale": "sv"}),
    Case("GET", "/api/me/waiting", "/api/me/waiting", ANY_SIGNED_IN),
    Case(
        "POST",
        "/api/me/password",
        "/api/me/password",
        ok(ANY_SIGNED_IN, 204),
        {"current_password": PASSWORD, "new_password": "another fine passphrase"},
    ),
    Case(
        "POST",
        "/api/me/tokens",
        "/api/me/tokens",
        ok(ANY_SIGNED_IN, 201),
        {"name": "a script", "scopes": ["read"]},
    ),
    Case(
        "POST",
        "/api/me/tokens",
        "/api/me/tokens",
        dict(owner=201, staff=403, customer=403, viewer=403, other_customer=403, stranger=201, anonymous=401),
        {"name": "an admin script", "scopes": ["read", "admin"]},
        "admin-scope",
    ),
    Case("GET", "/api/me/tokens", "/api/me/tokens", ANY_SIGNED_IN),
    # Revoking another user's token (or none) is "not found"; revoking one's own: tests/test_tokens.py.
    Case(
        "DELETE",
        "/api/me/tokens/{token_id:int}",
        "/api/me/tokens/999999",
        {**{r: 404 for r in ALL}, "anonymous": 401},
    ),
    Case("GET", "/api/me/sessions", "/api/me/sessions", ANY_SIGNED_IN),
    # Ending another user's session (or none) is "not found"; ending one's own: tests/test_sessions.py.
    Case(
        "DELETE",
        "/api/me/sessions/{session_id:int}",
        "/api/me/sessions/999999",
        {**{r: 404 for r in ALL}, "anonymous": 401},
    ),
    Case("POST", "/api/me/sessions/end-others", "/api/me/sessions/end-others", ANY_SIGNED_IN),
    # Second factors and passkeys: each person's own; a real sign-in with them is tests/test_second_factor.py and
    # tests/e2e/test_second_factor_ui.py. Bogus tickets and ceremony states are refused for everyone.
    Case(
        "POST",
        "/api/auth/second-factor",
        "/api/auth/second-factor",
        {r: 401 for r in ALL},
        {"ticket": "not-a-real-sign-in-ticket", "code": "123456"},
    ),
    Case("POST", "/api/auth/passkey/options", "/api/auth/passkey/options", {r: 200 for r in ALL}, {"ticket": ""}),
    Case(
        "POST",
        "/api/auth/passkey",
        "/api/auth/passkey",
        {r: 401 for r in ALL},
        {"state": "not-a-real-state", "credential": {"id": "abc"}},
    ),
    Case("GET", "/api/me/second-factor", "/api/me/second-factor", ANY_SIGNED_IN),
    Case("POST", "/api/me/totp", "/api/me/totp", ANY_SIGNED_IN),
    Case(
        "POST",
        "/api/me/totp/confirm",
        "/api/me/totp/confirm",
        {**{r: 422 for r in ALL}, "anonymous": 401},
        {"code": "000000"},
    ),
    Case("DELETE", "/api/me/totp", "/api/me/totp", {**{r: 404 for r in ALL}, "anonymous": 401}),
    Case("POST", "/api/me/recovery-codes", "/api/me/recovery-codes", {**{r: 409 for r in ALL}, "anonymous": 401}),
    Case("POST", "/api/me/passkeys/options", "/api/me/passkeys/options", ANY_SIGNED_IN),
    Case(
        "POST",
        "/api/me/passkeys",
        "/api/me/passkeys",
        {r: 401 for r in ALL},
        {"state": "not-a-real-state", "credential": {}, "name": "Laptop"},
    ),
    Case(
        "PATCH",
        "/api/me/passkeys/{passkey_id:int}",
        "/api/me/passkeys/999999",
        {**{r: 404 for r in ALL}, "anonymous": 401},
        {"name": "Laptop"},
    ),
    Case(
        "DELETE",
        "/api/me/passkeys/{passkey_id:int}",
        "/api/me/passkeys/999999",
        {**{r: 404 for r in ALL}, "anonymous": 401},
    ),
    Case("GET", "/api/organization/security", "/api/organization/security", OWNER_ONLY),
    Case(
        "PATCH",
        "/api/organization/security",
        "/api/organization/security",
        OWNER_ONLY,
        {"require_second_factor_customers": False},
    ),
    Case("GET", "/api/audit", "/api/audit", ADMIN_ONLY),
    Case("GET", "/api/audit", "/api/audit?action=auth.&limit=5", ADMIN_ONLY, name="filtered"),
    Case(
        "GET",
        "/api/clients",
        "/api/clients",
        dict(owner=200, staff=200, customer=403, viewer=403, other_customer=403, stranger=200, anonymous=401),
    ),
    Case(
        "POST",
        "/api/clients",
        "/api/clients",
        dict(owner=201, staff=403, customer=403, viewer=403, other_customer=403, stranger=201, anonymous=401),
        {"name": "New client"},
    ),
    Case(
        "PATCH",
        "/api/clients/{client_id:int}",
        "/api/clients/{client_x}",
        dict(owner=200, staff=403, customer=403, viewer=403, other_customer=403, stranger=404, anonymous=401),
        {"name": "Client X renamed"},
    ),
    Case("GET", "/api/staff", "/api/staff", STAFF_ONLY),
    Case(
        "PATCH",
        "/api/staff/{user_id:int}",
        "/api/staff/{user:spare_staff}",
        dict(owner=200, staff=403, customer=403, viewer=403, other_customer=403, stranger=404, anonymous=401),
        {"role": "admin"},
    ),
    Case("GET", "/api/projects", "/api/projects", ANY_SIGNED_IN),
    Case(
        "POST",
        "/api/projects",
        "/api/projects",
        dict(owner=201, staff=403, customer=403, viewer=403, other_customer=403, stranger=422, anonymous=401),
        {"name": "New project", "client_id": "{client_x}"},
    ),
    Case("GET", "/api/projects/{project_id:int}", "/api/projects/{px}", READ_PX),
    Case("PATCH", "/api/projects/{project_id:int}", "/api/projects/{px}", MANAGE_PX, {"name": "Renamed"}),
    Case("DELETE", "/api/projects/{project_id:int}", "/api/projects/{px}", ok(MANAGE_PX, 204)),
    Case("GET", "/api/projects/{project_id:int}/tasks", "/api/projects/{px}/tasks", READ_PX),
    Case(
        "POST",
        "/api/projects/{project_id:int}/tasks",
        "/api/projects/{px}/tasks",
        ok(STAFF_WRITE_PX, 201),
        {"title": "A new task", "visibility": "shared"},
    ),
    Case("GET", "/api/tasks/{task_id:int}", "/api/tasks/{px_shared_task}", READ_PX, name="shared"),
    Case("GET", "/api/tasks/{task_id:int}", "/api/tasks/{px_internal_task}", READ_INTERNAL, name="internal"),
    Case(
        "GET",
        "/api/tasks/{task_id:int}",
        "/api/tasks/{pb_shared_task}",
        dict(owner=404, staff=404, customer=404, viewer=404, other_customer=404, stranger=200, anonymous=401),
        name="other-org",
    ),
    Case(
        "PATCH",
        "/api/tasks/{task_id:int}",
        "/api/tasks/{px_shared_task}",
        STAFF_WRITE_PX,
        {"title": "Changed"},
        "shared-edit",
    ),
    Case(
        "PATCH",
        "/api/tasks/{task_id:int}",
        "/api/tasks/{px_internal_task}",
        STAFF_WRITE_INTERNAL,
        {"title": "Changed"},
        "internal-edit",
    ),
    Case(
        "PATCH",
        "/api/tasks/{task_id:int}",
        "/api/tasks/{px_customer_task}",
        dict(owner=200, staff=200, customer=200, viewer=403, other_customer=404, stranger=404, anonymous=401),
        {"status_id": "{px_done}"},
        "customer-moves-own-task",
    ),
    Case(
        "PATCH",
        "/api/tasks/{task_id:int}",
        "/api/tasks/{px_customer_task}",
        STAFF_WRITE_PX,
        {"status_id": "{px_done}", "title": "sneaky"},
        "customer-may-only-move",
    ),
    Case(
        "PATCH",
        "/api/tasks/{task_id:int}",
        "/api/tasks/{px_shared_task}",
        STAFF_WRITE_PX,
        {"status_id": "{px_done}"},
        "customer-moves-unassigned-task",
    ),
    Case("DELETE", "/api/tasks/{task_id:int}", "/api/tasks/{px_shared_task}", ok(STAFF_WRITE_PX, 204), name="shared"),
    Case(
        "DELETE",
        "/api/tasks/{task_id:int}",
        "/api/tasks/{px_internal_task}",
        ok(STAFF_WRITE_INTERNAL, 204),
        name="internal",
    ),
    Case("GET", "/api/projects/{project_id:int}/statuses", "/api/projects/{px}/statuses", READ_PX),
    Case(
        "POST",
        "/api/projects/{project_id:int}/statuses",
        "/api/projects/{px}/statuses",
        ok(MANAGE_PX, 201),
        {"name": "QA", "category": "active", "colour": "#123456"},
    ),
    Case(
        "PATCH",
        "/api/projects/{project_id:int}/statuses/{status_id:int}",
        "/api/projects/{px}/statuses/{px_todo}",
        MANAGE_PX,
        {"name": "Backlog"},
    ),
    Case(
        "DELETE",
        "/api/projects/{project_id:int}/statuses/{status_id:int}",
        "/api/projects/{px}/statuses/{px_active}",
        ok(MANAGE_PX, 204),
    ),
    Case("GET", "/api/projects/{project_id:int}/milestones", "/api/projects/{px}/milestones", READ_PX),
    Case(
        "POST",
        "/api/projects/{project_id:int}/milestones",
        "/api/projects/{px}/milestones",
        ok(STAFF_WRITE_PX, 201),
        {"name": "Go live", "visibility": "shared"},
    ),
    Case("GET", "/api/milestones/{milestone_id:int}", "/api/milestones/{px_shared_milestone}", READ_PX, name="shared"),
    Case(
        "GET",
        "/api/milestones/{milestone_id:int}",
        "/api/milestones/{px_internal_milestone}",
        READ_INTERNAL,
        name="internal",
    ),
    Case(
        "PATCH",
        "/api/milestones/{milestone_id:int}",
        "/api/milestones/{px_shared_milestone}",
        STAFF_WRITE_PX,
        {"name": "Renamed"},
        "shared",
    ),
    Case(
        "PATCH",
        "/api/milestones/{milestone_id:int}",
        "/api/milestones/{px_internal_milestone}",
        STAFF_WRITE_INTERNAL,
        {"name": "Renamed"},
        "internal",
    ),
    Case(
        "DELETE", "/api/milestones/{milestone_id:int}", "/api/milestones/{px_shared_milestone}", ok(STAFF_WRITE_PX, 204)
    ),
    Case("GET", "/api/projects/{project_id:int}/members", "/api/projects/{px}/members", READ_PX),
    Case(
        "POST",
        "/api/projects/{project_id:int}/members",
        "/api/projects/{px}/members",
        ok(MANAGE_PX, 201),
        {"user_id": "{user:spare_customer}", "role": "customer"},
    ),
    Case(
        "PATCH",
        "/api/projects/{project_id:int}/members/{user_id:int}",
        "/api/projects/{px}/members/{user:viewer}",
        MANAGE_PX,
        {"role": "customer"},
    ),
    Case(
        "DELETE",
        "/api/projects/{project_id:int}/members/{user_id:int}",
        "/api/projects/{px}/members/{user:viewer}",
        ok(MANAGE_PX, 204),
    ),
    Case(
        "POST",
        "/api/invites",
        "/api/invites",
        ok(MANAGE_PX, 201),
        {"project_id": "{px}", "email": "newcomer@example.com", "role": "customer"},
    ),
    Case("GET", "/api/invites", "/api/invites?project_id={px}", MANAGE_PX),
    Case("DELETE", "/api/invites/{invite_id:int}", "/api/invites/{px_invite}", ok(MANAGE_PX, 204)),
    Case("POST", "/api/invites/{invite_id:int}/resend", "/api/invites/{px_invite}/resend", MANAGE_PX),
    # Authorized callers get past the policy to the content check (no CSV sent here: 415); others stop at it.
    Case(
        "POST",
        "/api/projects/{project_id:int}/tasks/import",
        "/api/projects/{px}/tasks/import?dry_run=true",
        dict(owner=415, staff=415, customer=403, viewer=403, other_customer=404, stranger=404, anonymous=401),
    ),
    Case("GET", "/api/projects/{project_id:int}/tasks.csv", "/api/projects/{px}/tasks.csv", READ_PX),
    Case("GET", "/api/tasks/{task_id:int}/comments", "/api/tasks/{px_shared_task}/comments", READ_PX),
    Case(
        "GET",
        "/api/tasks/{task_id:int}/comments",
        "/api/tasks/{px_internal_task}/comments",
        READ_INTERNAL,
        name="internal-task",
    ),
    Case(
        "POST",
        "/api/tasks/{task_id:int}/comments",
        "/api/tasks/{px_shared_task}/comments",
        ok(PARTICIPATE_PX, 201),
        {"body": "Hello **there**", "visibility": "shared"},
        "shared",
    ),
    Case(
        "POST",
        "/api/tasks/{task_id:int}/comments",
        "/api/tasks/{px_shared_task}/comments",
        ok(STAFF_WRITE_PX, 201),
        {"body": "Between us", "visibility": "internal"},
        "internal",
    ),
    Case(
        "POST",
        "/api/tasks/{task_id:int}/comments",
        "/api/tasks/{px_internal_task}/comments",
        ok(STAFF_WRITE_INTERNAL, 201),
        {"body": "On an internal task", "visibility": "shared"},
        "internal-task",
    ),
    Case(
        "PATCH",
        "/api/comments/{comment_id:int}",
        "/api/comments/{px_customer_comment}",
        dict(owner=403, staff=403, customer=200, viewer=403, other_customer=404, stranger=404, anonymous=401),
        {"body": "edited"},
        "customers-own",
    ),
    Case(
        "PATCH",
        "/api/comments/{comment_id:int}",
        "/api/comments/{px_internal_comment}",
        dict(owner=403, staff=200, customer=404, viewer=404, other_customer=404, stranger=404, anonymous=401),
        {"body": "edited"},
        "internal",
    ),
    Case(
        "DELETE",
        "/api/comments/{comment_id:int}",
        "/api/comments/{px_customer_comment}",
        dict(owner=204, staff=403, customer=204, viewer=403, other_customer=404, stranger=404, anonymous=401),
        name="customers-own",
    ),
    Case(
        "DELETE",
        "/api/comments/{comment_id:int}",
        "/api/comments/{px_internal_comment}",
        dict(owner=204, staff=204, customer=404, viewer=404, other_customer=404, stranger=404, anonymous=401),
        name="internal",
    ),
    Case("GET", "/api/comments/{comment_id:int}/revisions", "/api/comments/{px_shared_comment}/revisions", READ_PX),
    Case(
        "GET",
        "/api/comments/{comment_id:int}/revisions",
        "/api/comments/{px_internal_comment}/revisions",
        READ_INTERNAL,
        name="internal",
    ),
    Case(
        "POST",
        "/api/comments/{comment_id:int}/reactions",
        "/api/comments/{px_shared_comment}/reactions",
        PARTICIPATE_PX,
        {"emoji": "👍"},
    ),
    Case(
        "POST",
        "/api/comments/{comment_id:int}/reactions",
        "/api/comments/{px_internal_comment}/reactions",
        STAFF_WRITE_INTERNAL,
        {"emoji": "👍"},
        "internal",
    ),
    Case(
        "DELETE",
        "/api/comments/{comment_id:int}/reactions/{emoji}",
        "/api/comments/{px_shared_comment}/reactions/👍",
        PARTICIPATE_PX,
    ),
    Case("POST", "/api/tasks/{task_id:int}/read", "/api/tasks/{px_shared_task}/read", READ_PX, {"comment_id": 10**6}),
    Case("GET", "/api/projects/{project_id:int}/unread", "/api/projects/{px}/unread", READ_PX),
    Case("GET", "/api/projects/{project_id:int}/mentionable", "/api/projects/{px}/mentionable?internal=true", READ_PX),
    Case("GET", "/api/search", "/api/search?q=task", ANY_SIGNED_IN),
    Case("GET", "/api/search", "/api/search?q=comment", ANY_SIGNED_IN, name="comments"),
    Case("GET", "/api/notifications", "/api/notifications", ANY_SIGNED_IN),
    Case("POST", "/api/notifications/read", "/api/notifications/read", ok(ANY_SIGNED_IN, 204), {"all": True}),
    Case("GET", "/api/projects/{project_id:int}/notes", "/api/projects/{px}/notes", READ_PX),
    Case(
        "POST",
        "/api/projects/{project_id:int}/notes",
        "/api/projects/{px}/notes",
        ok(STAFF_WRITE_PX, 201),
        {"title": "Review notes", "visibility": "shared", "content": "agenda"},
    ),
    Case("GET", "/api/notes/{note_id:int}", "/api/notes/{px_shared_note}", READ_PX, name="shared"),
    Case("GET", "/api/notes/{note_id:int}", "/api/notes/{px_internal_note}", READ_INTERNAL, name="internal"),
    Case("PATCH", "/api/notes/{note_id:int}", "/api/notes/{px_shared_note}", STAFF_WRITE_PX, {"title": "Renamed"}),
    Case(
        "PATCH",
        "/api/notes/{note_id:int}",
        "/api/notes/{px_internal_note}",
        STAFF_WRITE_INTERNAL,
        {"title": "Renamed"},
        "internal",
    ),
    Case("DELETE", "/api/notes/{note_id:int}", "/api/notes/{px_shared_note}", ok(STAFF_WRITE_PX, 204)),
    Case(
        "DELETE",
        "/api/notes/{note_id:int}",
        "/api/notes/{px_internal_note}",
        ok(STAFF_WRITE_INTERNAL, 204),
        name="internal",
    ),
    Case("GET", "/api/notes/{note_id:int}/export", "/api/notes/{px_shared_note}/export", READ_PX),
    Case(
        "GET",
        "/api/notes/{note_id:int}/export",
        "/api/notes/{px_internal_note}/export?format=markdown",
        READ_INTERNAL,
        name="internal",
    ),
    Case(
        "POST",
        "/api/notes/{note_id:int}/versions",
        "/api/notes/{px_shared_note}/versions",
        ok(STAFF_WRITE_PX, 201),
        {"name": "after the 12 May review"},
    ),
    Case(
        "POST",
        "/api/notes/{note_id:int}/versions",
        "/api/notes/{px_internal_note}/versions",
        ok(STAFF_WRITE_INTERNAL, 201),
        {"name": "internal snapshot"},
        "internal",
    ),
    Case("GET", "/api/notes/{note_id:int}/versions", "/api/notes/{px_shared_note}/versions", READ_PX),
    Case(
        "GET",
        "/api/notes/{note_id:int}/versions",
        "/api/notes/{px_internal_note}/versions",
        READ_INTERNAL,
        name="internal",
    ),
    Case(
        "GET",
        "/api/notes/{note_id:int}/versions/{version_id:int}",
        "/api/notes/{px_shared_note}/versions/{px_shared_note_version}",
        READ_PX,
    ),
    Case(
        "GET",
        "/api/notes/{note_id:int}/versions/{version_id:int}",
        "/api/notes/{px_internal_note}/versions/{px_shared_note_version}",
        dict(READ_INTERNAL, owner=404, staff=404),
        name="version-of-another-note",
    ),
    # Requests
    Case("GET", "/api/projects/{project_id:int}/request-fields", "/api/projects/{px}/request-fields", READ_PX),
    Case(
        "POST",
        "/api/projects/{project_id:int}/request-fields",
        "/api/projects/{px}/request-fields",
        ok(MANAGE_PX, 201),
        {"key": "budget", "label": "Budget", "kind": "number"},
    ),
    Case(
        "PATCH",
        "/api/projects/{project_id:int}/request-fields/{field_id:int}",
        "/api/projects/{px}/request-fields/{px_request_field}",
        ok(MANAGE_PX, 200),
        {"label": "Which browser?", "required": True},
    ),
    Case(
        "DELETE",
        "/api/projects/{project_id:int}/request-fields/{field_id:int}",
        "/api/projects/{px}/request-fields/{px_request_field}",
        ok(MANAGE_PX, 204),
    ),
    Case("GET", "/api/projects/{project_id:int}/requests", "/api/projects/{px}/requests", READ_PX),
    Case(
        "POST",
        "/api/projects/{project_id:int}/requests",
        "/api/projects/{px}/requests",
        ok(PARTICIPATE_PX, 201),
        {"title": "Please fix the footer", "fields": {"browser": "Chrome"}},
    ),
    Case("GET", "/api/requests", "/api/requests", ANY_SIGNED_IN),
    Case("GET", "/api/requests/{request_id:int}", "/api/requests/{px_request}", READ_PX),
    Case(
        "POST",
        "/api/requests/{request_id:int}/triage",
        "/api/requests/{px_request}/triage",
        STAFF_WRITE_PX,
        {"action": "ask", "message": "Which page?"},
    ),
    Case(
        "POST",
        "/api/requests/{request_id:int}/reply",
        "/api/requests/{px_request}/reply",
        PARTICIPATE_PX,
        {"message": "The start page"},
    ),
    # Files
    Case(
        "POST",
        "/api/projects/{project_id:int}/files",
        "/api/projects/{px}/files?name=notes.txt",
        ok(PARTICIPATE_PX, 201),
    ),
    Case("GET", "/api/projects/{project_id:int}/files", "/api/projects/{px}/files", READ_PX),
    Case("GET", "/api/files/{file_id:int}", "/api/files/{px_shared_file}", READ_PX, name="shared"),
    Case("GET", "/api/files/{file_id:int}", "/api/files/{px_internal_file}", READ_INTERNAL, name="internal"),
    Case("GET", "/api/files/{file_id:int}/download", "/api/files/{px_shared_file}/download", READ_PX, name="shared"),
    Case(
        "GET",
        "/api/files/{file_id:int}/download",
        "/api/files/{px_internal_file}/download",
        READ_INTERNAL,
        name="internal",
    ),
    Case(
        "POST",
        "/api/files/{file_id:int}/versions",
        "/api/files/{px_shared_file}/versions",
        ok(STAFF_WRITE_PX, 201),
        name="staff-file",
    ),
    Case(
        "POST",
        "/api/files/{file_id:int}/versions",
        "/api/files/{px_customer_file}/versions?name=v2.txt",
        ok(PARTICIPATE_PX, 201),
        name="customers-own",
    ),
    Case(
        "POST",
        "/api/files/{file_id:int}/versions",
        "/api/files/{px_internal_file}/versions",
        ok(STAFF_WRITE_INTERNAL, 201),
        name="internal",
    ),
    Case("DELETE", "/api/files/{file_id:int}", "/api/files/{px_shared_file}", ok(STAFF_WRITE_PX, 204), name="shared"),
    Case(
        "DELETE",
        "/api/files/{file_id:int}",
        "/api/files/{px_customer_file}",
        ok(PARTICIPATE_PX, 204),
        name="customers-own",
    ),
    Case(
        "DELETE",
        "/api/files/{file_id:int}",
        "/api/files/{px_internal_file}",
        ok(STAFF_WRITE_INTERNAL, 204),
        name="internal",
    ),
    # Settings and preferences
    Case("GET", "/api/projects/{project_id:int}/settings", "/api/projects/{px}/settings", READ_PX),
    Case(
        "PATCH",
        "/api/projects/{project_id:int}/settings",
        "/api/projects/{px}/settings",
        MANAGE_PX,
        {"customer_upload": False},
    ),
    Case("GET", "/api/me/notification-preferences", "/api/me/notification-preferences", ANY_SIGNED_IN),
    Case(
        "PATCH",
        "/api/me/notification-preferences",
        "/api/me/notification-preferences",
        ANY_SIGNED_IN,
        {"mentions": "immediately", "others": "daily"},
    ),
    # Workflow templates
    Case(
        "GET",
        "/api/workflow-templates",
        "/api/workflow-templates",
        dict(owner=200, staff=200, customer=403, viewer=403, other_customer=403, stranger=200, anonymous=401),
    ),
    Case(
        "POST",
        "/api/workflow-templates",
        "/api/workflow-templates",
        dict(owner=201, staff=403, customer=403, viewer=403, other_customer=403, stranger=404, anonymous=401),
        {"name": "Copied", "from_project_id": "{px}"},
    ),
    Case(
        "DELETE",
        "/api/workflow-templates/{template_id:int}",
        "/api/workflow-templates/{org_a_template}",
        dict(owner=204, staff=403, customer=403, viewer=403, other_customer=403, stranger=404, anonymous=401),
    ),
    Case(
        "POST",
        "/api/projects/{project_id:int}/workflow/apply",
        "/api/projects/{px}/workflow/apply",
        MANAGE_PX,
        {"from_project_id": "{py}"},
    ),
    Case(
        "POST",
        "/api/invites/preview",
        "/api/invites/preview",
        {r: 404 for r in ALL},
        {"token": "not-a-real-invite-token"},
        "bogus-token",
    ),
    Case(
        "POST",
        "/api/invites/accept",
        "/api/invites/accept",
        {r: 404 for r in ALL},
        {"token": "not-a-real-invite-token", "name": "Eve", "password": "a long enough pass"},
        "bogus-token",
    ),
    # Reports (tests/test_reports.py): customers get their audience's view; the portfolio is for staff.
    Case("GET", "/api/projects/{project_id:int}/reports/kpis", "/api/projects/{px}/reports/kpis", READ_PX),
    Case(
        "GET",
        "/api/projects/{project_id:int}/reports/pivot",
        "/api/projects/{px}/reports/pivot?group_by=milestone,visibility",
        READ_PX,
    ),
    Case("GET", "/api/reports/portfolio", "/api/reports/portfolio", STAFF_ONLY),
    Case("GET", "/api/reports/pivot", "/api/reports/pivot?group_by=project,milestone", STAFF_ONLY),
    # Feedback (tests/test_feedback.py): customers answer; staff ask and read the themes.
    Case("GET", "/api/projects/{project_id:int}/feedback/requests", "/api/projects/{px}/feedback/requests", READ_PX),
    Case(
        "POST",
        "/api/projects/{project_id:int}/feedback/requests",
        "/api/projects/{px}/feedback/requests",
        ok(STAFF_WRITE_PX, 201),
        {"milestone_id": "{px_shared_milestone}"},
    ),
    Case(
        "POST",
        "/api/feedback/requests/{request_id:int}/answers",
        "/api/feedback/requests/{px_feedback_request}/answers",
        dict(owner=403, staff=403, customer=201, viewer=403, other_customer=404, stranger=404, anonymous=401),
        {"score": 4, "helped": "Quick replies", "hindered": "Unclear scope"},
    ),
    Case("GET", "/api/projects/{project_id:int}/feedback", "/api/projects/{px}/feedback", STAFF_WRITE_PX),
    Case(
        "POST",
        "/api/projects/{project_id:int}/feedback/actions",
        "/api/projects/{px}/feedback/actions",
        ok(STAFF_WRITE_PX, 201),
        {"theme": "clarity", "title": "Agree the scope in writing"},
    ),
    # The organization's settings: staff read, owners change.
    Case("GET", "/api/organization/settings", "/api/organization/settings", STAFF_ONLY),
    Case(
        "PATCH",
        "/api/organization/settings",
        "/api/organization/settings",
        dict(owner=200, staff=403, customer=403, viewer=403, other_customer=403, stranger=200, anonymous=401),
        {"allow_staff_link_sign_in": True},
    ),
    # Informal feedback (tests/test_feedback_marks.py): staff only; customers never see a marking.
    Case(
        "PUT",
        "/api/comments/{comment_id:int}/feedback",
        "/api/comments/{px_customer_comment}/feedback",
        STAFF_WRITE_PX,
        {"kind": "praise", "theme": "people"},
    ),
    Case(
        "DELETE",
        "/api/comments/{comment_id:int}/feedback",
        "/api/comments/{px_customer_comment}/feedback",
        ok(STAFF_WRITE_PX, 204),
    ),
    Case(
        "GET",
        "/api/tasks/{task_id:int}/feedback-marks",
        "/api/tasks/{px_shared_task}/feedback-marks",
        STAFF_WRITE_PX,
    ),
    # A customer's reply in a request's history: the same 404 for customers as for a missing id.
    Case(
        "PUT",
        "/api/request-events/{event_id:int}/feedback",
        "/api/request-events/{px_customer_request_reply}/feedback",
        STAFF_WRITE_INTERNAL,
        {"kind": "concern", "theme": "speed"},
    ),
    Case(
        "DELETE",
        "/api/request-events/{event_id:int}/feedback",
        "/api/request-events/{px_customer_request_reply}/feedback",
        ok(STAFF_WRITE_INTERNAL, 204),
    ),
    Case(
        "GET",
        "/api/requests/{request_id:int}/feedback-marks",
        "/api/requests/{px_request}/feedback-marks",
        STAFF_WRITE_INTERNAL,
    ),
    # Activity and last visits (tests/test_progress_digest.py): customers read the shared activity.
    Case("GET", "/api/projects/{project_id:int}/activity", "/api/projects/{px}/activity", READ_PX),
    Case("PUT", "/api/projects/{project_id:int}/visit", "/api/projects/{px}/visit", READ_PX),
    # Webhooks (tests/test_webhooks.py)
    Case("GET", "/api/projects/{project_id:int}/webhooks", "/api/projects/{px}/webhooks", WEBHOOK_READ_SHARED),
    Case(
        "POST",
        "/api/projects/{project_id:int}/webhooks",
        "/api/projects/{px}/webhooks",
        ok(MANAGE_PX, 201),
        {"url": "http://127.0.0.1:9/hook", "events": ["task.status_changed"], "audience": "internal"},
        "internal",
    ),
    Case(
        "POST",
        "/api/projects/{project_id:int}/webhooks",
        "/api/projects/{px}/webhooks",
        ok(WEBHOOK_MANAGE_SHARED, 201),
        {"url": "http://127.0.0.1:9/hook", "events": ["comment.created"], "audience": "shared"},
        "shared",
    ),
    Case(
        "GET", "/api/webhooks/{webhook_id:int}", "/api/webhooks/{px_internal_webhook}", READ_INTERNAL, name="internal"
    ),
    Case(
        "GET", "/api/webhooks/{webhook_id:int}", "/api/webhooks/{px_shared_webhook}", WEBHOOK_READ_SHARED, name="shared"
    ),
    Case(
        "PATCH",
        "/api/webhooks/{webhook_id:int}",
        "/api/webhooks/{px_internal_webhook}",
        WEBHOOK_MANAGE_INTERNAL,
        {"description": "renamed"},
        "internal",
    ),
    Case(
        "PATCH",
        "/api/webhooks/{webhook_id:int}",
        "/api/webhooks/{px_shared_webhook}",
        WEBHOOK_MANAGE_SHARED,
        {"description": "renamed"},
        "shared",
    ),
    Case(
        "PATCH",
        "/api/webhooks/{webhook_id:int}",
        "/api/webhooks/{px_shared_webhook}",
        dict(WEBHOOK_MANAGE_SHARED, customer=403),
        {"audience": "internal"},
        "customer-may-not-make-it-internal",
    ),
    Case(
        "DELETE",
        "/api/webhooks/{webhook_id:int}",
        "/api/webhooks/{px_internal_webhook}",
        ok(WEBHOOK_MANAGE_INTERNAL, 204),
        name="internal",
    ),
    Case(
        "DELETE",
        "/api/webhooks/{webhook_id:int}",
        "/api/webhooks/{px_shared_webhook}",
        ok(WEBHOOK_MANAGE_SHARED, 204),
        name="shared",
    ),
    Case(
        "GET",
        "/api/webhooks/{webhook_id:int}/deliveries",
        "/api/webhooks/{px_internal_webhook}/deliveries",
        READ_INTERNAL,
        name="internal",
    ),
    Case(
        "GET",
        "/api/webhooks/{webhook_id:int}/deliveries",
        "/api/webhooks/{px_shared_webhook}/deliveries",
        WEBHOOK_READ_SHARED,
        name="shared",
    ),
]


def fill(template: Any, ws: Workspace) -> Any:
    if isinstance(template, dict):
        return {k: fill(v, ws) for k, v in template.items()}
    if isinstance(template, str) and template.startswith("{") and template.endswith("}") and "/" not in template:
        return int(fill_path(template, ws))
    return template


def fill_path(path: str, ws: Workspace) -> str:
    values = {**{k: str(v) for k, v in ws.ids.items()}, **{f"user:{k}": str(v) for k, v in ws.users.items()}}
    for key, value in values.items():
        path = path.replace("{" + key + "}", value)
    assert "{" not in path, path
    return path


def test_every_route_is_in_the_matrix() -> None:
    declared = {(e.method, e.path) for e in api.endpoints}
    covered = {(c.method, c.route) for c in CASES}
    assert declared - covered == set(), "add these routes to the authorization matrix"
    assert covered - declared == set(), "the matrix names routes that do not exist"


SECRET_MARKERS = ("SECRET", "internal milestone")


# Tokens, CSRF values and hashes in a body are long runs of random URL-safe characters: one may contain "PY" by
# chance (a new API token did, one run in a few hundred), which is not a leak. No marker hides inside such a run.
RANDOM_RUN = re.compile(r"[A-Za-z0-9_-]{24,}")


def assert_no_leak(role: str, text: str) -> None:
    text = RANDOM_RUN.sub("<random>", text)
    if role in ("customer", "viewer", "other_customer"):
        for marker in SECRET_MARKERS:
            assert marker not in text, f"{role} saw an internal item"
    if role == "other_customer":
        assert "px " not in text and "PX" not in text, "a customer saw another client's project"
    if role == "stranger":
        for marker in ("px ", "py ", "PX", "PY", "Client X", "Client Y"):
            assert marker not in text, "another organization leaked"
    if role in ("owner", "staff", "customer", "viewer", "other_customer"):
        assert "pb " not in text and "Client of B" not in text, "another organization leaked"


def case_id(case: Case) -> str:
    return f"{case.method} {case.path} {case.name}".strip()


# Every read, and every request the matrix expects refused, leaves the database as it was: on each database they
# share one database and one app (the role's sign-in failures unthrottled: tests/test_signin_throttle.py is about
# them). Successful writes change it, so each gets a fresh copy of the seeded workspace on SQLite; on PostgreSQL
# they are covered by the tasks and discussion suites (both_databases).
def _leaves_it_as_it_was(case: Case, role: str) -> bool:
    return case.method == "GET" or case.expect[role] >= 400


SHARED_CASES = [(case, role) for case in CASES for role in ALL if _leaves_it_as_it_was(case, role)]
WRITES = [(case, role) for case in CASES for role in ALL if not _leaves_it_as_it_was(case, role)]
UNTHROTTLED = dict(signin_free_failures_per_account=1_000_000, signin_free_failures_per_ip=1_000_000)


def _ids(value: object) -> str:
    return case_id(value) if isinstance(value, Case) else str(value)


@pytest.mark.parametrize(("case", "role"), WRITES, ids=_ids)
def test_matrix_writes(client: TestClient, workspace: Workspace, case: Case, role: str) -> None:
    check_case(client, workspace, case, role)


@pytest.fixture(scope="module")
def sqlite_client(
    workspace_template: tuple[Path, Workspace], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, Workspace]]:
    folder = tmp_path_factory.mktemp("sqlite-matrix")
    copy_workspace(workspace_template[0], folder)
    app = create_app(make_settings(folder, **UNTHROTTLED))
    with TestClient(app, base_url="http://testserver") as client:
        yield client, workspace_template[1]


@pytest.mark.parametrize(("case", "role"), SHARED_CASES, ids=_ids)
def test_matrix(sqlite_client: tuple[TestClient, Workspace], case: Case, role: str) -> None:
    check_case(*sqlite_client, case, role)


@pytest.fixture(scope="module")
def pg_client(
    pg_template: tuple[str, Workspace], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, Workspace]]:
    folder = tmp_path_factory.mktemp("pg-matrix")
    write_seed_blobs(folder / "files")
    with postgres_database(pg_template[0]) as url:
        app = create_app(make_settings(folder, database_url=url, **UNTHROTTLED))
        with TestClient(app, base_url="http://testserver") as client:
            yield client, pg_template[1]


@pytest.mark.parametrize(("case", "role"), SHARED_CASES, ids=_ids)
def test_matrix_on_postgresql(pg_client: tuple[TestClient, Workspace], case: Case, role: str) -> None:
    check_case(*pg_client, case, role)


def check_case(client: TestClient, workspace: Workspace, case: Case, role: str) -> None:
    headers = bearer(workspace, role)
    response = client.request(
        case.method,
        fill_path(case.path, workspace),
        json=fill(case.body, workspace) if case.body else None,
        headers=headers,
    )
    assert response.status_code == case.expect[role], response.text
    if response.status_code >= 400:
        body = response.json()
        assert set(body) >= {"error", "message"}
    assert_no_leak(role, response.text)


@pytest.mark.both_databases
@pytest.mark.parametrize("role", ["customer", "viewer", "other_customer"])
def test_customer_lists_hold_only_shared_items_of_their_projects(
    client: TestClient, workspace: Workspace, role: str
) -> None:
    headers = bearer(workspace, role)
    projects = client.get("/api/projects", headers=headers).json()["items"]
    mine = {
        "customer": {workspace.ids["px"]},
        "viewer": {workspace.ids["px"]},
        "other_customer": {workspace.ids["py"]},
    }[role]
    assert {p["id"] for p in projects} == mine
    for project_id in mine:
        tasks = client.get(f"/api/projects/{project_id}/tasks?limit=200", headers=headers).json()["items"]
        assert tasks and all(t["visibility"] == "shared" for t in tasks)
        filtered = client.get(f"/api/projects/{project_id}/tasks?visibility=internal", headers=headers).json()
        assert filtered["items"] == []
        milestones = client.get(f"/api/projects/{project_id}/milestones", headers=headers).json()["items"]
        assert milestones and all(m["visibility"] == "shared" for m in milestones)
    me = client.get("/api/me", headers=headers).json()
    assert all(item["visibility"] == "shared" for item in me["action_items"])


@pytest.mark.both_databases
def test_removing_a_member_takes_effect_at_once(client: TestClient, workspace: Workspace) -> None:
    customer = bearer(workspace, "customer")
    assert client.get(f"/api/projects/{workspace.ids['px']}", headers=customer).status_code == 200
    removed = client.delete(
        f"/api/projects/{workspace.ids['px']}/members/{workspace.users['customer']}", headers=bearer(workspace, "owner")
    )
    assert removed.status_code == 204
    assert client.get(f"/api/projects/{workspace.ids['px']}", headers=customer).status_code == 404
    assert client.get(f"/api/tasks/{workspace.ids['px_shared_task']}", headers=customer).status_code == 404
    assert client.get("/api/projects", headers=customer).json()["items"] == []
