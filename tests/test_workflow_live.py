"""Reconfiguring a live project's workflow: removing a status moves its tasks and updates connected boards; WIP
limits; templates and copying another project's workflow."""

from __future__ import annotations

from starlette.testclient import TestClient

from channels.client import TandemClient
from tests.conftest import bearer
from tests.nodes import Api, Node, connect, next_data
from tests.workspace import Workspace


async def test_removing_a_status_moves_its_tasks_and_updates_connected_boards(
    two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    px, todo, active = ws.ids["px"], ws.ids["px_todo"], ws.ids["px_active"]
    customer_board = await connect(clients, b, ws, "customer")
    await customer_board.subscribe(f"project:{px}:shared")
    staff_board = await connect(clients, a, ws, "staff")
    await staff_board.subscribe(f"project:{px}:staff")
    owner, customer = Api(a, ws, "owner"), Api(b, ws, "customer")
    try:
        in_todo = {
            t["id"] for t in (await owner.client.get(f"/api/projects/{px}/tasks?status_id={todo}")).json()["items"]
        }
        assert len(in_todo) == 2  # the seeded shared and internal tasks
        refused = await owner.client.delete(f"/api/projects/{px}/statuses/{todo}")
        assert refused.status_code == 409 and refused.json()["error"] == "status_in_use"
        removed = await owner.client.delete(f"/api/projects/{px}/statuses/{todo}?move_to={active}")
        assert removed.status_code == 204
        for board in (customer_board, staff_board):
            event = await next_data(board)
            assert event == {"type": "workflow.changed", "tasks_moved": True}
        # What a board refetches on that event: the new columns, with the tasks in their new place.
        statuses = (await customer.client.get(f"/api/projects/{px}/statuses")).json()["items"]
        assert todo not in {s["id"] for s in statuses}
        tasks = (await customer.client.get(f"/api/projects/{px}/tasks")).json()["items"]
        moved = [t for t in tasks if t["id"] in in_todo]
        assert moved and all(t["status_id"] == active and t["version"] == 2 for t in moved)
        everything = (await owner.client.get(f"/api/projects/{px}/tasks")).json()["items"]
        assert {t["id"] for t in everything if t["status_id"] == active} >= in_todo
    finally:
        await owner.aclose()
        await customer.aclose()


def test_wip_limits_refuse_one_task_too_many(client: TestClient, workspace: Workspace) -> None:
    owner, staff = bearer(workspace, "owner"), bearer(workspace, "staff")
    px, active = workspace.ids["px"], workspace.ids["px_active"]
    limited = client.patch(f"/api/projects/{px}/statuses/{active}", headers=owner, json={"wip_limit": 1})
    assert limited.json()["wip_limit"] == 1
    first = client.post(f"/api/projects/{px}/tasks", headers=staff, json={"title": "One", "status_id": active})
    assert first.status_code == 201
    second = client.post(f"/api/projects/{px}/tasks", headers=staff, json={"title": "Two", "status_id": active})
    assert second.status_code == 409 and second.json()["error"] == "wip_limit"
    move = client.patch(f"/api/tasks/{workspace.ids['px_shared_task']}", headers=staff, json={"status_id": active})
    assert move.status_code == 409
    lifted = client.patch(f"/api/projects/{px}/statuses/{active}", headers=owner, json={"wip_limit": None})
    assert lifted.json()["wip_limit"] is None
    assert (
        client.patch(
            f"/api/tasks/{workspace.ids['px_shared_task']}", headers=staff, json={"status_id": active}
        ).status_code
        == 200
    )


def test_templates_and_copying_a_workflow(client: TestClient, workspace: Workspace) -> None:
    owner = bearer(workspace, "owner")
    px, py = workspace.ids["px"], workspace.ids["py"]
    template = workspace.ids["org_a_template"]
    # px's "Waiting on customer" holds a task and is not in the template: say where it goes first.
    refused = client.post(f"/api/projects/{px}/workflow/apply", headers=owner, json={"template_id": template})
    assert refused.status_code == 409
    assert refused.json()["details"][0]["field"] == f"moves.{workspace.ids['px_blocked']}"
    applied = client.post(
        f"/api/projects/{px}/workflow/apply",
        headers=owner,
        json={"template_id": template, "moves": {str(workspace.ids["px_blocked"]): "doing"}},
    )
    assert applied.status_code == 200, applied.text
    statuses = applied.json()["items"]
    assert [(s["name"], s["wip_limit"]) for s in statuses] == [("To do", None), ("Doing", 3), ("Done", None)]
    assert statuses[0]["id"] == workspace.ids["px_todo"]  # kept by name: its tasks never moved
    waiting = client.get(f"/api/tasks/{workspace.ids['px_customer_task']}", headers=owner).json()
    assert waiting["status_id"] == statuses[1]["id"]
    # Save px's workflow as a template, and start py from it.
    saved = client.post("/api/workflow-templates", headers=owner, json={"name": "Lean", "from_project_id": px})
    assert saved.status_code == 201 and [s["name"] for s in saved.json()["statuses"]] == ["To do", "Doing", "Done"]
    names = {t["name"] for t in client.get("/api/workflow-templates", headers=owner).json()["items"]}
    assert names == {"Agency flow", "Lean"}
    copied = client.post(
        f"/api/projects/{py}/workflow/apply",
        headers=owner,
        json={"from_project_id": px, "moves": {str(workspace.ids["py_active"]): "Doing"}},
    )
    assert copied.status_code == 200, copied.text
    assert [s["name"] for s in copied.json()["items"]] == ["To do", "Doing", "Done"]
    bad = client.post(
        "/api/workflow-templates",
        headers=owner,
        json={
            "name": "Dup",
            "statuses": [
                {"name": "A", "category": "todo", "colour": "#000000"},
                {"name": "a", "category": "done", "colour": "#000000"},
            ],
        },
    )
    assert bad.status_code == 422
