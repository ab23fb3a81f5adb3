"""Tasks, workflows and milestones through the API: validation, filters, pagination, colour classes."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from sqlalchemy import event
from starlette.testclient import TestClient

from server.board.rules import colour_class
from server.models import ColourClass
from tests.conftest import bearer
from tests.workspace import Workspace

# The API suites run on both engines (the PostgreSQL variant copies a seeded template database).
pytestmark = pytest.mark.both_databases

TODAY = dt.date(2026, 5, 12)


@pytest.mark.parametrize(
    ("category", "due", "expected"),
    [
        ("done", TODAY - dt.timedelta(days=9), ColourClass.DONE),
        ("todo", TODAY - dt.timedelta(days=1), ColourClass.OVERDUE),
        ("blocked", TODAY, ColourClass.DUE_SOON),
        ("active", TODAY + dt.timedelta(days=3), ColourClass.DUE_SOON),
        ("active", TODAY + dt.timedelta(days=4), ColourClass.ON_TRACK),
        ("todo", None, ColourClass.ON_TRACK),
    ],
)
def test_colour_class(category: str, due: dt.date | None, expected: ColourClass) -> None:
    assert colour_class(category, due, TODAY, due_soon_days=3) == expected


def test_task_lifecycle_and_colour_classes(client: TestClient, workspace: Workspace) -> None:
    owner = bearer(workspace, "owner")
    px = workspace.ids["px"]
    today = dt.date.today()
    overdue = client.post(
        f"/api/projects/{px}/tasks",
        headers=owner,
        json={
            "title": "Overdue one",
            "due_date": str(today - dt.timedelta(days=1)),
            "visibility": "shared",
            "assignee_id": workspace.users["customer"],
        },
    ).json()
    assert overdue["colour_class"] == "overdue" and overdue["waiting_on_customer"] is True
    assert overdue["status_id"] == workspace.ids["px_todo"] and overdue["version"] == 1
    moved = client.patch(
        f"/api/tasks/{overdue['id']}",
        headers=bearer(workspace, "customer"),
        json={"status_id": workspace.ids["px_done"]},
    ).json()
    assert moved["colour_class"] == "done" and moved["completed_at"] is not None and moved["version"] == 2
    reopened = client.patch(
        f"/api/tasks/{overdue['id']}", headers=owner, json={"status_id": workspace.ids["px_active"]}
    ).json()
    assert reopened["completed_at"] is None and reopened["colour_class"] == "overdue"
    assert client.delete(f"/api/tasks/{overdue['id']}", headers=owner).status_code == 204
    assert client.get(f"/api/tasks/{overdue['id']}", headers=owner).status_code == 404


def test_a_deleted_tasks_id_is_never_handed_out_again(client: TestClient, workspace: Workspace) -> None:
    """A client holding a deleted task's id must not reach the next task made (SQLite reused the newest id freed
    until migration 0023; PostgreSQL's sequences never do)."""
    owner = bearer(workspace, "owner")
    tasks = f"/api/projects/{workspace.ids['px']}/tasks"
    gone = client.post(tasks, headers=owner, json={"title": "Made and deleted"}).json()["id"]
    assert client.delete(f"/api/tasks/{gone}", headers=owner).status_code == 204
    after = client.post(tasks, headers=owner, json={"title": "Made next"}).json()["id"]
    assert after > gone
    assert client.get(f"/api/tasks/{gone}", headers=owner).status_code == 404
    assert client.patch(f"/api/tasks/{gone}", headers=owner, json={"title": "Lost edit"}).status_code == 404


def test_a_move_to_a_status_of_another_project_or_none_is_refused(client: TestClient, workspace: Workspace) -> None:
    """The status a task moves to is read with the task, and only among its own project's statuses."""
    owner, customer = bearer(workspace, "owner"), bearer(workspace, "customer")
    task = workspace.ids["px_shared_task"]
    before = client.get(f"/api/tasks/{task}", headers=owner).json()
    for status_id in (workspace.ids["py_active"], 10**9):
        refused = client.patch(f"/api/tasks/{task}", headers=owner, json={"status_id": status_id})
        assert refused.status_code == 422 and refused.json()["reason"] == "unknown_status", refused.text
    # Access comes first: a task the actor may not see is not found, whatever the status.
    internal = workspace.ids["px_internal_task"]
    hidden = client.patch(f"/api/tasks/{internal}", headers=customer, json={"status_id": workspace.ids["px_done"]})
    assert hidden.status_code == 404
    assert client.get(f"/api/tasks/{task}", headers=owner).json() == before
    moved = client.patch(f"/api/tasks/{task}", headers=owner, json={"status_id": workspace.ids["px_done"]}).json()
    assert moved["status_id"] == workspace.ids["px_done"] and moved["status_category"] == "done"
    assert moved["completed_at"] is not None


