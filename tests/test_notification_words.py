"""Notifications carry a kind and params, never only an English sentence: the API hands both, the digest words them
in the reader's language at the time it is mailed."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from server.app import create_app
from server.i18n import CATALOGS, notification_text
from server.settings import Settings
from tests.conftest import bearer
from tests.test_digest import Inbox, body_of, mail_settings, smtp  # noqa: F401 (fixtures)
from tests.workspace import Workspace


def test_every_kind_and_step_has_words_in_both_languages() -> None:
    keys = {key for key in CATALOGS["en"] if key.startswith("notification.")}
    assert keys == {key for key in CATALOGS["sv"] if key.startswith("notification.")}
    for key in keys:
        assert CATALOGS["en"][key] != CATALOGS["sv"][key], key
    assert notification_text("sv", "request", {"request": "Logo", "step": "asked"}) == "Mer information behövs om Logo"
    assert notification_text("en", "request", {"request": "Logo", "step": "merged"}) == (
        "Logo was merged into an existing task"
    )
    assert notification_text("sv", "status", {"task": "Launch"}) == "Launch flyttades till "  # an old row lacking one
    assert notification_text("en", "unknown", {}) == ""


def test_a_swedish_customer_reads_every_step_in_swedish(
    mail_settings: Settings,  # noqa: F811
    smtp: tuple[Inbox, int],  # noqa: F811
    workspace_template: tuple[Path, Workspace],
) -> None:
    inbox, _ = smtp
    ws = workspace_template[1]
    px = ws.ids["px"]
    app = create_app(mail_settings)
    with TestClient(app) as client:
        staff, customer = bearer(ws, "staff"), bearer(ws, "customer")
        # Made while the customer still reads English; worded again in Swedish when mailed later.
        client.post(
            f"/api/tasks/{ws.ids['px_shared_task']}/comments",
            headers=staff,
            json={"body": "Hi", "visibility": "shared", "mentions": [ws.users["customer"]]},
        )
        assert client.patch("/api/me", headers=customer, json={"locale": "sv"}).status_code == 200
        asked = client.post(f"/api/projects/{px}/requests", headers=customer, json={"title": "Ny logga"}).json()
        client.post(f"/api/requests/{asked['id']}/triage", headers=staff, json={"action": "ask", "message": "Färg?"})
        merged = client.post(f"/api/projects/{px}/requests", headers=customer, json={"title": "Banner"}).json()
        response = client.post(
            f"/api/requests/{merged['id']}/triage",
            headers=staff,
            json={"action": "merge", "task_id": ws.ids["px_shared_task"]},
        )
        assert response.status_code == 200, response.text
        items = client.get("/api/notifications", headers=customer).json()["items"]
        by_step = {n["params"].get("step"): n for n in items if n["kind"] == "request"}
        assert by_step["asked"]["params"] == {"request": "Ny logga", "step": "asked"}
        assert by_step["asked"]["text"] == "Mer information behövs om Ny logga"
        assert by_step["merged"]["params"] == {"request": "Banner", "step": "merged", "task": "px shared task"}
        (mention,) = [n for n in items if n["kind"] == "mention"]
        assert mention["params"] == {"actor": "Staff", "task": "px shared task"}
        assert mention["text"].endswith("mentioned you on px shared task")
        # Staff heard of the filed requests, worded in their own language.
        filed = [n for n in client.get("/api/notifications", headers=staff).json()["items"] if n["kind"] == "request"]
        assert {n["params"]["step"] for n in filed} == {"filed"}
        assert filed[0]["text"].startswith("New request: ")
        client.portal.call(app.state.services.digests.run_once)
    mail = body_of(next(m for m in inbox.messages if m["To"] == "customer@example.test"))
    assert "Mer information behövs om Ny logga" in mail
    assert "Banner har slagits ihop med px shared task" in mail
    assert "Staff nämnde dig i px shared task" in mail
    assert "SECRET" not in mail and "information needed" not in mail and "merged into" not in mail
