"""Sign-in, sessions, CSRF and invitations, through the HTTP API."""

from __future__ import annotations

import datetime as dt
import re

from starlette.testclient import TestClient

from server.app import create_app
from server.settings import Settings
from tests.conftest import bearer
from tests.workspace import INVITE_TOKEN, PASSWORD, Workspace


def login(client: TestClient, email: str, password: str = PASSWORD) -> dict[str, object]:
    response = client.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_login_gives_token_and_httponly_cookie(client: TestClient, workspace: Workspace) -> None:
    response = client.post("/api/auth/login", json={"email": "Customer@Example.test ", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["email"] == "customer@example.test" and body["user"]["role"] == "customer"
    cookies = response.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookies if c.startswith("tandem_session="))
    assert "HttpOnly" in session_cookie and "SameSite=lax" in session_cookie and "Path=/" in session_cookie
    assert "Secure" not in session_cookie  # http base URL in development
    csrf_cookie = next(c for c in cookies if c.startswith("tandem_csrf="))
    assert "HttpOnly" not in csrf_cookie
    # The bearer token works on its own.
    fresh = TestClient(client.app)
    assert fresh.get("/api/me", headers={"authorization": f"Bearer {body['token']}"}).status_code == 200


def test_secure_cookie_in_production(tmp_path, workspace_template) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from tests.conftest import make_settings

    shutil.copy(workspace_template[0], tmp_path / "tandem.db")
    settings = make_settings(tmp_path, env="production", base_url="https://tandem.example.com")
    with TestClient(create_app(settings), base_url="https://tandem.example.com") as client:
        response = client.post("/api/auth/login", json={"email": "customer@example.test", "password": PASSWORD})
        assert all("Secure" in c for c in response.headers.get_list("set-cookie"))
        assert "max-age=31536000" in response.headers["strict-transport-security"]


def test_wrong_password_and_unknown_email_answer_alike(client: TestClient, workspace: Workspace) -> None:
    wrong = client.post("/api/auth/login", json={"email": "customer@example.test", "password": "nope nope"})
    unknown = client.post("/api/auth/login", json={"email": "nobody@example.test", "password": "nope nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"error": "invalid_credentials", "message": wrong.json()["message"]}


def test_login_is_rate_limited_per_account(client: TestClient, workspace: Workspace) -> None:
    for _ in range(10):
        client.post("/api/auth/login", json={"email": "staff@example.test", "password": "wrong guess"})
    blocked = client.post("/api/auth/login", json={"email": "staff@example.test", "password": PASSWORD})
    assert blocked.status_code == 429 and blocked.json()["error"] == "rate_limited"
    # The same answer for an account that does not exist: no enumeration through the limiter.
    for _ in range(10):
        client.post("/api/auth/login", json={"email": "ghost@example.test", "password": "wrong guess"})
    ghost = client.post("/api/auth/login", json={"email": "ghost@example.test", "password": "wrong guess"})
    assert ghost.status_code == 429
    # Other accounts are unaffected.
    assert client.post("/api/auth/login", json={"email": "owner@example.test", "password": PASSWORD}).status_code == 200


def test_cookie_writes_need_the_csrf_token(client: TestClient, workspace: Workspace) -> None:
    body = login(client, "owner@example.test")
    # The client now holds the session cookie; a write without the header is refused.
    refused = client.patch("/api/me", json={"locale": "sv"})
    assert refused.status_code == 403 and refused.json()["error"] == "csrf_failed"
    wrong = client.patch("/api/me", json={"locale": "sv"}, headers={"x-csrf-token": "0" * 64})
    assert wrong.status_code == 403
    accepted = client.patch("/api/me", json={"locale": "sv"}, headers={"x-csrf-token": str(body["csrf_token"])})
    assert accepted.status_code == 200 and accepted.json()["locale"] == "sv"
    # Reads need no token; bearer writes need none either.
    assert client.get("/api/me").status_code == 200
    assert client.get("/api/me").json()["csrf_token"] == body["csrf_token"]


def test_json_bodies_must_be_json(client: TestClient, workspace: Workspace) -> None:
    headers = bearer(workspace, "owner")
    form = client.post("/api/clients", content=b"name=x", headers={**headers, "content-type": "text/plain"})
    assert form.status_code == 415
    malformed = client.post("/api/clients", content=b"{nope", headers={**headers, "content-type": "application/json"})
    assert malformed.status_code == 400 and malformed.json()["error"] == "malformed_json"
    deep = "[" * 100 + "]" * 100
    nested = client.post(
        "/api/clients",
        content=('{"name": ' + deep + "}").encode(),
        headers={**headers, "content-type": "application/json"},
    )
    assert nested.status_code == 400
    unknown_field = client.post("/api/clients", json={"name": "x", "evil": 1}, headers=headers)
    assert unknown_field.status_code == 422 and unknown_field.json()["details"][0]["field"] == "evil"
    big = client.post(
        "/api/clients",
        content=b'{"name": "' + b"a" * 1_100_000 + b'"}',
        headers={**headers, "content-type": "application/json"},
    )
    assert big.status_code == 413


def test_logout_ends_the_session(client: TestClient, workspace: Workspace) -> None:
    token = login(client, "viewer@example.test")["token"]
    headers = {"authorization": f"Bearer {token}"}
    assert client.post("/api/auth/logout", headers=headers).status_code == 204
    assert client.get("/api/me", headers=headers).status_code == 401


def test_each_login_is_a_new_session(client: TestClient, workspace: Workspace) -> None:
    first = login(client, "viewer@example.test")["token"]
    second = login(client, "viewer@example.test")["token"]
    assert first != second
    client.post("/api/auth/logout-everywhere", headers={"authorization": f"Bearer {second}"})
    assert client.get("/api/me", headers={"authorization": f"Bearer {first}"}).status_code == 401


def test_invite_to_first_board_in_one_flow(client: TestClient, workspace: Workspace, caplog) -> None:  # type: ignore[no-untyped-def]
    owner = bearer(workspace, "owner")
    project = workspace.ids["px"]
    with caplog.at_level("INFO", logger="server.mail.outgoing"):
        created = client.post(
            "/api/invites",
            headers=owner,
            json={"project_id": project, "email": "New.Person@Example.com", "role": "customer"},
        )
    assert created.status_code == 201, created.text
    link = created.json()["link"]  # no SMTP: the inviter is shown the link
    assert link.startswith("http://testserver/invite#")
    assert link in caplog.text  # and it is logged
    token = link.split("#", 1)[1]
    guest = TestClient(client.app)
    preview = guest.post("/api/invites/preview", json={"token": token})
    assert preview.status_code == 200 and preview.json()["project_name"] == "PX"
    weak = guest.post("/api/invites/accept", json={"token": token, "name": "New", "password": "password123"})
    assert weak.status_code == 422 and weak.json()["error"] == "weak_password"
    accepted = guest.post(
        "/api/invites/accept",
        json={"token": token, "name": "New Person", "password": "a very fine passphrase", "locale": "sv"},
    )
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["user"]["role"] == "customer" and accepted.json()["project_id"] == project
    # Signed in by the cookie: the project and its shared tasks are right there.
    projects = guest.get("/api/projects").json()["items"]
    assert [p["id"] for p in projects] == [project]
    tasks = guest.get(f"/api/projects/{project}/tasks").json()["items"]
    assert tasks and all(t["visibility"] == "shared" for t in tasks)
    # Single use.
    again = TestClient(client.app).post(
        "/api/invites/accept", json={"token": token, "name": "Eve", "password": "another fine passphrase"}
    )
    assert again.status_code == 404
    # Stored hashed: the token itself is nowhere in the database.
    import sqlite3

    db_path = re.sub(r"^sqlite:///", "", client.app.state.settings.database_url)
    with sqlite3.connect(db_path) as conn:
        hashes = [row[0] for row in conn.execute("select token_hash from invites")]
    assert token not in hashes and len(hashes) == 2


def test_expired_invite_is_refused(client: TestClient, workspace: Workspace, settings: Settings) -> None:
    import sqlite3

    db_path = settings.database_url.removeprefix("sqlite:///")
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).replace(tzinfo=None).isoformat(sep=" ")
    with sqlite3.connect(db_path) as conn:
        conn.execute("update invites set expires_at = ? where id = ?", (past, workspace.ids["px_invite"]))
    response = client.post("/api/invites/preview", json={"token": INVITE_TOKEN})
    assert response.status_code == 404 and response.json()["error"] == "invite_invalid"


def test_inviting_an_existing_colleague_adds_them(client: TestClient, workspace: Workspace) -> None:
    response = client.post(
        "/api/invites",
        headers=bearer(workspace, "owner"),
        json={"project_id": workspace.ids["px"], "email": "spare_staff@example.com", "role": "member"},
    )
    # spare_staff's address is @example.test; this one is new, so it is a real invitation for new staff.
    assert response.status_code == 201 and response.json()["status"] == "invited"
    added = client.post(
        "/api/projects/{}/members".format(workspace.ids["px"]),
        headers=bearer(workspace, "owner"),
        json={"user_id": workspace.users["spare_staff"], "role": "member"},
    )
    assert added.status_code == 201
    members = client.get(f"/api/projects/{workspace.ids['px']}/members", headers=bearer(workspace, "customer"))
    assert all(m["email"] is None or m["user_id"] == workspace.users["customer"] for m in members.json()["items"])


def test_customer_cannot_join_another_clients_project(client: TestClient, workspace: Workspace) -> None:
    response = client.post(
        f"/api/projects/{workspace.ids['py']}/members",
        headers=bearer(workspace, "owner"),
        json={"user_id": workspace.users["spare_customer"], "role": "customer"},
    )
    assert response.status_code == 422


def _https_client(tmp_path, workspace_template, **overrides):  # type: ignore[no-untyped-def]
    import shutil

    from tests.conftest import make_settings

    tmp_path.mkdir(parents=True, exist_ok=True)
    shutil.copy(workspace_template[0], tmp_path / "tandem.db")
    settings = make_settings(tmp_path, base_url="https://tandem.example.com", **overrides)
    return TestClient(create_app(settings), base_url="https://tandem.example.com")


def test_behind_https_the_cookies_are_host_prefixed_and_writes_find_their_csrf(tmp_path, workspace_template) -> None:  # type: ignore[no-untyped-def]
    with _https_client(tmp_path, workspace_template) as client:
        response = client.post("/api/auth/login", json={"email": "customer@example.test", "password": PASSWORD})
        set_cookies = response.headers.get_list("set-cookie")
        session = next(c for c in set_cookies if c.startswith("__Host-tandem_session="))
        csrf = next(c for c in set_cookies if c.startswith("__Host-tandem_csrf="))
        for cookie in (session, csrf):
            assert "Secure" in cookie and "Path=/" in cookie and "Domain" not in cookie
        assert "HttpOnly" in session and "HttpOnly" not in csrf
        # Signing in clears the unprefixed names a browser may still hold from before.
        assert any(c.startswith("tandem_session=") and "Max-Age=0" in c for c in set_cookies)
        assert client.cookies.get("__Host-tandem_session") == response.json()["token"]
        # A cookie write echoes the __Host- CSRF cookie.
        token = client.cookies["__Host-tandem_csrf"]
        assert client.patch("/api/me", json={"name": "Kim"}, headers={"x-csrf-token": token}).status_code == 200
        assert client.patch("/api/me", json={"name": "Kim"}).status_code == 403
        out = client.post("/api/auth/logout", headers={"x-csrf-token": token})
        assert out.status_code == 204
        cleared = out.headers.get_list("set-cookie")
        for name in ("__Host-tandem_session", "__Host-tandem_csrf", "tandem_session", "tandem_csrf"):
            assert any(c.startswith(f"{name}=") and "Max-Age=0" in c and "Secure" in c for c in cleared), name


def test_a_session_cookie_from_before_the_prefix_keeps_signing_in_unless_refused(  # type: ignore[no-untyped-def]
    tmp_path, workspace_template
) -> None:
    token = "token-customer-" + "x" * 24  # a session of the seeded workspace
    with _https_client(tmp_path, workspace_template) as client:
        client.cookies.set("tandem_session", token)
        assert client.get("/api/me").status_code == 200
    with _https_client(tmp_path / "refused", workspace_template, accept_legacy_cookie=False) as client:
        client.cookies.set("tandem_session", token)
        assert client.get("/api/me").status_code == 401
        client.cookies.set("__Host-tandem_session", token)
        assert client.get("/api/me").status_code == 200