def test_task_validation(client: TestClient, workspace: Workspace) -> None:
    owner = bearer(workspace, "owner")
    px = workspace.ids["px"]

    def create(**fields: object) -> tuple[int, dict[str, object]]:
        response = client.post(f"/api/projects/{px}/tasks", headers=owner, json={"title": "T", **fields})
        return response.status_code, response.json()

    assert create(status_id=workspace.ids["py_todo"])[0] == 422  # another project's status
    assert create(assignee_id=workspace.users["other_customer"], visibility="shared")[0] == 422
    assert create(assignee_id=workspace.users["stranger"])[0] == 422
    status, body = create(assignee_id=workspace.users["customer"], visibility="internal")
    assert status == 422 and "internal" in str(body["message"])
    assert create(milestone_id=workspace.ids["px_internal_milestone"], visibility="shared")[0] == 422
    assert create(milestone_id=workspace.ids["py_shared_milestone"])[0] == 422
    assert create(priority="whenever")[0] == 422
    assert create(due_date="not a date")[0] == 422
    assert create(title="x" * 301)[0] == 422
    # Making a task internal while a customer is assigned is refused, so the customer never loses sight of work
    # that waits on them.
    response = client.patch(
        f"/api/tasks/{workspace.ids['px_customer_task']}", headers=owner, json={"visibility": "internal"}
    )
    assert response.status_code == 422
    assert (
        client.patch(f"/api/tasks/{workspace.ids['px_shared_task']}", headers=owner, json={"title": None}).status_code
        == 422
    )


def test_filters_and_pagination(client: TestClient, workspace: Workspace) -> None:
    owner = bearer(workspace, "owner")
    px = workspace.ids["px"]
    today = dt.date.today()
    for i in range(7):
        client.post(
            f"/api/projects/{px}/tasks",
            headers=owner,
            json={"title": f"Paged {i}", "due_date": str(today + dt.timedelta(days=i)), "visibility": "shared"},
        )
    seen: list[int] = []
    cursor = None
    while True:
        url = f"/api/projects/{px}/tasks?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=owner).json()
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 10  # 3 seeded + 7 new
    assert seen == sorted(seen)
    due_before = client.get(
        f"/api/projects/{px}/tasks?due_before={today + dt.timedelta(days=2)}&due_after={today}", headers=owner
    ).json()["items"]
    assert sorted(t["title"] for t in due_before) == ["Paged 1"]
    waiting = client.get(f"/api/projects/{px}/tasks?waiting_on_customer=true", headers=owner).json()["items"]
    assert [t["id"] for t in waiting] == [workspace.ids["px_customer_task"]]
    by_status = client.get(f"/api/projects/{px}/tasks?status_id={workspace.ids['px_blocked']}", headers=owner).json()[
        "items"
    ]
    assert [t["id"] for t in by_status] == [workspace.ids["px_customer_task"]]
    internal = client.get(f"/api/projects/{px}/tasks?visibility=internal", headers=owner).json()["items"]
    assert [t["id"] for t in internal] == [workspace.ids["px_internal_task"]]
    assert client.get(f"/api/projects/{px}/tasks?limit=1000", headers=owner).status_code == 422
    assert client.get(f"/api/projects/{px}/tasks?cursor=abc", headers=owner).status_code == 422


def test_removing_a_status_moves_its_tasks(client: TestClient, workspace: Workspace) -> None:
    owner = bearer(workspace, "owner")
    px = workspace.ids["px"]
    todo, active = workspace.ids["px_todo"], workspace.ids["px_active"]
    refused = client.delete(f"/api/projects/{px}/statuses/{todo}", headers=owner)
    assert refused.status_code == 409 and refused.json()["error"] == "status_in_use"
    assert (
        client.delete(
            f"/api/projects/{px}/statuses/{todo}?move_to={workspace.ids['py_todo']}", headers=owner
        ).status_code
        == 422
    )
    assert client.delete(f"/api/projects/{px}/statuses/{todo}?move_to={active}", headers=owner).status_code == 204
    tasks = client.get(f"/api/projects/{px}/tasks", headers=owner).json()["items"]
    moved = {t["id"]: t for t in tasks}
    assert moved[workspace.ids["px_shared_task"]]["status_id"] == active
    assert moved[workspace.ids["px_shared_task"]]["version"] == 2
    statuses = client.get(f"/api/projects/{px}/statuses", headers=owner).json()["items"]
    assert todo not in [s["id"] for s in statuses]


