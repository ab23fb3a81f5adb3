"""Sign in by link (server/accounts/routes/sign_in_link.py): single use, expiring, hashed at rest, bound to the
browser that asked, rate-limited, the same answer for any address, staff only where the organization allows it,
audited; and invitations accepted without a password."""

from __future__ import annotations

import datetime as dt
import re
import time
from http.cookiejar import Cookie

import pyotp
import pytest
from starlette.testclient import TestClient

from server.security import token_hash
from server.settings import Settings
from tests.conftest import bearer
from tests.test_passwords import mailed_token, sql, utc
from tests.test_second_factor import T0, Clock, enrol_totp
from tests.workspace import INVITE_TOKEN, PASSWORD, Workspace

LINK = re.compile(r"http://\S+/sign-in-link#([A-Za-z0-9_-]+)")


def mailed_link(caplog: pytest.LogCaptureFixture, to: str) -> str:
    """The token of the sign-in link mailed (logged, without SMTP) to ``to``; the mail goes out in the background."""
    return mailed_token(caplog, to, LINK)


def audited(settings: Settings, action: str, count: int = 1) -> list[tuple[object, ...]]:
    """The audit rows of ``action`` (target, details), once there are ``count`` of them (requests are audited after
    the answer)."""
    deadline = time.monotonic() + 5
    while True:
        rows = sql(settings, "select target_id, details from audit_events where action = ? order by id", action)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.02)


def other_browser(client: TestClient) -> list[Cookie]:
    """Forget the client's cookies, as a fresh browser would have none; returns them, to come back with."""
    cookies = list(client.cookies.jar)
    client.cookies.clear()
    return cookies


def back_in_the_first_browser(client: TestClient, cookies: list[Cookie]) -> None:
    client.cookies.clear()
    for cookie in cookies:
        client.cookies.jar.set_cookie(cookie)


