"""Mention digests mailed to a real local SMTP server (aiosmtpd): batched, localized, never internal items."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from email.message import EmailMessage, Message
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from server.app import create_app
from server.settings import Settings, SmtpSettings
from tests.conftest import bearer, make_settings
from tests.smtp_inbox import Inbox, serving
from tests.workspace import Workspace


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    with serving(Inbox()) as served:
        yield served


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


def test_digest_holds_every_kind_with_links_and_no_internal_items(
    mail_settings: Settings, smtp: tuple[Inbox, int], workspace_template: tuple[Path, Workspace]
) -> None:
    inbox, _ = smtp
    ws = workspace_template[1]
    px = ws.ids["px"]
    app = create_app(mail_settings)
    with TestClient(app) as client:
        staff, customer = bearer(ws, "staff"), bearer(ws, "customer")
        # An assignment, then a status change of the task waiting on the customer.
        task = client.post(
            f"/api/projects/{px}/tasks",
            headers=staff,
            json={"title": "Approve the copy", "visibility": "shared", "assignee_id": ws.users["customer"]},
        ).json()
        client.patch(f"/api/tasks/{task['id']}", headers=staff, json={"status_id": ws.ids["px_active"]})
        # A request update.
        request = client.post(f"/api/projects/{px}/requests", headers=customer, json={"title": "New page"}).json()
        client.post(f"/api/requests/{request['id']}/triage", headers=staff, json={"action": "ask", "message": "Which?"})
        # An assignment on a task that turns internal before the digest goes out: never mailed to the customer.
        hidden = client.post(
            f"/api/projects/{px}/tasks",
            headers=staff,
            json={"title": "Pricing HIDDEN", "visibility": "shared", "assignee_id": ws.users["customer"]},
        ).json()
        client.patch(f"/api/tasks/{hidden['id']}", headers=staff, json={"assignee_id": None, "visibility": "internal"})
        kinds = {n["kind"] for n in client.get("/api/notifications", headers=customer).json()["items"]}
        assert kinds == {"assignment", "status", "request"}
        client.portal.call(app.state.services.digests.run_once)
    mails = {m["To"]: body_of(m) for m in inbox.messages}
    mail = mails["customer@example.test"]
    assert "Assigned to you" in mail and "Status changed" in mail and "Request update" in mail
    assert f"http://testserver/projects/{px}/tasks/{task['id']}" in mail
    assert f"http://testserver/projects/{px}/requests/{request['id']}" in mail
    assert "HIDDEN" not in mail and "SECRET" not in mail
    # Staff on the project heard of the new request.
    assert f"/projects/{px}/requests/{request['id']}" in mails["staff@example.test"]


def test_preferences_mail_mentions_at_once_hold_digests_and_switch_off(
    mail_settings: Settings, smtp: tuple[Inbox, int], workspace_template: tuple[Path, Workspace]
) -> None:
    import asyncio
    import time

    inbox, _ = smtp
    ws = workspace_template[1]
    task = ws.ids["px_shared_task"]
    app = create_app(mail_settings)
    with TestClient(app) as client:
        customer, owner, staff = bearer(ws, "customer"), bearer(ws, "owner"), bearer(ws, "staff")
        assert client.get("/api/me/notification-preferences", headers=customer).json() == {
            "mentions": "hourly",
            "others": "hourly",
            "progress": "weekly",
        }
        assert (
            client.patch(
                "/api/me/notification-preferences", headers=customer, json={"others": "immediately"}
            ).status_code
            == 422
        )
        client.patch("/api/me/notification-preferences", headers=customer, json={"mentions": "immediately"})
        client.patch("/api/me/notification-preferences", headers=owner, json={"mentions": "off", "others": "off"})
        client.post(
            f"/api/tasks/{task}/comments",
            headers=staff,
            json={"body": "Quick one", "visibility": "shared", "mentions": [ws.users["customer"], ws.users["owner"]]},
        )
        deadline = time.monotonic() + 5
        while not inbox.messages and time.monotonic() < deadline:
            client.portal.call(asyncio.sleep, 0.02)
        (mention,) = inbox.messages  # mailed at once, without waiting for the digest run
        assert mention["To"] == "customer@example.test" and "You were mentioned" in body_of(mention)
        # An hourly digest just went out to the customer: the next one waits for the hour.
        client.post(
            f"/api/projects/{ws.ids['px']}/tasks",
            headers=staff,
            json={"title": "For the customer", "visibility": "shared", "assignee_id": ws.users["customer"]},
        )
        client.post(
            f"/api/projects/{ws.ids['px']}/tasks",
            headers=staff,
            json={"title": "For the customer too", "visibility": "shared", "assignee_id": ws.users["customer"]},
        )
        assert client.portal.call(app.state.services.digests.run_once) == 1  # the first digest goes out
        assert client.portal.call(app.state.services.digests.run_once) == 0
        client.post(
            f"/api/projects/{ws.ids['px']}/tasks",
            headers=staff,
            json={"title": "Held back", "visibility": "shared", "assignee_id": ws.users["customer"]},
        )
        assert client.portal.call(app.state.services.digests.run_once) == 0  # held until an hour has passed
    recipients = [m["To"] for m in inbox.messages]
    assert "owner@example.test" not in recipients  # off means off
    assert recipients.count("customer@example.test") == 2