def test_new_project_gets_default_workflow(client: TestClient, workspace: Workspace) -> None:
    owner = bearer(workspace, "owner")
    project = client.post(
        "/api/projects", headers=owner, json={"name": "Fresh", "client_id": workspace.ids["client_x"]}
    ).json()
    statuses = client.get(f"/api/projects/{project['id']}/statuses", headers=owner).json()["items"]
    assert [s["category"] for s in statuses] == ["todo", "active", "blocked", "done"]
    bad_colour = client.post(
        f"/api/projects/{project['id']}/statuses",
        headers=owner,
        json={"name": "QA", "category": "active", "colour": "red"},
    )
    assert bad_colour.status_code == 422


def test_milestone_with_shared_tasks_stays_shared(client: TestClient, workspace: Workspace) -> None:
    owner = bearer(workspace, "owner")
    response = client.patch(
        f"/api/milestones/{workspace.ids['px_shared_milestone']}", headers=owner, json={"visibility": "internal"}
    )
    assert response.status_code == 409
    done = client.patch(
        f"/api/milestones/{workspace.ids['px_shared_milestone']}", headers=owner, json={"completed": True}
    ).json()
    assert done["completed_at"] is not None


def test_unknown_routes_answer_json(client: TestClient, workspace: Workspace) -> None:
    response = client.get("/api/nothing-here")
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert client.put("/api/me").status_code == 405
    # Within a group of routes (server/api/routing.py `RouteGroup`): a path no route of it has, a method its route
    # lacks (with the methods it has), a path that only shares the group's first letters.
    task = workspace.ids["px_shared_task"]
    assert client.get(f"/api/tasks/{task}/nothing-here").status_code == 404
    refused = client.put(f"/api/tasks/{task}", headers=bearer(workspace, "staff"))
    assert refused.status_code == 405 and {"GET", "PATCH", "DELETE"} <= set(refused.headers["allow"].split(", "))
    assert client.get("/api/tasksx").status_code == 404


def test_project_list_summarizes_tasks_per_audience(client: TestClient, workspace: Workspace) -> None:
    owner = client.get("/api/projects", headers=bearer(workspace, "owner")).json()["items"]
    customer = client.get("/api/projects", headers=bearer(workspace, "customer")).json()["items"]
    px_owner = next(p for p in owner if p["id"] == workspace.ids["px"])["summary"]
    px_customer = next(p for p in customer if p["id"] == workspace.ids["px"])["summary"]
    # PX: a shared task, an internal task, and a shared overdue task waiting on the customer.
    assert px_owner == {"total": 3, "done": 0, "overdue": 1, "due_soon": 0, "waiting_on_customer": 1}
    assert px_customer == {"total": 2, "done": 0, "overdue": 1, "due_soon": 0, "waiting_on_customer": 1}


def statement_log(client: TestClient) -> list[tuple[object, str]]:
    """Every statement the app's engines run from now on, with its connection (kept alive, so never reused as an
    id): the async engine's and the one authentication reads on (SQLite's reader thread)."""
    statements: list[tuple[object, str]] = []
    db = client.app.state.services.db  # type: ignore[attr-defined]
    for engine in {db.engine.sync_engine, db.read_engine}:
        event.listen(engine, "before_cursor_execute", lambda conn, *args: statements.append((conn, args[1])))
    return statements


def requests_statements(statements: list[tuple[object, str]]) -> list[str]:
    """The statements of one request: on the connection that authenticated it and the one that read the task (the
    same one on PostgreSQL), not the background workers' (outbox relay, webhook and digest pollers) meanwhile."""
    markers = ("FROM auth_sessions", "FROM tasks")
    ours = {next((conn for conn, text in statements if marker in text), None) for marker in markers} - {None}
    return [text for conn, text in statements if conn in ours]