def test_a_link_signs_in_once_and_only_the_browser_that_asked(
    client: TestClient, workspace: Workspace, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    email = workspace.emails["customer"]
    with caplog.at_level("INFO", logger="server.mail.outgoing"):
        asked = client.post("/api/auth/link", json={"email": email.upper()})
        token = mailed_link(caplog, email)
    assert asked.status_code == 202
    cookie = asked.headers["set-cookie"]
    assert "tandem_link=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Path=/api/auth/link" in cookie and f"Max-Age={15 * 60}" in cookie
    # Stored hashed (the token and the browser's cookie), with the configured lifetime.
    rows = sql(settings, "select token_hash, browser_hash, created_at, expires_at, used_at from sign_in_links")
    assert len(rows) == 1 and rows[0][0] == token_hash(token) and rows[0][4] is None
    assert rows[0][1] == token_hash(client.cookies["tandem_link"])
    lifetime = dt.datetime.fromisoformat(str(rows[0][3])) - dt.datetime.fromisoformat(str(rows[0][2]))
    assert lifetime == dt.timedelta(minutes=settings.signin_link_minutes)

    # Another browser (no cookie, or another one) is refused, and the link is not spent by it.
    mine = other_browser(client)
    elsewhere = client.post("/api/auth/link/redeem", json={"token": token})
    assert elsewhere.status_code == 403 and elsewhere.json()["error"] == "link_other_browser"
    assert "set-cookie" not in elsewhere.headers or "tandem_session" not in elsewhere.headers["set-cookie"]
    client.cookies.set("tandem_link", "a-cookie-of-another-browser-0123456789", path="/api/auth/link")
    assert client.post("/api/auth/link/redeem", json={"token": token}).status_code == 403
    assert sql(settings, "select used_at from sign_in_links") == [(None,)]

    back_in_the_first_browser(client, mine)
    signed_in = client.post("/api/auth/link/redeem", json={"token": token})
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["user"]["email"] == email
    me = client.get("/api/me")  # the session cookie it set
    assert me.status_code == 200 and me.json()["user"]["id"] == workspace.users["customer"]
    # Single use.
    again = client.post("/api/auth/link/redeem", json={"token": token})
    assert again.status_code == 404 and again.json()["error"] == "link_invalid"

    user = workspace.users["customer"]
    assert [r[0] for r in audited(settings, "auth.link_requested")] == [user]
    assert [r[0] for r in audited(settings, "auth.link_used")] == [user]
    refusals = audited(settings, "auth.link_refused", 3)
    assert [(r[0], r[1]) for r in refusals] == [
        (user, '{"reason": "other_browser"}'),
        (user, '{"reason": "other_browser"}'),
        (user, '{"reason": "used"}'),
    ]
    unknown = client.post("/api/auth/link/redeem", json={"token": "no-such-link-" + "z" * 30})
    assert unknown.status_code == 404 and unknown.json()["error"] == "link_invalid"


def test_a_link_expires_and_only_the_newest_works(
    client: TestClient, workspace: Workspace, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    email = workspace.emails["viewer"]
    with caplog.at_level("INFO", logger="server.mail.outgoing"):
        client.post("/api/auth/link", json={"email": email})
        first = mailed_link(caplog, email)
        caplog.clear()
        client.post("/api/auth/link", json={"email": email})
        second = mailed_link(caplog, email)
    stale = client.post("/api/auth/link/redeem", json={"token": first})
    assert stale.status_code == 404 and stale.json()["error"] == "link_invalid"
    # The clock moves past the link's expiry.
    sql(settings, "update sign_in_links set expires_at = ?", utc(-dt.timedelta(seconds=1)))
    expired = client.post("/api/auth/link/redeem", json={"token": second})
    assert expired.status_code == 404 and expired.json()["error"] == "link_invalid"
    assert client.get("/api/auth/session").json()["user"] is None
    assert audited(settings, "auth.link_refused")[-1][1] == '{"reason": "expired"}'


def test_no_enumeration_and_rate_limits_alike(client: TestClient, workspace: Workspace) -> None:
    answers: dict[str, list[tuple[int, str]]] = {}
    for email in (workspace.emails["customer"], workspace.emails["staff"], "ghost@example.test"):
        answers[email] = []
        for _ in range(7):
            response = client.post("/api/auth/link", json={"email": email})
            answers[email].append((response.status_code, response.text))
    known, staff, ghost = answers.values()
    assert [status for status, _ in known] == [202] * 5 + [429] * 2
    assert known == staff == ghost  # the same status and body, whoever the address belongs to


def test_the_per_ip_limit_holds_across_addresses(client: TestClient) -> None:
    statuses = [client.post("/api/auth/link", json={"email": f"p{n}@example.test"}).status_code for n in range(31)]
    assert statuses == [202] * 30 + [429]


def test_staff_sign_in_by_link_only_where_the_organization_allows_it(
    client: TestClient, workspace: Workspace, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    email = workspace.emails["staff"]
    with caplog.at_level("INFO", logger="server.mail.outgoing"):
        refused = client.post("/api/auth/link", json={"email": email})
        assert refused.status_code == 202
        assert audited(settings, "auth.link_refused")[-1][1] == '{"reason": "staff_not_allowed"}'
        assert f"to={email}" not in caplog.text and sql(settings, "select count(*) from sign_in_links") == [(0,)]

        sql(settings, "update organizations set allow_staff_link_sign_in = 1 where slug = 'agency-a'")
        client.post("/api/auth/link", json={"email": email})
        token = mailed_link(caplog, email)
    # Turned off again before the link is used: refused.
    sql(settings, "update organizations set allow_staff_link_sign_in = 0")
    off = client.post("/api/auth/link/redeem", json={"token": token})
    assert off.status_code == 404
    assert audited(settings, "auth.link_refused", 2)[-1][1] == '{"reason": "staff_not_allowed"}'
    sql(settings, "update organizations set allow_staff_link_sign_in = 1")
    on = client.post("/api/auth/link/redeem", json={"token": token})
    assert on.status_code == 200 and on.json()["user"]["id"] == workspace.users["staff"]


def test_signing_out_everywhere_voids_unused_links(
    client: TestClient, workspace: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    email = workspace.emails["customer"]
    with caplog.at_level("INFO", logger="server.mail.outgoing"):
        client.post("/api/auth/link", json={"email": email})
        token = mailed_link(caplog, email)
    ended = client.post("/api/auth/logout-everywhere", headers=bearer(workspace, "customer"))
    assert ended.status_code == 204
    assert client.post("/api/auth/link/redeem", json={"token": token}).status_code == 404


def test_an_invitation_accepted_without_a_password_then_signs_in_by_link(
    client: TestClient, workspace: Workspace, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    assert client.post("/api/invites/preview", json={"token": INVITE_TOKEN}).json()["passwordless"] is True
    joined = client.post("/api/invites/accept", json={"token": INVITE_TOKEN, "name": "Ingrid", "locale": "sv"})
    assert joined.status_code == 201, joined.text
    assert client.get("/api/me").status_code == 200  # signed in by accepting
    assert sql(settings, "select password_hash from users where email = 'invited@example.test'") == [("",)]
    client.cookies.clear()
    # No password matches the empty hash.
    for password in (" ", PASSWORD, "x" * 12):
        refused = client.post("/api/auth/login", json={"email": "invited@example.test", "password": password})
        assert refused.status_code == 401
    with caplog.at_level("INFO", logger="server.mail.outgoing"):
        client.post("/api/auth/link", json={"email": "invited@example.test"})
        token = mailed_link(caplog, "invited@example.test")
    assert "Din inloggningslänk till Tandem" in caplog.text  # in the person's language
    signed_in = client.post("/api/auth/link/redeem", json={"token": token})
    assert signed_in.status_code == 200 and signed_in.json()["user"]["name"] == "Ingrid"


def test_staff_invitations_need_a_password_unless_the_organization_allows_links(
    client: TestClient, workspace: Workspace, settings: Settings
) -> None:
    invited = client.post(
        "/api/invites",
        headers=bearer(workspace, "owner"),
        json={"project_id": workspace.ids["px"], "email": "new.staff@example.com", "role": "member"},
    )
    assert invited.status_code == 201, invited.text
    token = invited.json()["link"].split("#", 1)[1]
    assert client.post("/api/invites/preview", json={"token": token}).json()["passwordless"] is False
    refused = client.post("/api/invites/accept", json={"token": token, "name": "New Staff"})
    assert refused.status_code == 422 and refused.json()["error"] == "password_required"
    sql(settings, "update organizations set allow_staff_link_sign_in = 1 where slug = 'agency-a'")
    assert client.post("/api/invites/preview", json={"token": token}).json()["passwordless"] is True
    joined = client.post("/api/invites/accept", json={"token": token, "name": "New Staff"})
    assert joined.status_code == 201, joined.text


def test_redeeming_is_rate_limited_per_ip(client: TestClient) -> None:
    statuses = [
        client.post("/api/auth/link/redeem", json={"token": f"guessed-link-{n:04d}-" + "g" * 20}).status_code
        for n in range(31)
    ]
    assert statuses == [404] * 30 + [429]


def test_a_link_for_someone_with_a_second_factor_stops_at_the_second_step(
    client: TestClient, workspace: Workspace, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock(T0)
    client.app.state.services.auth.clock = clock  # type: ignore[attr-defined]
    email = workspace.emails["customer"]
    secret, _ = enrol_totp(client, workspace.token("customer"), clock)
    client.cookies.clear()
    with caplog.at_level("INFO", logger="server.mail.outgoing"):
        client.post("/api/auth/link", json={"email": email})
        token = mailed_link(caplog, email)
    # The link stands for the password: it yields only a ticket for the second step, no session.
    redeemed = client.post("/api/auth/link/redeem", json={"token": token})
    assert redeemed.status_code == 200, redeemed.text
    assert redeemed.json()["token"] is None and redeemed.json()["user"] is None
    assert "tandem_session" not in client.cookies
    assert client.get("/api/me").status_code == 401
    ticket = redeemed.json()["second_factor"]["ticket"]
    assert redeemed.json()["second_factor"]["methods"] == ["totp", "recovery"]
    # Spent even so: the link does not work twice.
    assert client.post("/api/auth/link/redeem", json={"token": token}).status_code == 404
    wrong = client.post("/api/auth/second-factor", json={"ticket": ticket, "code": "000000"})
    assert wrong.status_code == 401
    clock.now += 30
    passed = client.post("/api/auth/second-factor", json={"ticket": ticket, "code": pyotp.TOTP(secret).at(clock.now)})
    assert passed.status_code == 200, passed.text
    assert client.get("/api/me").json()["user"]["id"] == workspace.users["customer"]
