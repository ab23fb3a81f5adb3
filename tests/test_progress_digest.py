"""The progress digest and the project activity feed: after a sequence of shared and internal changes a customer's
digest (mailed to a real local SMTP server) and feed hold exactly the shared ones; staff see everything."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from server.app import create_app
from server.db import utcnow
from server.mail.tokens import ItemKind, ReplyTarget, token_of, verify
from server.models import Visibility
from server.settings import MailInSettings, Settings
from tests.conftest import bearer
from tests.nodes import SECRET
from tests.test_digest import Inbox, body_of, mail_settings, smtp  # noqa: F401  (fixtures)
from tests.workspace import Workspace

DOMAIN = "reply.test"


def _changes(client: TestClient, ws: Workspace) -> dict[str, Any]:
    """Staff work on PX: shared changes (SHOWN) and internal ones (HIDDEN), in the ways an item can hide."""
    staff = bearer(ws, "staff")
    px = ws.ids["px"]

    def task(**body: Any) -> dict[str, Any]:
        response = client.post(f"/api/projects/{px}/tasks", headers=staff, json=body)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def patch(path: str, **body: Any) -> None:
        response = client.patch(path, headers=staff, json=body)
        assert response.status_code == 200, response.text

    shown = task(title="Homepage SHOWN-1", visibility="shared", due_date="2030-01-10")
    patch(f"/api/tasks/{shown['id']}", title="Homepage v2 SHOWN-1", due_date="2030-01-20")
    patch(f"/api/tasks/{shown['id']}", status_id=ws.ids["px_active"])
    # Internal all along, in a shared project (and in an internal milestone).
    hidden = task(title="Pricing HIDDEN-1", visibility="internal", milestone_id=ws.ids["px_internal_milestone"])
    patch(f"/api/tasks/{hidden['id']}", due_date="2030-02-01")
    # Shared, changed, then made internal: its whole history goes with it.
    later = task(title="Soon internal HIDDEN-2", visibility="shared")
    patch(f"/api/tasks/{later['id']}", due_date="2030-03-01")
    patch(f"/api/tasks/{later['id']}", visibility="internal")
    # Internal and renamed, then shared: it arrives, its internal past does not.
    draft = task(title="Codename HIDDEN-3", visibility="internal")
    patch(f"/api/tasks/{draft['id']}", title="Launch plan SHOWN-3")
    patch(f"/api/tasks/{draft['id']}", visibility="shared")
    # Comments: shared on the shared task (shown), internal on it (not), on the internal task (not).
    for task_id, visibility in (
        (shown["id"], "shared"),
        (shown["id"], "internal"),
        (ws.ids["px_internal_task"], "internal"),
    ):
        response = client.post(
            f"/api/tasks/{task_id}/comments", headers=staff, json={"body": "note", "visibility": visibility}
        )
        assert response.status_code == 201, response.text
    # Milestones: a shared one rescheduled (shown), an internal one renamed, a shared one made internal.
    patch(f"/api/milestones/{ws.ids['px_shared_milestone']}", due_date="2030-04-01")
    patch(f"/api/milestones/{ws.ids['px_internal_milestone']}", name="Budget HIDDEN-5")
    phase = client.post(
        f"/api/projects/{px}/milestones", headers=staff, json={"name": "Phase 2 HIDDEN-6", "visibility": "shared"}
    ).json()
    patch(f"/api/milestones/{phase['id']}", visibility="internal")
    return {"shown": shown, "draft": draft}


def test_a_customers_digest_and_feed_hold_exactly_the_shared_changes(
    mail_settings: Settings,  # noqa: F811
    smtp: tuple[Inbox, int],  # noqa: F811
    workspace_template: tuple[Path, Workspace],
) -> None:
    inbox, _ = smtp
    ws = workspace_template[1]
    px = ws.ids["px"]
    app = create_app(mail_settings)
    with TestClient(app) as client:
        made = _changes(client, ws)
        feed = client.get(f"/api/projects/{px}/activity", headers=bearer(ws, "customer")).json()
        staff_feed = client.get(f"/api/projects/{px}/activity?limit=200", headers=bearer(ws, "staff")).json()
        sent = client.portal.call(app.state.services.digests.progress.run_once)
        again = client.portal.call(app.state.services.digests.progress.run_once)
    shown, draft = made["shown"], made["draft"]
    # The feed, for the customer: exactly the shared changes, newest first.
    assert [(e["kind"], e["title"], e["changes"]) for e in feed["items"]] == [
        ("milestone.updated", "px shared milestone", {"due_date": [None, "2030-04-01"]}),
        ("comment.created", "Homepage v2 SHOWN-1", {}),
        ("task.shared", "Launch plan SHOWN-3", {}),
        ("task.updated", "Homepage v2 SHOWN-1", {"status": ["To do", "In progress"]}),
        (
            "task.updated",
            "Homepage v2 SHOWN-1",
            {"title": ["Homepage SHOWN-1", "Homepage v2 SHOWN-1"], "due_date": ["2030-01-10", "2030-01-20"]},
        ),
        ("task.created", "Homepage SHOWN-1", {}),
        ("task.created", "px shared task", {}),  # the seed's (tests/workspace.py)
    ]
    assert feed["items"][1]["link"].startswith(f"/projects/{px}/tasks/{shown['id']}#comment-")
    assert feed["items"][2]["link"] == f"/projects/{px}/tasks/{draft['id']}"
    assert not any(e["internal"] for e in feed["items"])
    # Staff see everything, internal work marked as such.
    staff_titles = {e["title"] for e in staff_feed["items"]}
    assert {"Pricing HIDDEN-1", "Soon internal HIDDEN-2", "Codename HIDDEN-3", "Budget HIDDEN-5"} <= staff_titles
    assert any(e["internal"] for e in staff_feed["items"])
    # The digest: the customer and the viewer of PX get one each; the customer of PY has no news.
    assert sent == 2 and again == 0
    mails = {m["To"]: m for m in inbox.messages}
    assert set(mails) == {"customer@example.test", "viewer@example.test"}
    mail = body_of(mails["customer@example.test"])
    assert mails["customer@example.test"]["Subject"] == "Tandem: how your projects moved this week"
    assert "HIDDEN" not in mail and "SECRET" not in mail
    moved = _section(mail, "What moved")
    assert moved == [
        "New task: px shared task",
        "New task: Homepage SHOWN-1",
        "Homepage v2 SHOWN-1: To do -> In progress",
        "Shared with you: Launch plan SHOWN-3",
        "Homepage v2 SHOWN-1: 1 new comment(s)",
    ]
    assert _section(mail, "What changed") == [
        "Homepage v2 SHOWN-1: due date 2030-01-10 -> 2030-01-20",
        "Homepage v2 SHOWN-1: title Homepage SHOWN-1 -> Homepage v2 SHOWN-1",
        "px shared milestone: due date (none) -> 2030-04-01",
    ]
    assert "px waiting on customer" in "\n".join(_section(mail, "Waiting on you"))
    assert f"http://testserver/projects/{px}/tasks/{shown['id']}" in mail
    assert f"All activity: http://testserver/projects/{px}/activity" in mail


def _section(mail: str, heading: str) -> list[str]:
    """The items of one section of the digest (lines starting "- " after ``heading:``, up to the next heading)."""
    lines = mail.splitlines()
    start = lines.index(heading + ":") + 1
    items = []
    for line in lines[start:]:
        if line.startswith("- "):
            items.append(line[2:])
        elif not line.startswith("  "):
            break
    return items


def test_the_digest_follows_the_persons_cadence_and_language(
    mail_settings: Settings,  # noqa: F811
    smtp: tuple[Inbox, int],  # noqa: F811
    workspace_template: tuple[Path, Workspace],
) -> None:
    inbox, _ = smtp
    ws = workspace_template[1]
    app = create_app(mail_settings)
    with TestClient(app) as client:
        customer = bearer(ws, "customer")
        client.patch("/api/me", headers=customer, json={"locale": "sv"})
        response = client.patch("/api/me/notification-preferences", headers=customer, json={"progress": "daily"})
        assert response.json()["progress"] == "daily"
        off = client.patch("/api/me/notification-preferences", headers=bearer(ws, "viewer"), json={"progress": "off"})
        assert off.status_code == 200
        bad = client.patch("/api/me/notification-preferences", headers=customer, json={"progress": "hourly"})
        assert bad.status_code == 422
        client.post(
            f"/api/projects/{ws.ids['px']}/tasks",
            headers=bearer(ws, "staff"),
            json={"title": "Ny sida", "visibility": "shared"},
        )
        progress = app.state.services.digests.progress
        now = utcnow()
        assert client.portal.call(progress.run_once, now) == 1
        assert client.portal.call(progress.run_once, now + dt.timedelta(hours=23)) == 0  # daily: not yet
        # A day later nothing moved, but a task still waits on the customer: reminded.
        assert client.portal.call(progress.run_once, now + dt.timedelta(days=1, minutes=1)) == 1
    first = inbox.messages[0]
    assert first["To"] == "customer@example.test"  # the viewer switched it off
    assert first["Subject"] == "Tandem: så gick dina projekt framåt i dag"
    body = body_of(first)
    assert "Ny uppgift: Ny sida" in body and "Väntar på dig:" in body
    assert "Ny uppgift" not in body_of(inbox.messages[1])  # only what moved since the last one


def test_since_the_last_visit(mail_settings: Settings, workspace_template: tuple[Path, Workspace]) -> None:  # noqa: F811
    ws = workspace_template[1]
    px = ws.ids["px"]
    app = create_app(mail_settings)
    with TestClient(app) as client:
        customer = bearer(ws, "customer")
        assert client.get(f"/api/projects/{px}/activity", headers=customer).json()["last_visit_at"] is None
        visit = client.put(f"/api/projects/{px}/visit", headers=customer).json()
        assert visit["previous_visit_at"] is None
        client.patch(
            f"/api/tasks/{ws.ids['px_shared_task']}", headers=bearer(ws, "staff"), json={"due_date": "2031-01-01"}
        )
        page = client.get(f"/api/projects/{px}/activity", headers=customer).json()
        assert page["last_visit_at"] == visit["visited_at"]
        (new,) = [e for e in page["items"] if e["created_at"] > page["last_visit_at"]]
        assert new["changes"] == {"due_date": [None, "2031-01-01"]}
        again = client.put(f"/api/projects/{px}/visit", headers=customer).json()
        assert again["previous_visit_at"] == visit["visited_at"]
        # Paging, and a project the person may not see.
        client.patch(f"/api/tasks/{ws.ids['px_shared_task']}", headers=bearer(ws, "staff"), json={"priority": "high"})
        first = client.get(f"/api/projects/{px}/activity?limit=1", headers=bearer(ws, "staff")).json()
        assert len(first["items"]) == 1 and first["next_before"] == first["items"][0]["id"]
        rest = client.get(f"/api/projects/{px}/activity?before={first['next_before']}", headers=bearer(ws, "staff"))
        # Then the due date change and the seed's three events (tests/workspace.py), staff seeing all of them.
        assert [e["changes"] for e in rest.json()["items"]] == [{"due_date": [None, "2031-01-01"]}, {}, {}, {}]
        assert rest.json()["next_before"] is None
        assert client.get(f"/api/projects/{ws.ids['py']}/activity", headers=customer).status_code == 404
        assert client.put(f"/api/projects/{ws.ids['py']}/visit", headers=customer).status_code == 404


def test_what_is_next_holds_the_open_shared_items_due_soonest(
    mail_settings: Settings,  # noqa: F811
    smtp: tuple[Inbox, int],  # noqa: F811
    workspace_template: tuple[Path, Workspace],
) -> None:
    inbox, _ = smtp
    ws = workspace_template[1]
    px, staff = ws.ids["px"], bearer(ws, "staff")
    today = utcnow().date()

    def day(n: int) -> str:
        return (today + dt.timedelta(days=n)).isoformat()

    app = create_app(mail_settings)
    with TestClient(app) as client:

        def task(title: str, due: int, **body: Any) -> int:
            body = {"visibility": "shared", **body, "title": title, "due_date": day(due)}
            response = client.post(f"/api/projects/{px}/tasks", headers=staff, json=body)
            assert response.status_code == 201, response.text
            return int(response.json()["id"])

        soon = task("Soon", 3)
        later = task("Later", 10)
        task("Far", 15)  # past the two-week lookahead
        task("Gone by", -1)  # overdue is not "next"
        task("Pricing SECRET", 2, visibility="internal")
        done = task("Finished", 1)
        assert (
            client.patch(f"/api/tasks/{done}", headers=staff, json={"status_id": ws.ids["px_done"]}).status_code == 200
        )
        for milestone, due in ((ws.ids["px_shared_milestone"], 5), (ws.ids["px_internal_milestone"], 4)):
            answer = client.patch(f"/api/milestones/{milestone}", headers=staff, json={"due_date": day(due)})
            assert answer.status_code == 200, answer.text
        for n in range(6):  # at most five
            task(f"Batch {n}", 12)
        assert client.portal.call(app.state.services.digests.progress.run_once) == 2
    mail = body_of(next(m for m in inbox.messages if m["To"] == ws.emails["customer"]))
    assert _section(mail, "What is next") == [
        f"Soon (due {day(3)})",
        f"px shared milestone (due {day(5)})",
        f"Later (due {day(10)})",
        f"Batch 0 (due {day(12)})",
        f"Batch 1 (due {day(12)})",
    ]
    lines = mail.splitlines()
    assert lines[lines.index(f"- Soon (due {day(3)})") + 1] == f"  http://testserver/projects/{px}/tasks/{soon}"
    assert lines[lines.index(f"- Later (due {day(10)})") + 1] == f"  http://testserver/projects/{px}/tasks/{later}"
    assert (
        lines[lines.index(f"- px shared milestone (due {day(5)})") + 1]
        == f"  http://testserver/projects/{px}/milestones"
    )
    assert "SECRET" not in mail and "internal milestone" not in mail


def test_digest_items_carry_reply_addresses_and_threading_headers(
    mail_settings: Settings,  # noqa: F811
    smtp: tuple[Inbox, int],  # noqa: F811
    workspace_template: tuple[Path, Workspace],
) -> None:
    inbox, _ = smtp
    ws = workspace_template[1]
    settings = replace(mail_settings, secret_key=SECRET, mail_in=MailInSettings(domain=DOMAIN))
    app = create_app(settings)
    with TestClient(app) as client:
        staff = bearer(ws, "staff")
        shown = client.post(
            f"/api/projects/{ws.ids['px']}/tasks", headers=staff, json={"title": "Homepage", "visibility": "shared"}
        ).json()["id"]
        # PY's customer: one thing happened, in one thread.
        posted = client.post(
            f"/api/tasks/{ws.ids['py_shared_task']}/comments",
            headers=staff,
            json={"body": "The draft is up", "visibility": "shared"},
        )
        assert posted.status_code == 201, posted.text
        assert client.portal.call(app.state.services.digests.progress.run_once) == 3
    mails = {m["To"]: m for m in inbox.messages}
    customer = ws.users["customer"]

    # Several threads: each item with a thread carries its own address (shared audience), the mail its Message-ID.
    mail = mails[ws.emails["customer"]]
    assert mail["Message-ID"].endswith(f"@{DOMAIN}>") and mail["Auto-Submitted"] == "auto-generated"
    assert mail["Reply-To"] is None and mail["References"] is None
    lines = body_of(mail).splitlines()
    replies = {
        lines[i - 2]: verify(SECRET, token_of(line.split(": ", 1)[1], DOMAIN) or "")
        for i, line in enumerate(lines)
        if line.startswith("  Reply by email: ")
    }
    assert replies["- New task: Homepage"] == ReplyTarget(customer, ItemKind.TASK, shown, Visibility.SHARED)
    waiting = ws.ids["px_customer_task"]
    assert replies[next(k for k in replies if k.startswith("- px waiting on customer"))] == ReplyTarget(
        customer, ItemKind.TASK, waiting, Visibility.SHARED
    )
    assert all(target is not None and target.audience == Visibility.SHARED for target in replies.values())
    # A feedback survey waits on the customer too, answered in Tandem: no address under it.
    section = _section(body_of(mail), "Waiting on you")
    assert len(section) > len([k for k in replies if k[2:] in section])

    # One thread: Reply-To and the thread's id, as notification mail about one item has.
    (single,) = [m for m in inbox.messages if m["To"] == ws.emails["other_customer"]]
    py_task = ws.ids["py_shared_task"]
    assert verify(SECRET, token_of(single["Reply-To"], DOMAIN) or "") == ReplyTarget(
        ws.users["other_customer"], ItemKind.TASK, py_task, Visibility.SHARED
    )
    assert single["In-Reply-To"] == single["References"] == f"<task-{py_task}@{DOMAIN}>"
    assert "Reply to this mail to answer in its thread." in body_of(single)
    assert "Reply by email" not in body_of(single)
