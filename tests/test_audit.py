"""The audit log: security events are recorded with their change (and only when it commits), shown to their
organization's admins only, filterable and paged, and never hold a secret."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.testclient import TestClient

from server.app import create_app
from server.audit.log import AuditAction, _event
from server.settings import Settings
from tests.conftest import bearer, make_settings
from tests.workspace import INVITE_TOKEN, PASSWORD, Workspace

NEW_PASSWORD = "a brand new passphrase 7"


def events(client: TestClient, ws: Workspace, role: str = "owner", **query: Any) -> list[dict[str, Any]]:
    response = client.get("/api/audit", params={"limit": 200, **query}, headers=bearer(ws, role))
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


def actions(client: TestClient, ws: Workspace, **query: Any) -> list[str]:
    return [e["action"] for e in events(client, ws, **query)]


def test_sign_ins_are_recorded_without_telling_the_client_whether_the_account_exists(
    client: TestClient, workspace: Workspace, settings: Settings
) -> None:
    wrong = client.post("/api/auth/login", json={"email": "staff@example.test", "password": "not it at all"})
    unknown = client.post("/api/auth/login", json={"email": "nobody@example.test", "password": "not it at all"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    good = client.post(
        "/api/auth/login", json={"email": "staff@example.test", "password": PASSWORD}, headers={"user-agent": "ua/1"}
    )
    assert good.status_code == 200
    client.cookies.clear()

    logged = events(client, workspace, action="auth.")
    assert [e["action"] for e in logged] == ["auth.login", "auth.login_failed"]
    success, failure = logged
    assert success["actor_id"] == success["target_id"] == workspace.users["staff"]
    assert success["user_agent"] == "ua/1" and success["ip"] == "testclient"
    assert failure["actor_id"] is None and failure["target_id"] == workspace.users["staff"]
    assert failure["details"] == {"reason": "invalid_credentials"}
    # The unknown email is stored without an organization (nobody's to see) and without the email itself.
    with sqlite3.connect(settings.database_url.removeprefix("sqlite:///")) as conn:
        orphans = conn.execute("SELECT organization_id, details FROM audit_events WHERE target_id IS NULL").fetchall()
    assert orphans == [(None, '{"reason": "invalid_credentials"}')]
    assert events(client, workspace, "stranger") == []


def test_account_and_membership_events(client: TestClient, workspace: Workspace) -> None:
    owner, px = bearer(workspace, "owner"), workspace.ids["px"]
    spare = workspace.users["spare_staff"]
    assert client.post(
        f"/api/projects/{px}/members", json={"user_id": spare, "role": "member"}, headers=owner
    ).is_success
    assert client.patch(f"/api/projects/{px}/members/{spare}", json={"role": "manager"}, headers=owner).is_success
    assert client.delete(f"/api/projects/{px}/members/{spare}", headers=owner).is_success
    invited = client.post(
        "/api/invites", json={"project_id": px, "email": "new@example.com", "role": "customer"}, headers=owner
    )
    assert invited.status_code == 201
    assert client.delete(f"/api/invites/{invited.json()['invite']['id']}", headers=owner).status_code == 204
    accepted = client.post(
        "/api/invites/accept", json={"token": INVITE_TOKEN, "name": "Invited", "password": NEW_PASSWORD}
    )
    assert accepted.status_code == 201
    client.cookies.clear()
    spare_staff = bearer(workspace, "spare_staff")
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert client.post("/api/me/password", json=body, headers=spare_staff).status_code == 204
    client.cookies.clear()
    assert client.post("/api/auth/logout", headers=bearer(workspace, "staff")).status_code == 204
    assert client.post("/api/auth/logout-everywhere", headers=bearer(workspace, "viewer")).status_code == 204

    logged = {e["action"]: e for e in events(client, workspace)}
    assert set(logged) >= {
        "member.added",
        "member.role_changed",
        "member.removed",
        "invite.created",
        "invite.revoked",
        "invite.accepted",
        "account.password_changed",
        "auth.logout",
        "auth.sessions_revoked",
    }
    assert logged["member.role_changed"]["details"] == {"project_id": px, "from": "member", "to": "manager"}
    assert logged["member.role_changed"]["actor_name"] == "Owner"
    assert logged["invite.accepted"]["actor_id"] == accepted.json()["user"]["id"]
    assert logged["invite.accepted"]["target_id"] == workspace.ids["px_invite"]
    assert logged["account.password_changed"]["actor_id"] == spare
    assert logged["auth.sessions_revoked"]["actor_id"] == workspace.users["viewer"]


def test_visibility_changes_and_exports(client: TestClient, workspace: Workspace) -> None:
    owner, px = bearer(workspace, "owner"), workspace.ids["px"]
    task = workspace.ids["px_shared_task"]
    assert client.patch(f"/api/tasks/{task}", json={"title": "Only a title"}, headers=owner).is_success
    assert actions(client, workspace, target_type="task") == []  # a change that is not one of visibility
    assert client.patch(f"/api/tasks/{task}", json={"visibility": "internal"}, headers=owner).is_success
    note = workspace.ids["px_shared_note"]
    assert client.patch(f"/api/notes/{note}", json={"visibility": "internal"}, headers=owner).is_success
    milestone = workspace.ids["px_internal_milestone"]
    assert client.patch(f"/api/milestones/{milestone}", json={"visibility": "shared"}, headers=owner).is_success

    assert client.get(f"/api/projects/{px}/tasks.csv", headers=owner).status_code == 200
    assert client.get(f"/api/notes/{note}/export?format=markdown", headers=owner).status_code == 200
    assert client.get(f"/api/projects/{px}/reports/kpis?format=csv", headers=owner).status_code == 200
    assert client.get(f"/api/projects/{px}/reports/kpis", headers=owner).status_code == 200  # JSON: not an export

    changed = events(client, workspace, action="item.visibility_changed")
    assert [(e["target_type"], e["target_id"], e["details"]) for e in changed] == [
        ("milestone", milestone, {"from": "internal", "to": "shared"}),
        ("note", note, {"from": "shared", "to": "internal"}),
        ("task", task, {"from": "shared", "to": "internal"}),
    ]
    exports = events(client, workspace, action="data.exported")
    assert [e["details"] for e in exports] == [
        {"what": f"report project-{px}-kpis", "format": "csv"},
        {"what": "note", "format": "markdown"},
        {"what": "tasks", "format": "csv"},
    ]


def test_an_event_is_stored_only_if_its_change_commits(client: TestClient, workspace: Workspace) -> None:
    owner = bearer(workspace, "owner")
    # The task is assigned to a customer: making it internal is refused, and so nothing is recorded.
    refused = client.patch(
        f"/api/tasks/{workspace.ids['px_customer_task']}", json={"visibility": "internal"}, headers=owner
    )
    assert refused.status_code == 422
    assert actions(client, workspace) == []


def test_filters_and_pages(client: TestClient, workspace: Workspace) -> None:
    for name in ("one", "two", "three"):
        assert client.post(
            "/api/me/tokens", json={"name": name, "scopes": ["read"]}, headers=bearer(workspace, "owner")
        ).is_success
    made = client.post(
        "/api/me/tokens", json={"name": "staff's", "scopes": ["read"]}, headers=bearer(workspace, "staff")
    )
    assert client.delete(f"/api/me/tokens/{made.json()['id']}", headers=bearer(workspace, "staff")).status_code == 204

    assert actions(client, workspace) == ["api_token.revoked"] + ["api_token.created"] * 4
    assert len(events(client, workspace, actor_id=workspace.users["owner"])) == 3
    assert actions(client, workspace, target_type="api_token", target_id=made.json()["id"]) == [
        "api_token.revoked",
        "api_token.created",
    ]
    now = dt.datetime.now(dt.UTC)
    assert len(events(client, workspace, since=(now - dt.timedelta(minutes=1)).isoformat())) == 5
    assert events(client, workspace, until=(now - dt.timedelta(minutes=1)).isoformat()) == []

    first = client.get("/api/audit?limit=2", headers=bearer(workspace, "owner")).json()
    second = client.get(f"/api/audit?limit=2&cursor={first['next_cursor']}", headers=bearer(workspace, "owner")).json()
    third = client.get(f"/api/audit?limit=2&cursor={second['next_cursor']}", headers=bearer(workspace, "owner")).json()
    ids = [e["id"] for page in (first, second, third) for e in page["items"]]
    assert len(ids) == 5 == len(set(ids)) and ids == sorted(ids, reverse=True)
    assert third["next_cursor"] is None
    # Organization B's admin sees none of A's events.
    assert events(client, workspace, "stranger") == []


def test_no_secret_is_ever_stored(client: TestClient, workspace: Workspace, settings: Settings) -> None:
    login = client.post("/api/auth/login", json={"email": "owner@example.test", "password": PASSWORD}).json()
    client.post("/api/auth/login", json={"email": "owner@example.test", "password": "wrong " + PASSWORD})
    client.cookies.clear()
    session = {"authorization": f"Bearer {login['token']}"}
    token = client.post("/api/me/tokens", json={"name": "t", "scopes": ["read"]}, headers=session).json()["token"]
    client.post("/api/me/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}, headers=session)
    client.cookies.clear()
    accepted = client.post("/api/invites/accept", json={"token": INVITE_TOKEN, "name": "I", "password": NEW_PASSWORD})
    assert accepted.status_code == 201
    client.cookies.clear()

    with sqlite3.connect(settings.database_url.removeprefix("sqlite:///")) as conn:
        rows = conn.execute("SELECT * FROM audit_events").fetchall()
        hashes = [h for (h,) in conn.execute("SELECT password_hash FROM users")]
        hashes += [
            h for (h,) in conn.execute("SELECT token_hash FROM auth_sessions UNION SELECT token_hash FROM api_tokens")
        ]
    stored = "\n".join(repr(row) for row in rows)
    assert {row[3] for row in rows} >= {
        "auth.login",
        "auth.login_failed",
        "api_token.created",
        "account.password_changed",
        "invite.accepted",
    }
    secrets = [
        PASSWORD,
        NEW_PASSWORD,
        login["token"],
        login["csrf_token"],
        token,
        INVITE_TOKEN,
        accepted.json()["token"],
    ]
    for secret in secrets + hashes:
        assert secret not in stored


def test_details_naming_a_secret_are_refused() -> None:
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": [], "client": ("127.0.0.1", 1)})
    for key in ("password", "new_token", "csrf", "password_hash"):
        with pytest.raises(ValueError, match="secrets"):
            _event(
                request,
                AuditAction.LOGIN,
                organization_id=1,
                actor_id=1,
                target_type="user",
                target_id=1,
                details={key: "x"},
            )


@pytest.mark.postgres
def test_tokens_and_the_audit_log_on_postgresql(pg_database: tuple[str, Workspace], tmp_path: Path) -> None:
    url, ws = pg_database
    with TestClient(create_app(make_settings(tmp_path, database_url=url)), base_url="http://testserver") as client:
        made = client.post(
            "/api/me/tokens",
            json={"name": "pg", "scopes": ["read", "admin"], "expires_in_days": 1},
            headers=bearer(ws, "owner"),
        ).json()
        token = {"authorization": f"Bearer {made['token']}"}
        assert client.get(f"/api/projects/{ws.ids['px']}/tasks", headers=token).status_code == 200
        assert client.post("/api/auth/login", json={"email": ws.emails["staff"], "password": "nope"}).status_code == 401
        since = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
        page = client.get("/api/audit", params={"action": "auth.", "since": since}, headers=token).json()
        assert [e["action"] for e in page["items"]] == ["auth.login_failed"]
        assert [e["action"] for e in events(client, ws)] == ["auth.login_failed", "api_token.created"]
        assert client.delete(f"/api/me/tokens/{made['id']}", headers=bearer(ws, "owner")).status_code == 204
        assert client.get("/api/audit", headers=token).status_code == 401


def test_a_failed_sign_in_by_a_signed_in_caller_whose_use_is_being_recorded_answers_at_once(
    client: TestClient, workspace: Workspace, settings: Settings
) -> None:
    from server.security import token_hash

    # The caller's session was last used two minutes ago: authenticating this request records the use (a write),
    # and the failed sign-in is recorded by another connection. It used to wait out SQLite's busy timeout: 503.
    stale = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2)).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(settings.database_url.removeprefix("sqlite:///")) as conn:
        conn.execute(
            "UPDATE auth_sessions SET last_seen_at = ? WHERE token_hash = ?",
            (stale, token_hash(workspace.token("owner"))),
        )
    answer = client.post(
        "/api/auth/login",
        json={"email": "customer@example.test", "password": "wrong password"},
        headers=bearer(workspace, "owner"),
    )
    assert answer.status_code == 401, answer.text
    assert "auth.login_failed" in actions(client, workspace, action="auth.")
