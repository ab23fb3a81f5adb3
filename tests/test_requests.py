"""Requests: a request's whole life with the customer's socket watching, custom fields, queues and times."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.testclient import TestClient

from channels.client import TandemClient
from tests.conftest import bearer
from tests.nodes import Api, Node, connect, next_data
from tests.workspace import Workspace


async def post(api: Api, url: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    response = await api.client.post(url, json=body)
    assert response.status_code == status, response.text
    return response.json()  # type: ignore[no-any-return]


async def next_request_event(client: TandemClient) -> dict[str, Any]:
    """The next request event on the client's board stream (skipping task and notification traffic)."""
    while True:
        data = await next_data(client)
        if data["type"].startswith("request."):
            return data


async def test_a_request_from_filing_to_task_seen_live_by_the_customer(
    two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    px = ws.ids["px"]
    board = await connect(clients, b, ws, "customer")
    await board.subscribe(f"project:{px}:shared")
    inbox = await connect(clients, b, ws, "customer")
    await inbox.subscribe(f"user:{ws.users['customer']}")
    customer, staff = Api(b, ws, "customer"), Api(a, ws, "staff")
    try:
        filed = await post(
            customer,
            f"/api/projects/{px}/requests",
            {"title": "New banner", "description": "For the sale", "priority": "high", "fields": {"browser": "Chrome"}},
            201,
        )
        event = await next_request_event(board)
        assert event["type"] == "request.created" and event["request"]["status"] == "open"
        assert event["request"]["fields"] == {"browser": "Chrome"}
        rid = filed["id"]

        asked = await post(staff, f"/api/requests/{rid}/triage", {"action": "ask", "message": "Which sizes?"})
        assert asked["status"] == "needs_info" and asked["first_response_at"] is not None
        event = await next_request_event(board)
        assert event["request"]["status"] == "needs_info"
        assert event["request"]["history"][-1]["text"] == "Which sizes?"
        notified = await next_data(inbox)
        assert notified["type"] == "notification.created" and notified["notification"]["kind"] == "request"
        assert notified["notification"]["request_id"] == rid

        await post(customer, f"/api/requests/{rid}/reply", {"message": "728x90 and 300x250"})
        event = await next_request_event(board)
        assert event["request"]["status"] == "open"

        accepted = await post(
            staff, f"/api/requests/{rid}/triage", {"action": "accept", "assignee_id": ws.users["staff"]}
        )
        assert accepted["status"] == "accepted" and accepted["resolved_at"] is not None
        task_id = accepted["task_id"]
        seen: dict[str, Any] = {}
        async with asyncio.timeout(5):
            while "request" not in seen or "task" not in seen:
                data = await next_data(board)
                if data["type"] == "task.created":
                    seen["task"] = data["task"]
                elif data["type"] == "request.updated":
                    seen["request"] = data["request"]
        assert seen["task"]["id"] == task_id and seen["task"]["visibility"] == "shared"
        assert seen["task"]["title"] == "New banner" and seen["task"]["priority"] == "high"
        assert seen["request"]["task_id"] == task_id
        kinds = [e["kind"] for e in seen["request"]["history"]]
        assert kinds == ["filed", "asked", "replied", "accepted"]
        # The customer sees the history and the task; triaging again is refused.
        history = (await customer.client.get(f"/api/requests/{rid}")).json()
        assert [e["kind"] for e in history["history"]] == kinds
        assert (await customer.client.get(f"/api/tasks/{task_id}")).status_code == 200
        again = await staff.client.post(f"/api/requests/{rid}/triage", json={"action": "decline", "reason": "x"})
        assert again.status_code == 409
    finally:
        await customer.aclose()
        await staff.aclose()


def test_custom_fields_are_validated(client: TestClient, workspace: Workspace) -> None:
    owner, customer = bearer(workspace, "owner"), bearer(workspace, "customer")
    px = workspace.ids["px"]
    for field in (
        {"key": "budget", "label": "Budget", "kind": "number", "required": True},
        {"key": "deadline", "label": "Deadline", "kind": "date"},
        {"key": "notes", "label": "Notes", "kind": "text"},
    ):
        assert client.post(f"/api/projects/{px}/request-fields", headers=owner, json=field).status_code == 201
    assert (
        client.post(
            f"/api/projects/{px}/request-fields", headers=owner, json={"key": "tier", "label": "T", "kind": "choice"}
        ).status_code
        == 422
    )  # a choice needs options
    assert (
        client.post(
            f"/api/projects/{px}/request-fields", headers=owner, json={"key": "Bad Key", "label": "x", "kind": "text"}
        ).status_code
        == 422
    )

    def file(fields: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        response = client.post(
            f"/api/projects/{px}/requests", headers=customer, json={"title": "Needs fields", "fields": fields}
        )
        return response.status_code, response.json()

    status, body = file({"browser": "Netscape", "budget": "lots", "deadline": "next week", "colour": "red"})
    assert status == 422
    problems = {d["field"]: d["type"] for d in body["details"]}
    assert problems == {
        "fields.browser": "choice",
        "fields.budget": "number",
        "fields.deadline": "date",
        "fields.colour": "unknown_field",
    }
    status, body = file({})
    assert status == 422 and {d["field"] for d in body["details"]} == {"fields.budget"}
    status, body = file({"browser": "Firefox", "budget": 1200.5, "deadline": "2031-02-03", "notes": " hi "})
    assert status == 201, body
    assert body["fields"] == {"browser": "Firefox", "budget": 1200.5, "deadline": "2031-02-03", "notes": "hi"}


def test_a_field_is_edited_and_answers_already_given_keep_their_meaning(
    client: TestClient, workspace: Workspace
) -> None:
    owner, customer = bearer(workspace, "owner"), bearer(workspace, "customer")
    px = workspace.ids["px"]
    base = f"/api/projects/{px}/request-fields"
    tier = client.post(
        base, headers=owner, json={"key": "tier", "label": "Tier", "kind": "choice", "options": ["a", "b"]}
    )
    notes = client.post(base, headers=owner, json={"key": "notes", "label": "Notes", "kind": "text"}).json()
    tier = tier.json()
    filed = client.post(
        f"/api/projects/{px}/requests",
        headers=customer,
        json={"title": "Before the change", "fields": {"browser": "Chrome", "tier": "b"}},
    ).json()
    changed = client.patch(
        f"{base}/{tier['id']}", headers=owner, json={"label": "Plan", "options": ["a", "c"], "required": True}
    )
    assert changed.status_code == 200
    assert changed.json()["label"] == "Plan" and changed.json()["options"] == ["a", "c"] and changed.json()["required"]
    assert changed.json()["key"] == "tier" and changed.json()["kind"] == "choice"
    # The request filed before keeps its "b"; a new one is checked against the new options and the new rule.
    assert client.get(f"/api/requests/{filed['id']}", headers=customer).json()["fields"]["tier"] == "b"
    refused = client.post(
        f"/api/projects/{px}/requests", headers=customer, json={"title": "After", "fields": {"browser": "Chrome"}}
    )
    assert refused.status_code == 422 and {d["field"] for d in refused.json()["details"]} == {"fields.tier"}
    # Moving a field to the top renumbers the others; options belong to choice fields only; key and kind are fixed.
    assert client.patch(f"{base}/{notes['id']}", headers=owner, json={"position": 0}).status_code == 200
    order = [f["key"] for f in client.get(base, headers=customer).json()["items"]]
    assert order[0] == "notes" and set(order) >= {"notes", "tier", "browser"}
    positions = [f["position"] for f in client.get(base, headers=owner).json()["items"]]
    assert positions == list(range(len(positions)))
    wrong = client.patch(f"{base}/{notes['id']}", headers=owner, json={"options": ["x"]})
    assert wrong.status_code == 422 and wrong.json()["reason"] == "options_not_choice"
    assert client.patch(f"{base}/{notes['id']}", headers=owner, json={"kind": "number"}).status_code == 422
    assert client.patch(f"{base}/{tier['id']}", headers=owner, json={"options": []}).status_code == 422
    assert client.patch(f"{base}/{tier['id']}", headers=customer, json={"label": "Mine"}).status_code == 403


def test_queues_merge_decline_and_settings(client: TestClient, workspace: Workspace) -> None:
    owner, staff, customer = (bearer(workspace, r) for r in ("owner", "staff", "customer"))
    px, py = workspace.ids["px"], workspace.ids["py"]
    first = client.post(f"/api/projects/{px}/requests", headers=customer, json={"title": "Typo on About"}).json()
    second = client.post(f"/api/projects/{px}/requests", headers=customer, json={"title": "Spam"}).json()
    other = client.post(
        f"/api/projects/{py}/requests", headers=bearer(workspace, "other_customer"), json={"title": "PY thing"}
    ).json()
    # Merging needs a shared task of the same project.
    internal = client.post(
        f"/api/requests/{first['id']}/triage",
        headers=staff,
        json={"action": "merge", "task_id": workspace.ids["px_internal_task"]},
    )
    assert internal.status_code == 422
    merged = client.post(
        f"/api/requests/{first['id']}/triage",
        headers=staff,
        json={"action": "merge", "task_id": workspace.ids["px_shared_task"]},
    ).json()
    assert merged["status"] == "merged" and merged["task_id"] == workspace.ids["px_shared_task"]
    assert (
        client.post(f"/api/requests/{second['id']}/triage", headers=staff, json={"action": "decline"}).status_code
        == 422
    )
    declined = client.post(
        f"/api/requests/{second['id']}/triage", headers=staff, json={"action": "decline", "reason": "Out of scope"}
    ).json()
    assert declined["decline_reason"] == "Out of scope" and declined["resolved_at"] is not None
    # Staff queue across projects; customers see their own project's only.
    everything = client.get("/api/requests?limit=200", headers=owner).json()["items"]
    assert {first["id"], second["id"], other["id"]} <= {r["id"] for r in everything}
    open_now = client.get("/api/requests?open=true&limit=200", headers=owner).json()["items"]
    assert other["id"] in {r["id"] for r in open_now} and first["id"] not in {r["id"] for r in open_now}
    mine = client.get("/api/requests?limit=200", headers=customer).json()["items"]
    assert {r["project_id"] for r in mine} == {px}
    assert client.get(f"/api/requests/{other['id']}", headers=customer).status_code == 404
    # A manager turns requests off for the project's customers.
    off = client.patch(f"/api/projects/{px}/settings", headers=owner, json={"customer_requests": False})
    assert off.json()["customer_requests"] is False
    refused = client.post(f"/api/projects/{px}/requests", headers=customer, json={"title": "Another"})
    assert refused.status_code == 403
    client.patch(f"/api/projects/{px}/settings", headers=owner, json={"customer_comment": False})
    comment = client.post(
        f"/api/tasks/{workspace.ids['px_shared_task']}/comments",
        headers=customer,
        json={"body": "hi", "visibility": "shared"},
    )
    assert comment.status_code == 403
