"""Personal API tokens: made, listed and revoked by their owner; scopes narrow, the policy still decides."""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from typing import Any

import pytest
from starlette.testclient import TestClient

from server.api import api
from server.observability import redact
from server.policy import Scope
from server.settings import Settings
from tests.conftest import bearer
from tests.test_authorization import CASES, assert_no_leak, fill_path
from tests.workspace import Workspace

# The GET routes a read token may call (not the admin-only or session-only ones).
READ_ROUTES = {e.path for e in api.endpoints if e.method == "GET" and e.scope == Scope.READ}


def make_token(client: TestClient, ws: Workspace, role: str, *scopes: str, **extra: Any) -> dict[str, Any]:
    """A new token of ``role``'s, made with their session (the answer, which holds the token once)."""
    response = client.post(
        "/api/me/tokens", json={"name": f"{role} script", "scopes": list(scopes), **extra}, headers=bearer(ws, role)
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def auth(token: dict[str, Any]) -> dict[str, str]:
    return {"authorization": f"Bearer {token['token']}"}


def db_rows(settings: Settings, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(settings.database_url.removeprefix("sqlite:///")) as conn:
        return conn.execute(sql, args).fetchall()


def test_create_list_use_and_revoke(client: TestClient, workspace: Workspace, settings: Settings) -> None:
    made = make_token(client, workspace, "staff", "read", "write", expires_in_days=30)
    assert made["token"].startswith("tnd_") and len(made["token"]) > 40
    assert made["scopes"] == ["read", "write"] and made["last_used_at"] is None
    assert dt.datetime.fromisoformat(made["expires_at"]) > dt.datetime.now(dt.UTC) + dt.timedelta(days=29)

    me = client.get("/api/me", headers=auth(made))
    assert me.status_code == 200 and me.json()["user"]["id"] == workspace.users["staff"]
    assert me.json()["csrf_token"] is None

    listed = client.get("/api/me/tokens", headers=bearer(workspace, "staff")).json()["items"]
    assert [t["id"] for t in listed] == [made["id"]]
    assert "token" not in listed[0] and listed[0]["last_used_at"] is not None
    # Nobody else sees or revokes it.
    assert client.get("/api/me/tokens", headers=bearer(workspace, "owner")).json()["items"] == []
    assert client.delete(f"/api/me/tokens/{made['id']}", headers=bearer(workspace, "owner")).status_code == 404

    assert client.delete(f"/api/me/tokens/{made['id']}", headers=bearer(workspace, "staff")).status_code == 204
    refused = client.get("/api/me", headers=auth(made))
    assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
    assert client.get("/api/me/tokens", headers=bearer(workspace, "staff")).json()["items"] == []


def test_tokens_are_hashed_at_rest(client: TestClient, workspace: Workspace, settings: Settings) -> None:
    made = make_token(client, workspace, "owner", "read")
    rows = db_rows(settings, "SELECT * FROM api_tokens")
    assert len(rows) == 1
    assert hashlib.sha256(made["token"].encode()).hexdigest() in rows[0]
    secret = made["token"].removeprefix("tnd_")
    dump = "\n".join(sqlite3.connect(settings.database_url.removeprefix("sqlite:///")).iterdump())
    assert secret not in dump


def test_expired_token_and_deactivated_owner_are_refused(
    client: TestClient, workspace: Workspace, settings: Settings
) -> None:
    made = make_token(client, workspace, "staff", "read", expires_in_days=1)
    assert client.get("/api/projects", headers=auth(made)).status_code == 200
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).isoformat(sep=" ")
    db_rows(settings, "UPDATE api_tokens SET expires_at = ? WHERE id = ?", past, made["id"])
    assert client.get("/api/projects", headers=auth(made)).status_code == 401

    forever = make_token(client, workspace, "customer", "read")
    assert client.get("/api/projects", headers=auth(forever)).status_code == 200
    db_rows(settings, "UPDATE users SET is_active = 0 WHERE id = ?", workspace.users["customer"])
    assert client.get("/api/projects", headers=auth(forever)).status_code == 401


def test_scopes_narrow_what_a_token_may_call(client: TestClient, workspace: Workspace) -> None:
    task = f"/api/tasks/{workspace.ids['px_shared_task']}"
    read = auth(make_token(client, workspace, "owner", "read"))
    writer = make_token(client, workspace, "owner", "write")
    write = auth(writer)
    assert client.get(task, headers=read).status_code == 200
    refused = client.patch(task, json={"title": "From a read token"}, headers=read)
    assert refused.status_code == 403 and refused.json()["error"] == "insufficient_scope"
    assert client.get(task, headers=write).json()["error"] == "insufficient_scope"
    # A token is never sent by a browser on its own: no CSRF token is needed.
    assert client.patch(task, json={"title": "From a write token"}, headers=write).status_code == 200
    # What a token changes is audited with the token it came through.
    assert client.patch(task, json={"visibility": "internal"}, headers=write).status_code == 200
    audit = client.get("/api/audit?action=item.visibility_changed", headers=bearer(workspace, "owner")).json()
    assert audit["items"][0]["details"] == {"from": "shared", "to": "internal", "via": f"api_token:{writer['id']}"}

    # Admin routes need the admin scope, even for an admin's token.
    assert client.post("/api/clients", json={"name": "Z"}, headers=write).json()["error"] == "insufficient_scope"
    admin = auth(make_token(client, workspace, "owner", "admin"))
    assert client.post("/api/clients", json={"name": "Z"}, headers=admin).status_code == 201
    assert client.get("/api/audit", headers=admin).status_code == 200
    assert client.get("/api/audit", headers=read).json()["error"] == "insufficient_scope"

    # Account security is for sessions only: a token cannot mint tokens, change the password or sign out.
    everything = auth(make_token(client, workspace, "owner", "read", "write", "admin"))
    for method, path in (("GET", "/api/me/tokens"), ("POST", "/api/me/password"), ("POST", "/api/auth/logout")):
        answer = client.request(method, path, headers=everything, json={} if method == "POST" else None)
        assert answer.status_code == 403 and answer.json()["error"] == "insufficient_scope", path


def test_admin_scope_is_for_admins_only(client: TestClient, workspace: Workspace, settings: Settings) -> None:
    response = client.post(
        "/api/me/tokens", json={"name": "x", "scopes": ["admin"]}, headers=bearer(workspace, "staff")
    )
    assert response.status_code == 403 and response.json()["reason"] == "admin_scope"  # a permission, not a shape
    bad = client.post("/api/me/tokens", json={"name": "x", "scopes": ["root"]}, headers=bearer(workspace, "owner"))
    assert bad.status_code == 422
    # An admin's admin token loses its reach when the admin is demoted: the policy decides as for the owner.
    admin = auth(make_token(client, workspace, "owner", "read", "admin"))
    assert client.get("/api/audit", headers=admin).status_code == 200
    db_rows(settings, "UPDATE users SET role = 'staff' WHERE id = ?", workspace.users["owner"])
    demoted = client.get("/api/audit", headers=admin)
    assert demoted.status_code == 403 and demoted.json()["error"] == "forbidden"


@pytest.mark.parametrize("role", ["owner", "staff", "customer", "viewer", "other_customer", "stranger"])
def test_a_token_sees_exactly_what_its_owner_sees(client: TestClient, workspace: Workspace, role: str) -> None:
    """Every GET of the authorization matrix, with a read token instead of the session: the same answers, and
    for customers still no internal item and nothing of another client."""
    token = auth(make_token(client, workspace, role, "read"))
    checked = 0
    for case in CASES:
        if case.method != "GET" or case.route not in READ_ROUTES:
            continue
        response = client.get(fill_path(case.path, workspace), headers=token)
        assert response.status_code == case.expect[role], (case.path, response.text)
        assert_no_leak(role, response.text)
        checked += 1
    assert checked > 40


@pytest.mark.parametrize("role", ["customer", "viewer", "other_customer"])
def test_a_customers_write_token_cannot_reach_internal_items(
    client: TestClient, workspace: Workspace, role: str
) -> None:
    token = auth(make_token(client, workspace, role, "read", "write"))
    internal = f"/api/tasks/{workspace.ids['px_internal_task']}"
    assert client.patch(internal, json={"title": "x"}, headers=token).status_code == 404
    created = client.post(f"/api/projects/{workspace.ids['px']}/tasks", json={"title": "x"}, headers=token)
    assert created.status_code == (403 if role != "other_customer" else 404)
    tasks = client.get(f"/api/projects/{workspace.ids['px']}/tasks?limit=200", headers=token)
    if role == "other_customer":
        assert tasks.status_code == 404
    else:
        assert tasks.json()["items"] and all(t["visibility"] == "shared" for t in tasks.json()["items"])


def test_openapi_declares_the_token_scheme_and_each_operations_scope(client: TestClient) -> None:
    doc = client.get("/api/openapi.json").json()
    scheme = doc["components"]["securitySchemes"]["apiToken"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer" and scheme["bearerFormat"] == "tnd_..."
    ops = {(method.upper(), path): op for path, item in doc["paths"].items() for method, op in item.items()}
    assert ops[("GET", "/api/projects/{project_id}/tasks")]["x-token-scope"] == "read"
    assert {"apiToken": ["write"]} in ops[("PATCH", "/api/tasks/{task_id}")]["security"]
    assert ops[("GET", "/api/audit")]["x-token-scope"] == "admin"
    assert ops[("POST", "/api/me/tokens")]["x-token-scope"] is None
    assert all(a != "apiToken" for s in ops[("POST", "/api/me/tokens")]["security"] for a in s)
    for (method, path), op in ops.items():
        if "security" in op:  # every signed-in operation says what a token needs
            assert "x-token-scope" in op, (method, path)


def test_tokens_never_reach_the_logs_whole() -> None:
    token = "tnd_" + "Ab_-9" * 9
    session = "abc_def-" + "x_" * 20
    for line in (f"Authorization: Bearer {token}", f"GET /ws?token={token} 101", f"saw {token} in a body"):
        assert token.removeprefix("tnd_") not in redact(line), line
    assert "def-" not in redact(f"authorization: bearer {session}")
