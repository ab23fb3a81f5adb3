"""What waits on whom (server/waiting/rules.py): one definition of "waiting on the customer" everywhere, every kind of
item on a person's "waiting on you" list, and never an internal one on a customer's."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import bearer
from tests.workspace import Workspace


def waiting(client: TestClient, ws: Workspace, role: str) -> list[dict[str, Any]]:
    answer = client.get("/api/me/waiting", headers=bearer(ws, role))
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]  # type: ignore[no-any-return]


def kinds(items: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(i["kind"], i["id"]) for i in items]


def post(client: TestClient, ws: Workspace, role: str, path: str, body: dict[str, Any], status: int = 200) -> Any:
    answer = client.post(path, headers=bearer(ws, role), json=body)
    assert answer.status_code == status, answer.text
    return answer.json() if answer.content else None


def patch_task(client: TestClient, ws: Workspace, role: str, task: int, **fields: Any) -> dict[str, Any]:
    answer = client.patch(f"/api/tasks/{task}", headers=bearer(ws, role), json=fields)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_the_seeded_customer_is_waited_on_for_a_task_and_a_feedback_ask(
    client: TestClient, workspace: Workspace
) -> None:
    ws = workspace
    items = waiting(client, ws, "customer")
    assert kinds(items) == [("task", ws.ids["px_customer_task"]), ("feedback", ws.ids["px_feedback_request"])]
    task, feedback = items
    assert task["colour_class"] == "overdue" and task["project_name"] == "PX"
    assert task["link"] == f"/projects/{ws.ids['px']}/tasks/{ws.ids['px_customer_task']}"
    assert feedback["link"] == f"/projects/{ws.ids['px']}/reports#feedback" and feedback["title"] == "PX"
    # The viewer only reads (nothing is asked of them); the other client's customer sees nothing of PX.
    assert waiting(client, ws, "viewer") == []
    assert waiting(client, ws, "other_customer") == []
    assert client.get("/api/me/waiting").status_code == 401


def test_each_kind_enters_and_leaves_the_list(client: TestClient, workspace: Workspace) -> None:
    ws = workspace
    px, task, request = ws.ids["px"], ws.ids["px_shared_task"], ws.ids["px_request"]
    # A request needing information waits on the project's customers until one of them answers.
    post(client, ws, "staff", f"/api/requests/{request}/triage", {"action": "ask", "message": "Which page?"})
    assert ("request", request) in kinds(waiting(client, ws, "customer"))
    post(client, ws, "customer", f"/api/requests/{request}/reply", {"message": "The start page."})
    assert ("request", request) not in kinds(waiting(client, ws, "customer"))
    # A card moved into the customer column waits on the customer (nobody on their side has it yet)...
    patch_task(client, ws, "staff", task, status_id=ws.ids["px_blocked"])
    assert ("task", task) in kinds(waiting(client, ws, "customer"))
    # ...whoever on the team holds it...
    patch_task(client, ws, "staff", task, assignee_id=ws.users["staff"])
    assert ("task", task) in kinds(waiting(client, ws, "customer"))
    # ...until it is assigned to one customer: then it waits on that one only.
    spare = {"user_id": ws.users["spare_customer"], "role": "customer"}
    post(client, ws, "owner", f"/api/projects/{px}/members", spare, 201)
    assert ("task", task) in kinds(waiting(client, ws, "spare_customer"))
    patch_task(client, ws, "staff", task, assignee_id=ws.users["spare_customer"])
    assert ("task", task) not in kinds(waiting(client, ws, "customer"))
    assert ("task", task) in kinds(waiting(client, ws, "spare_customer"))
    patch_task(client, ws, "staff", task, assignee_id=None, status_id=ws.ids["px_done"])
    assert ("task", task) not in kinds(waiting(client, ws, "customer"))
    patch_task(client, ws, "staff", task, status_id=ws.ids["px_todo"])
    # A mention waits until the mentioned person writes in the thread after it.
    mention = post(
        client,
        ws,
        "staff",
        f"/api/tasks/{task}/comments",
        {"body": "@Customer can you approve?", "visibility": "shared", "mentions": [ws.users["customer"]]},
        201,
    )
    item = next(i for i in waiting(client, ws, "customer") if i["kind"] == "mention")
    assert item["id"] == mention["id"] and item["task_id"] == task
    assert item["link"] == f"/projects/{px}/tasks/{task}#comment-{mention['id']}"
    assert "approve" in item["excerpt"]
    post(client, ws, "customer", f"/api/tasks/{task}/comments", {"body": "Approved.", "visibility": "shared"}, 201)
    assert "mention" not in [i["kind"] for i in waiting(client, ws, "customer")]
    # A feedback ask waits until answered.
    feedback = ws.ids["px_feedback_request"]
    post(client, ws, "customer", f"/api/feedback/requests/{feedback}/answers", {"score": 4}, 201)
    assert kinds(waiting(client, ws, "customer")) == [("task", ws.ids["px_customer_task"])]


def test_most_urgent_first(client: TestClient, workspace: Workspace) -> None:
    ws = workspace
    px = ws.ids["px"]
    today = dt.date.today()
    made = {}
    for title, due in (
        ("later", today + dt.timedelta(days=30)),
        ("soon", today + dt.timedelta(days=1)),
        ("none", None),
    ):
        body = {"title": title, "visibility": "shared", "assignee_id": ws.users["customer"]}
        if due is not None:
            body["due_date"] = due.isoformat()
        made[title] = post(client, ws, "staff", f"/api/projects/{px}/tasks", body, 201)["id"]
    items = waiting(client, ws, "customer")
    assert [i["title"] for i in items if i["kind"] == "task"] == ["px waiting on customer", "soon", "later", "none"]
    assert [i["colour_class"] for i in items][:2] == ["overdue", "due_soon"]


def test_internal_items_never_wait_on_a_customer(client: TestClient, workspace: Workspace) -> None:
    ws = workspace
    px, task = ws.ids["px"], ws.ids["px_shared_task"]
    before = waiting(client, ws, "customer")
    # An internal task in the customer column waits on nobody outside the team.
    patch_task(client, ws, "staff", ws.ids["px_internal_task"], status_id=ws.ids["px_blocked"])
    # A shared task with a mention of the customer, then made internal: the mention goes with it.
    post(
        client,
        ws,
        "staff",
        f"/api/tasks/{task}/comments",
        {"body": "@Customer look", "visibility": "shared", "mentions": [ws.users["customer"]]},
        201,
    )
    patch_task(client, ws, "staff", task, status_id=ws.ids["px_blocked"])
    assert {"mention", "task"} <= {i["kind"] for i in waiting(client, ws, "customer") if i.get("task_id") == task}
    patch_task(client, ws, "staff", task, visibility="internal")
    # A feedback ask about a milestone made internal since.
    milestone = ws.ids["px_shared_milestone"]
    asked = post(client, ws, "staff", f"/api/projects/{px}/feedback/requests", {"milestone_id": milestone}, 201)
    assert ("feedback", asked["id"]) in kinds(waiting(client, ws, "customer"))
    answer = client.patch(f"/api/milestones/{milestone}", headers=bearer(ws, "staff"), json={"visibility": "internal"})
    assert answer.status_code == 200, answer.text
    after = client.get("/api/me/waiting", headers=bearer(ws, "customer"))
    assert after.json()["items"] == before
    assert "SECRET" not in after.text and "internal" not in after.text
    # Staff still see what waits on them: the task assigned to nobody is not theirs, the internal one neither.
    assert all(i["kind"] != "request" for i in waiting(client, ws, "staff"))


def test_sql_and_python_agree_on_waiting_on_the_customer(client: TestClient, workspace: Workspace) -> None:
    """Every combination of audience, status and assignee: the task's flag, the list filter, the project
    summary and the reports count the same tasks."""
    ws = workspace
    px = ws.ids["px"]
    staff = bearer(ws, "staff")
    statuses = [ws.ids[f"px_{s}"] for s in ("todo", "blocked", "done")]
    people = [None, ws.users["staff"], ws.users["customer"]]
    flagged = []
    for visibility, status, assignee in itertools.product(("shared", "internal"), statuses, people):
        if visibility == "internal" and assignee == ws.users["customer"]:
            continue  # refused: an internal task cannot be assigned to a customer
        body = {"title": "combo", "visibility": visibility, "status_id": status, "assignee_id": assignee}
        made = post(client, ws, "owner", f"/api/projects/{px}/tasks", body, 201)
        expected = (
            visibility == "shared"
            and status != ws.ids["px_done"]
            and (assignee == ws.users["customer"] or status == ws.ids["px_blocked"])
        )
        assert made["waiting_on_customer"] is expected, body
        flagged.append(made["id"]) if expected else None
    every = client.get(f"/api/projects/{px}/tasks?limit=200", headers=staff).json()["items"]
    by_flag = {t["id"] for t in every if t["waiting_on_customer"]}
    assert set(flagged) <= by_flag
    filtered = client.get(f"/api/projects/{px}/tasks?waiting_on_customer=true&limit=200", headers=staff).json()
    assert {t["id"] for t in filtered["items"]} == by_flag
    others = client.get(f"/api/projects/{px}/tasks?waiting_on_customer=false&limit=200", headers=staff).json()
    assert {t["id"] for t in others["items"]} == {t["id"] for t in every} - by_flag
    projects = client.get("/api/projects", headers=staff).json()["items"]
    assert next(p for p in projects if p["id"] == px)["summary"]["waiting_on_customer"] == len(by_flag)
    kpis = client.get(f"/api/projects/{px}/reports/kpis", headers=staff).json()
    assert kpis["waiting_on_customer"] == len(by_flag)


def test_a_status_can_be_flagged_and_unflagged(client: TestClient, workspace: Workspace) -> None:
    ws = workspace
    px, task = ws.ids["px"], ws.ids["px_shared_task"]
    statuses = client.get(f"/api/projects/{px}/statuses", headers=bearer(ws, "staff")).json()["items"]
    assert [s["waits_on_customer"] for s in statuses] == [False, False, True, False]
    path = f"/api/projects/{px}/statuses/{ws.ids['px_active']}"
    answer = client.patch(path, headers=bearer(ws, "owner"), json={"waits_on_customer": True})
    assert answer.status_code == 200 and answer.json()["waits_on_customer"] is True
    patch_task(client, ws, "staff", task, status_id=ws.ids["px_active"])
    assert ("task", task) in kinds(waiting(client, ws, "customer"))
    answer = client.patch(path, headers=bearer(ws, "owner"), json={"waits_on_customer": None})
    assert answer.status_code == 422 and answer.json()["error"] == "invalid"


@pytest.mark.parametrize("role", ["owner", "staff"])
def test_staff_are_waited_on_for_their_tasks_and_mentions(client: TestClient, workspace: Workspace, role: str) -> None:
    ws = workspace
    task = ws.ids["px_internal_task"]
    patch_task(client, ws, "owner", task, assignee_id=ws.users[role])
    other = "staff" if role == "owner" else "owner"
    mention = post(
        client,
        ws,
        other,
        f"/api/tasks/{ws.ids['px_shared_task']}/comments",
        {"body": "internal question", "visibility": "internal", "mentions": [ws.users[role]]},
        201,
    )
    assert {("task", task), ("mention", mention["id"])} <= set(kinds(waiting(client, ws, role)))
