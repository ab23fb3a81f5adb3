"""Mail on credential changes (server/accounts/notices.py) arriving in a real SMTP server (aiosmtpd), in the
person's language, with the link to end sessions: a password changed, authenticator codes turned off, new recovery
codes. Passkeys added and removed, authenticator codes turned on and a new device are mailed in the browser test
(tests/e2e/test_second_factor_ui.py)."""

from __future__ import annotations

import asyncio
import time
from email.message import Message
from pathlib import Path

from starlette.testclient import TestClient

from server.app import create_app
from server.settings import Settings
from tests.conftest import bearer
from tests.test_digest import Inbox, body_of, mail_settings, smtp  # noqa: F401  (fixtures)
from tests.test_second_factor import T0, Clock, enrol_totp
from tests.workspace import PASSWORD, Workspace


def mailed(client: TestClient, inbox: Inbox, to: str, subject: str) -> Message:
    """The mail to ``to`` with ``subject`` (sent in the background after the change commits), within 5 seconds."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for message in inbox.messages:
            if message["To"] == to and message["Subject"] == subject:
                return message
        client.portal.call(asyncio.sleep, 0.02)  # type: ignore[union-attr]
    raise AssertionError(f"no mail {subject!r} to {to}: {[(m['To'], m['Subject']) for m in inbox.messages]}")


def test_credential_changes_are_mailed_in_the_persons_language(
    mail_settings: Settings,  # noqa: F811
    smtp: tuple[Inbox, int],  # noqa: F811
    workspace_template: tuple[Path, Workspace],
) -> None:
    inbox, _ = smtp
    ws = workspace_template[1]
    app = create_app(mail_settings)
    with TestClient(app) as client:
        clock = Clock(T0)
        app.state.services.auth.clock = clock
        customer = bearer(ws, "customer")
        assert client.patch("/api/me", headers=customer, json={"locale": "sv"}).status_code == 200
        enrol_totp(client, ws.token("customer"), clock)
        mailed(
            client, inbox, ws.emails["customer"], "Koder från autentiseringsapp har slagits på för ditt Tandem-konto"
        )

        assert client.post("/api/me/recovery-codes", headers=customer).status_code == 200
        codes = mailed(client, inbox, ws.emails["customer"], "Nya reservkoder för ditt Tandem-konto")
        assert "de gamla fungerar inte längre" in body_of(codes)

        assert client.delete("/api/me/totp", headers=customer).status_code == 204
        off = mailed(
            client, inbox, ws.emails["customer"], "Koder från autentiseringsapp har stängts av för ditt Tandem-konto"
        )
        assert "stängts av" in body_of(off)

        changed = client.post(
            "/api/me/password",
            headers=customer,
            json={"current_password": PASSWORD, "new_password": "a fresh long passphrase 42"},
        )
        assert changed.status_code == 204, changed.text
        password = mailed(client, inbox, ws.emails["customer"], "Ditt lösenord till Tandem har ändrats")

        # Someone who reads English is told in English.
        staff = client.post(
            "/api/me/password",
            headers=bearer(ws, "staff"),
            json={"current_password": PASSWORD, "new_password": "another long passphrase 7"},
        )
        assert staff.status_code == 204, staff.text
        english = mailed(client, inbox, ws.emails["staff"], "Your Tandem password was changed")

    for mail in (codes, off, password, english):
        body = body_of(mail)
        assert f"{mail_settings.base_url}/settings/tokens#sessions" in body, body
    assert "Hej Customer" in body_of(password) and "Lösenordet till ditt Tandem-konto har ändrats." in body_of(password)
    assert "The password of your Tandem account was changed." in body_of(english)
    # Each change mailed once, to its own person only.
    assert sorted(m["To"] for m in inbox.messages) == [ws.emails["customer"]] * 4 + [ws.emails["staff"]]