def test_reading_and_changing_a_task_costs_few_statements(client: TestClient, workspace: Workspace) -> None:
    """The statement budget of the hottest requests (each statement costs more CPU than the rest of a request's
    Python): authentication is one read the first time (none after, while the node's access epoch holds:
    server/accounts/session_cache.py), the task with its project and status one more, a change one UPDATE ...
    RETURNING, one outbox row for all the event's channels and one activity row (server/activity/rules.py). A budget,
    not a transcript: fewer is fine."""
    statements = statement_log(client)
    staff, owner = bearer(workspace, "staff"), bearer(workspace, "owner")
    task, ids = workspace.ids["px_shared_task"], workspace.ids
    assert client.get(f"/api/tasks/{task}", headers=staff).status_code == 200  # last_seen_at touched, if due

    def spend(body: dict[str, object] | None, budget: dict[str, int]) -> None:
        statements.clear()
        answer = client.request("PATCH" if body else "GET", f"/api/tasks/{task}", headers=staff, json=body)
        assert answer.status_code == 200, answer.text
        mine = requests_statements(statements)
        # On PostgreSQL a change's feed row and outbox event are one INSERT (each a WITH clause): counted as INSERTs.
        spent = Counter("INSERT" if text.startswith("WITH") else text.split()[0].upper() for text in mine)
        over = {kind: n for kind, n in spent.items() if n > budget.get(kind, 0)}
        assert not over, (body, "over budget", over, [text[:60] for text in mine])

    spend(None, {"SELECT": 1})
    spend({"title": "budget"}, {"SELECT": 1, "UPDATE": 1, "INSERT": 2})
    # A move reads the status it goes to, and whether the project has an enabled webhook, with the task (PX's
    # webhooks are turned off). The feed names both statuses from what the request holds, and customers are read
    # only if the task could wait on them.
    spend({"status_id": ids["px_active"]}, {"SELECT": 1, "UPDATE": 1, "INSERT": 2})
    # With a webhook on, the move reads the project's webhooks too, and records the delivery.
    turned_on = client.patch(f"/api/webhooks/{ids['px_internal_webhook']}", headers=owner, json={"enabled": True})
    assert turned_on.status_code == 200, turned_on.text
    spend({"status_id": ids["px_todo"]}, {"SELECT": 2, "UPDATE": 1, "INSERT": 3})
    assert client.get(f"/api/tasks/{task}", headers=staff).json()["title"] == "budget"  # the PATCHes did their work
    delivered = client.get(f"/api/webhooks/{ids['px_internal_webhook']}/deliveries", headers=owner).json()["items"]
    assert [d["event_type"] for d in delivered] == ["task.status_changed"]


def test_a_customer_is_authenticated_in_one_statement_with_the_capabilities_their_managers_turned_off(
    client: TestClient, workspace: Workspace
) -> None:
    """A customer's actor carries the capabilities switched off in their projects (``customer_off``), read in the
    same statement as their session, user and memberships: their requests cost what staff's do."""
    owner, customer = bearer(workspace, "owner"), bearer(workspace, "customer")
    px, task = workspace.ids["px"], workspace.ids["px_shared_task"]
    off = {"customer_comment": False, "customer_upload": False}
    assert client.patch(f"/api/projects/{px}/settings", headers=owner, json=off).status_code == 200
    statements = statement_log(client)
    assert client.get(f"/api/tasks/{task}", headers=customer).status_code == 200  # last_seen_at touched, if due
    statements.clear()
    assert client.get(f"/api/tasks/{task}", headers=customer).status_code == 200
    selects = [text for text in requests_statements(statements) if text.lstrip().upper().startswith("SELECT")]
    assert len(selects) <= 2, selects
    # What was read in that statement is what the policy enforces.
    refused = client.post(f"/api/tasks/{task}/comments", headers=customer, json={"body": "hi", "visibility": "shared"})
    assert refused.status_code == 403, refused.text
    back_on = client.patch(f"/api/projects/{px}/settings", headers=owner, json={"customer_comment": True})
    assert back_on.status_code == 200
    allowed = client.post(f"/api/tasks/{task}/comments", headers=customer, json={"body": "hi", "visibility": "shared"})
    assert allowed.status_code == 201, allowed.text


def test_an_edit_based_on_an_older_version_is_refused(client: TestClient, workspace: Workspace) -> None:
    staff = bearer(workspace, "staff")
    task = client.post(f"/api/projects/{workspace.ids['px']}/tasks", headers=staff, json={"title": "Brief"}).json()
    first = client.patch(f"/api/tasks/{task['id']}", headers=staff, json={"title": "Brief v2", "version": 1})
    assert first.status_code == 200 and first.json()["version"] == 2
    stale = client.patch(f"/api/tasks/{task['id']}", headers=staff, json={"title": "Brief, old copy", "version": 1})
    assert stale.status_code == 409 and stale.json()["error"] == "version_conflict"
    assert client.get(f"/api/tasks/{task['id']}", headers=staff).json()["title"] == "Brief v2"
    # Without a version the change applies as before; a customer moving their task may name one too.
    assert client.patch(f"/api/tasks/{task['id']}", headers=staff, json={"title": "Brief v3"}).status_code == 200
    customer = bearer(workspace, "customer")
    mine = client.get(f"/api/tasks/{workspace.ids['px_customer_task']}", headers=customer).json()
    moved = client.patch(
        f"/api/tasks/{mine['id']}",
        headers=customer,
        json={"status_id": workspace.ids["px_done"], "version": mine["version"]},
    )
    assert moved.status_code == 200, moved.text
