"""Mention digests mailed to a real local SMTP server (aiosmtpd): batched, localized, never internal items."""

from __future__ import annotations

import email
import email.policy
import shutil
from collections.abc import Iterator
from email.message import EmailMessage, Message
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from starlette.testclient import TestClient

from server.app import create_app
from server.settings import Settings, SmtpSettings
from tests.conftest import bearer, make_settings
from tests.nodes import free_port
from tests.workspace import Workspace


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))  # type: ignore[attr-defined]
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def mail_settings(tmp_path: Path, workspace_template: tuple[Path, Workspace], smtp: tuple[Inbox, int]) -> Settings:
    shutil.copy(workspace_template[0], tmp_path / "tandem.db")
    return make_settings(
        tmp_path,
        smtp=SmtpSettings(host="127.0.0.1", port=smtp[1], starttls=False),
        digest_delay_seconds=0,
        digest_interval_seconds=3600,
    )


def body_of(message: Message) -> str:
    assert isinstance(message, EmailMessage)
    return str(message.get_content())


def test_mentions_arrive_as_one_digest_without_internal_items(
    mail_settings: Settings, smtp: tuple[Inbox, int], workspace_template: tuple[Path, Workspace]
) -> None:
    inbox, _ = smtp
    ws = workspace_template[1]
    app = create_app(mail_settings)
    with TestClient(app) as client:
        staff = bearer(ws, "staff")
        for text in ("Please check the logo", "And the colours"):
            response = client.post(
                f"/api/tasks/{ws.ids['px_shared_task']}/comments",
                headers=staff,
                json={"body": text, "visibility": "shared", "mentions": [ws.users["customer"]]},
            )
            assert response.status_code == 201
        # A mention on a task that is later made internal must not reach the customer's mailbox.
        hidden_task = client.post(
            f"/api/projects/{ws.ids['px']}/tasks",
            headers=staff,
            json={"title": "Soon internal HIDDEN", "visibility": "shared"},
        ).json()
        client.post(
            f"/api/tasks/{hidden_task['id']}/comments",
            headers=staff,
            json={"body": "look", "visibility": "shared", "mentions": [ws.users["customer"]]},
        )
        client.patch(f"/api/tasks/{hidden_task['id']}", headers=staff, json={"visibility": "internal"})
        # Mention the owner too: each person gets their own digest.
        client.post(
            f"/api/tasks/{ws.ids['px_internal_task']}/comments",
            headers=staff,
            json={"body": "fyi", "visibility": "internal", "mentions": [ws.users["owner"]]},
        )
        sent = client.portal.call(app.state.services.digests.run_once)
        assert sent == 2
        again = client.portal.call(app.state.services.digests.run_once)
        assert again == 0  # nothing is mailed twice
    by_recipient = {m["To"]: m for m in inbox.messages}
    assert set(by_recipient) == {"customer@example.test", "owner@example.test"}
    customer_mail = body_of(by_recipient["customer@example.test"])
    assert by_recipient["customer@example.test"]["Subject"] == "Tandem: 2 new for you"
    assert customer_mail.count("You were mentioned") == 2
    assert f"http://testserver/projects/{ws.ids['px']}/tasks/{ws.ids['px_shared_task']}#comment-" in customer_mail
    assert "HIDDEN" not in customer_mail and "SECRET" not in customer_mail
    assert "SECRET" in body_of(by_recipient["owner@example.test"])  # staff do see internal items


def test_digest_speaks_the_recipients_language(
    mail_settings: Settings, smtp: tuple[Inbox, int], workspace_template: tuple[Path, Workspace]
) -> None:
    inbox, _ = smtp
    ws = workspace_template[1]
    app = create_app(mail_settings)
    with TestClient(app) as client:
        client.patch("/api/me", headers=bearer(ws, "customer"), json={"locale": "sv"})
        client.post(
            f"/api/tasks/{ws.ids['px_shared_task']}/comments",
            headers=bearer(ws, "staff"),
            json={"body": "Hej", "visibility": "shared", "mentions": [ws.users["customer"]]},
        )
        client.portal.call(app.state.services.digests.run_once)
    (message,) = inbox.messages
    assert message["Subject"] == "Tandem: 1 nya för dig"
    assert "Du nämndes" in body_of(message)
