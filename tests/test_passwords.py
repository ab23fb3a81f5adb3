"""The password policy everywhere a password is set, password reset by email, the session idle timeout, the
periodic sweep of live sockets (``/ws`` and ``/yjs``) and the purge of ended sessions and spent tokens."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from channels.client import TandemClient
from server.accounts.passwords import MAX_PASSWORD_LENGTH, WeakReason, breached_passwords, password_weakness
from server.app import create_app
from server.security import token_hash
from server.settings import Settings
from tests.conftest import bearer, make_settings
from tests.crdt.yclient import YClient
from tests.nodes import Node, cluster, wait_for_passes
from tests.test_settings_and_cli import tandem
from tests.workspace import PASSWORD, Workspace

NEW_PASSWORD = "plum orchard at dusk"
LINK = re.compile(r"http://\S+/reset-password#([A-Za-z0-9_-]+)")


def utc(delta: dt.timedelta = dt.timedelta()) -> str:
    """A naive UTC timestamp as the database stores it, ``delta`` from now."""
    return (dt.datetime.now(dt.UTC).replace(tzinfo=None) + delta).isoformat(sep=" ")


def sql(settings_or_url: Settings | str, statement: str, *params: object) -> list[tuple[object, ...]]:
    url = settings_or_url if isinstance(settings_or_url, str) else settings_or_url.database_url
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        return conn.execute(statement, params).fetchall()


def add_session(url: str, user_id: int, token: str, *, last_seen: dt.timedelta, expires: dt.timedelta) -> None:
    sql(
        url,
        "insert into auth_sessions (user_id, token_hash, created_at, expires_at, last_seen_at, user_agent)"
        " values (?, ?, ?, ?, ?, '')",
        user_id,
        token_hash(token),
        utc(-dt.timedelta(hours=1)),
        utc(expires),
        utc(last_seen),
    )


# -- the policy ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "email", "reason"),
    [
        ("short pass", "", WeakReason.TOO_SHORT),
        ("x" * (MAX_PASSWORD_LENGTH - 3) + "abcd", "", WeakReason.TOO_LONG),
        ("abcabcabcabcabc", "", WeakReason.REPETITIVE),
        ("password1234", "", WeakReason.BREACHED),
        ("1qaz2wsx3edc", "", WeakReason.BREACHED),
        ("Sunshine2026!", "", WeakReason.BREACHED),  # a listed password with decoration around it
        ("!!Football!!99", "", WeakReason.BREACHED),
        ("hello margaret smith", "Margaret.Smith@example.com", None),  # the local part as a whole is absent
        ("margaret.smith rules", "Margaret.Smith@example.com", WeakReason.CONTAINS_EMAIL),
        ("my Tandem password", "", WeakReason.CONTAINS_PRODUCT_NAME),
        ("correct horse battery", "customer@example.test", None),
        ("plum orchard at dusk", "", None),
        ("lösenord på svenska ✓", "", None),
        ("seventy odd characters of a long passphrase are fine and so is a space", "", None),
        ("jo jo jo jo banana", "jo@example.com", None),  # too short a local part to count
    ],
)
def test_policy_reasons(password: str, email: str, reason: WeakReason | None) -> None:
    weakness = password_weakness(password, email=email)
    assert (weakness.reason if weakness else None) == reason


def test_bundled_breached_list_is_real_and_loaded_once() -> None:
    known = breached_passwords()
    assert len(known) > 45_000
    assert {"123456", "password", "qwerty", "iloveyou", "1q2w3e4r5t6y"} <= known
    assert breached_passwords() is known
    # Every entry of 12+ characters is refused as it is (the length rule refuses the rest).
    long_ones = [p for p in known if len(p) >= 12 and len(set(p)) >= 4 and "tandem" not in p]
    assert len(long_ones) > 250
    assert all(password_weakness(p) is not None for p in long_ones)


def weak_type(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "weak_password"
    return str(body["details"][0]["type"])


def test_weak_passwords_are_refused_on_change_and_invite(client: TestClient, workspace: Workspace) -> None:
    headers = bearer(workspace, "viewer")
    for new, reason in [("qwertyuiop12", "breached"), ("tiny", "too_short"), ("viewer of things", "contains_email")]:
        response = client.post(
            "/api/me/password", headers=headers, json={"current_password": PASSWORD, "new_password": new}
        )
        assert weak_type(response) == reason
        assert response.json()["details"][0]["field"] == "new_password"
    from tests.workspace import INVITE_TOKEN

    accept = client.post("/api/invites/accept", json={"token": INVITE_TOKEN, "name": "N", "password": "iloveyou2024"})
    assert weak_type(accept) == "breached"
    # Nothing was changed by the refusals.
    assert client.get("/api/me", headers=headers).status_code == 200


def test_create_admin_refuses_a_breached_password(tmp_path: Path) -> None:
    env = {"TANDEM_DATA_DIR": str(tmp_path), "TANDEM_ADMIN_PASSWORD": "password123456"}
    args = ("create-admin", "--email", "boss@example.com", "--name", "Boss", "--organization", "Acme")
    weak = tandem(*args, env=env)
    assert weak.returncode == 2 and "breached" in weak.stderr
    strong = tandem(*args, env={**env, "TANDEM_ADMIN_PASSWORD": NEW_PASSWORD})
    assert strong.returncode == 0, strong.stderr


# -- password reset ---------------------------------------------------------------------------------------------


def mailed_token(caplog: pytest.LogCaptureFixture, to: str, link: re.Pattern[str] = LINK) -> str:
    """The token of the ``link`` (by default a reset link) mailed (logged, without SMTP) to ``to``; the mail goes out
    in the background."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for record in caplog.records:
            if record.name == "server.mail.outgoing" and f"to={to}" in record.getMessage():
                match = link.search(record.getMessage())
                assert match is not None
                return match.group(1)
        time.sleep(0.02)
    raise AssertionError(f"no {link.pattern} mailed to {to}")


def test_reset_flow_end_to_end(
    client: TestClient, workspace: Workspace, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    email = workspace.emails["customer"]
    with caplog.at_level("INFO", logger="server.mail.outgoing"):
        known = client.post("/api/auth/password-reset", json={"email": email.upper()})
        unknown = client.post("/api/auth/password-reset", json={"email": "nobody@example.test"})
        token = mailed_token(caplog, email)
    # No enumeration: the same status and body either way, and no mail for the unknown address.
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    assert "nobody@example.test" not in caplog.text
    assert (settings.base_url + "/reset-password#") in caplog.text
    # Stored hashed, with the configured lifetime.
    rows = sql(settings, "select token_hash, created_at, expires_at from password_resets")
    assert [r[0] for r in rows] == [token_hash(token)]
    lifetime = dt.datetime.fromisoformat(str(rows[0][2])) - dt.datetime.fromisoformat(str(rows[0][1]))
    assert lifetime == dt.timedelta(minutes=settings.password_reset_minutes)

    # A weak password is refused and does not use the link up.
    weak = client.post("/api/auth/password-reset/confirm", json={"token": token, "password": "password12345"})
    assert weak_type(weak) == "breached"
    old_session = bearer(workspace, "customer")
    assert client.get("/api/me", headers=old_session).status_code == 200

    done = client.post("/api/auth/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD})
    assert done.status_code == 204, done.text
    assert "token" not in done.text  # not signed in: the person signs in with the new password
    # Every earlier session ended; the old password is gone; the new one works.
    assert client.get("/api/me", headers=old_session).status_code == 401
    old = client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert old.status_code == 401
    new = client.post("/api/auth/login", json={"email": email, "password": NEW_PASSWORD})
    assert new.status_code == 200
    # Single use.
    again = client.post("/api/auth/password-reset/confirm", json={"token": token, "password": "another plum orchard"})
    assert again.status_code == 404 and again.json()["error"] == "reset_invalid"
    assert sql(settings, "select count(*) from password_resets") == [(0,)]


def test_only_the_newest_link_works_and_links_expire(
    client: TestClient, workspace: Workspace, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    email = workspace.emails["staff"]
    with caplog.at_level("INFO", logger="server.mail.outgoing"):
        client.post("/api/auth/password-reset", json={"email": email})
        first = mailed_token(caplog, email)
        caplog.clear()
        client.post("/api/auth/password-reset", json={"email": email})
        second = mailed_token(caplog, email)
    assert first != second
    stale = client.post("/api/auth/password-reset/confirm", json={"token": first, "password": NEW_PASSWORD})
    assert stale.status_code == 404
    sql(settings, "update password_resets set expires_at = ?", utc(-dt.timedelta(seconds=1)))
    expired = client.post("/api/auth/password-reset/confirm", json={"token": second, "password": NEW_PASSWORD})
    assert expired.status_code == 404 and expired.json()["error"] == "reset_invalid"
    assert client.post("/api/auth/login", json={"email": email, "password": PASSWORD}).status_code == 200


def test_reset_requests_are_rate_limited_alike_for_known_and_unknown(client: TestClient, workspace: Workspace) -> None:
    answers: dict[str, list[int]] = {}
    for email in (workspace.emails["owner"], "ghost@example.test"):
        answers[email] = [client.post("/api/auth/password-reset", json={"email": email}).status_code for _ in range(7)]
    assert answers[workspace.emails["owner"]] == answers["ghost@example.test"] == [202] * 5 + [429] * 2


def test_changing_the_password_voids_reset_links(
    client: TestClient, workspace: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    email = workspace.emails["viewer"]
    with caplog.at_level("INFO", logger="server.mail.outgoing"):
        client.post("/api/auth/password-reset", json={"email": email})
        token = mailed_token(caplog, email)
    changed = client.post(
        "/api/me/password",
        headers=bearer(workspace, "viewer"),
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert changed.status_code == 204
    voided = client.post("/api/auth/password-reset/confirm", json={"token": token, "password": "another plum orchard"})
    assert voided.status_code == 404


# -- idle timeout -----------------------------------------------------------------------------------------------


@pytest.fixture
def idle_client(tmp_path: Path, workspace: Workspace) -> Iterator[tuple[TestClient, Settings]]:
    """The app with a one-minute idle timeout."""
    settings = make_settings(tmp_path, session_idle_minutes=1)
    with TestClient(create_app(settings), base_url="http://testserver") as test_client:
        yield test_client, settings


def test_idle_sessions_are_refused_and_use_is_recorded_sparingly(
    idle_client: tuple[TestClient, Settings], workspace: Workspace
) -> None:
    client, settings = idle_client
    user = workspace.users["customer"]
    add_session(
        settings.database_url,
        user,
        "idle-token-" + "a" * 30,
        last_seen=-dt.timedelta(seconds=61),
        expires=dt.timedelta(days=1),
    )
    add_session(
        settings.database_url,
        user,
        "used-token-" + "b" * 30,
        last_seen=-dt.timedelta(seconds=20),
        expires=dt.timedelta(days=1),
    )
    add_session(
        settings.database_url,
        user,
        "just-token-" + "c" * 30,
        last_seen=-dt.timedelta(seconds=1),
        expires=dt.timedelta(days=1),
    )

    def me(token: str) -> int:
        return client.get("/api/me", headers={"authorization": f"Bearer {token}"}).status_code

    def last_seen(token: str) -> dt.datetime:
        (value,) = sql(settings, "select last_seen_at from auth_sessions where token_hash = ?", token_hash(token))[0]
        return dt.datetime.fromisoformat(str(value))

    add_session(
        settings.database_url,
        user,
        "past-token-" + "d" * 30,
        last_seen=-dt.timedelta(seconds=1),
        expires=-dt.timedelta(seconds=1),
    )
    assert me("idle-token-" + "a" * 30) == 401
    assert me("past-token-" + "d" * 30) == 401  # the absolute lifetime still holds
    # Used 20 s ago: still valid, and the use is recorded (the stored value is older than the touch interval).
    before = last_seen("used-token-" + "b" * 30)
    assert me("used-token-" + "b" * 30) == 200
    assert last_seen("used-token-" + "b" * 30) - before > dt.timedelta(seconds=15)
    # Used a second ago: valid, and no write.
    before = last_seen("just-token-" + "c" * 30)
    assert me("just-token-" + "c" * 30) == 200
    assert last_seen("just-token-" + "c" * 30) == before


# -- live sockets: closed on reset, and by the sweep when a session expires or idles ------------------------------


@pytest.fixture
def sweeping_node(database: tuple[str, Workspace], tmp_path: Path) -> Iterator[Node]:
    extra = {"TANDEM_SESSION_SWEEP_SECONDS": "1", "TANDEM_SESSION_IDLE_MINUTES": "1"}
    with cluster(tmp_path, database[0], None, count=1, extra_env=extra) as (node,):
        yield node


async def open_sockets(node: Node, ws: Workspace, token: str) -> tuple[TandemClient, YClient]:
    hub = await TandemClient.connect(node.ws, token=token, ping_interval=None)
    await hub.subscribe(f"project:{ws.ids['px']}:shared")
    note = await YClient.connect(f"ws://127.0.0.1:{node.port}/yjs/{ws.ids['px_shared_note']}", token=token)
    await note.wait_text("px shared note text")
    return hub, note


async def closed_with(hub: TandemClient, note: YClient) -> tuple[int | None, int | None]:
    async with asyncio.timeout(10):
        while hub.close_code is None:
            await asyncio.sleep(0.05)
    return hub.close_code, await note.wait_closed()


async def test_sweep_closes_sockets_of_idle_and_expired_sessions_only(
    sweeping_node: Node, database: tuple[str, Workspace]
) -> None:
    url, ws = database
    user = ws.users["customer"]
    tokens = {name: f"{name}-session-" + "s" * 24 for name in ("idle", "expired", "fresh")}
    for token in tokens.values():
        add_session(url, user, token, last_seen=dt.timedelta(), expires=dt.timedelta(days=1))
    opened = {name: await open_sockets(sweeping_node, ws, token) for name, token in tokens.items()}
    try:
        # Time passes for two of them: one unused beyond the idle timeout, one past its absolute expiry.
        sql(
            url,
            "update auth_sessions set last_seen_at = ? where token_hash = ?",
            utc(-dt.timedelta(minutes=2)),
            token_hash(tokens["idle"]),
        )
        sql(
            url,
            "update auth_sessions set expires_at = ? where token_hash = ?",
            utc(-dt.timedelta(seconds=1)),
            token_hash(tokens["expired"]),
        )
        assert await closed_with(*opened["idle"]) == (4401, 4401)
        assert await closed_with(*opened["expired"]) == (4401, 4401)
        # The fresh session's sockets outlive several sweeps.
        sql(url, "update auth_sessions set last_seen_at = ? where token_hash = ?", utc(), token_hash(tokens["fresh"]))
        await wait_for_passes(sweeping_node, "session-sweeper", 2)  # one sweep over the /ws and the /yjs sockets
        hub, note = opened["fresh"]
        assert hub.close_code is None and note.close_code is None
    finally:
        for hub, note in opened.values():
            await hub.close()
            await note.close()


@pytest.fixture
def node(database: tuple[str, Workspace], tmp_path: Path) -> Iterator[Node]:
    """A node whose sweep waits an hour: whatever closes a socket sooner is not the sweep."""
    with cluster(tmp_path, database[0], None, count=1, extra_env={"TANDEM_SESSION_SWEEP_SECONDS": "3600"}) as (one,):
        yield one


async def test_reset_closes_the_accounts_live_sockets(node: Node, database: tuple[str, Workspace]) -> None:
    url, ws = database
    token = "reset-victim-session-" + "r" * 24
    add_session(url, ws.users["customer"], token, last_seen=dt.timedelta(), expires=dt.timedelta(days=1))
    hub, note = await open_sockets(node, ws, token)
    try:
        async with httpx.AsyncClient(base_url=node.http, timeout=10) as api:
            asked = await api.post("/api/auth/password-reset", json={"email": ws.emails["customer"]})
            assert asked.status_code == 202
            async with asyncio.timeout(10):
                while not (match := LINK.search(node.log())):
                    await asyncio.sleep(0.05)
            done = await api.post(
                "/api/auth/password-reset/confirm", json={"token": match.group(1), "password": NEW_PASSWORD}
            )
            assert done.status_code == 204, done.text
            # Closed by the control message (the sweep is an hour away).
            assert await closed_with(hub, note) == (4401, 4401)
            assert (await api.get("/api/me", headers={"authorization": f"Bearer {token}"})).status_code == 401
    finally:
        await hub.close()
        await note.close()


# -- purge ------------------------------------------------------------------------------------------------------


def test_ended_sessions_and_spent_tokens_are_purged_periodically(tmp_path: Path, workspace: Workspace) -> None:
    settings = make_settings(tmp_path, session_purge_seconds=1, session_idle_minutes=60)
    url = settings.database_url
    user = workspace.users["staff"]
    add_session(url, user, "expired-" + "e" * 30, last_seen=dt.timedelta(), expires=-dt.timedelta(seconds=1))
    add_session(url, user, "idle-" + "i" * 30, last_seen=-dt.timedelta(minutes=61), expires=dt.timedelta(days=1))
    add_session(url, user, "alive-" + "a" * 30, last_seen=-dt.timedelta(minutes=59), expires=dt.timedelta(days=1))
    for name, expires in (("spent-reset", -dt.timedelta(seconds=1)), ("open-reset", dt.timedelta(minutes=5))):
        sql(
            url,
            "insert into password_resets (user_id, token_hash, created_at, expires_at) values (?, ?, ?, ?)",
            user,
            token_hash(name),
            utc(-dt.timedelta(minutes=30)),
            utc(expires),
        )
    invite = workspace.ids["px_invite"]
    (invites_before,) = sql(url, "select count(*) from invites")[0]
    sql(
        url,
        "update invites set accepted_at = ?, expires_at = ? where id = ?",
        utc(-dt.timedelta(days=31)),
        utc(-dt.timedelta(days=29)),
        invite,
    )
    sessions_before = {row[0] for row in sql(url, "select token_hash from auth_sessions")}

    with TestClient(create_app(settings), base_url="http://testserver"):
        deadline = time.monotonic() + 10
        while sql(url, "select count(*) from password_resets") != [(1,)] and time.monotonic() < deadline:
            time.sleep(0.05)
    sessions_after = {row[0] for row in sql(url, "select token_hash from auth_sessions")}
    assert sessions_before - sessions_after == {token_hash("expired-" + "e" * 30), token_hash("idle-" + "i" * 30)}
    assert [r[0] for r in sql(url, "select token_hash from password_resets")] == [token_hash("open-reset")]
    assert sql(url, "select count(*) from invites where id = ?", invite) == [(0,)]
    assert sql(url, "select count(*) from invites") == [(invites_before - 1,)]


@pytest.mark.postgres
async def test_purge_on_postgresql(pg_database: tuple[str, Workspace], tmp_path: Path) -> None:
    from sqlalchemy import text

    from server.db import Database
    from server.live.session_upkeep import purge_ended

    url, ws = pg_database
    settings = make_settings(tmp_path, database_url=url, session_idle_minutes=60)
    db = Database(url)
    try:
        async with db.session() as session:
            for token, seen, expires in (
                ("pg-expired", dt.timedelta(), -dt.timedelta(seconds=1)),
                ("pg-idle", -dt.timedelta(minutes=61), dt.timedelta(days=1)),
            ):
                await session.exec(  # type: ignore[call-overload]
                    text(
                        "insert into auth_sessions (user_id, token_hash, created_at, expires_at, last_seen_at,"
                        " user_agent) values (:user, :hash, now(), :expires, :seen, '')"
                    ).bindparams(
                        user=ws.users["staff"],
                        hash=token_hash(token),
                        expires=dt.datetime.now(dt.UTC) + expires,
                        seen=dt.datetime.now(dt.UTC) + seen,
                    )
                )
            await session.commit()
        purged = await purge_ended(db, settings)
        assert purged.sessions == 2  # the seeded sessions are fresh and stay
        assert (await purge_ended(db, settings)).sessions == 0
    finally:
        await db.close()
