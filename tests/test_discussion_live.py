"""Task threads live, across two nodes with Redis: audiences, order, edits and deletes, resume, mentions."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from channels.client import ClientError, TandemClient
from tests.nodes import Api, Node, connect, next_data
from tests.workspace import Workspace


async def comment(api: Api, task_id: int, body: str, visibility: str = "shared", **extra: Any) -> dict[str, Any]:
    response = await api.client.post(
        f"/api/tasks/{task_id}/comments", json={"body": body, "visibility": visibility, **extra}
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def thread_events(client: TandemClient, count: int) -> list[dict[str, Any]]:
    return [await next_data(client) for _ in range(count)]


async def test_shared_and_internal_comments_reach_the_right_sockets(
    two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    task = ws.ids["px_shared_task"]
    customer = await connect(clients, b, ws, "customer")
    staff = await connect(clients, a, ws, "staff")
    await customer.subscribe(f"task:{task}:shared")
    await staff.subscribe(f"task:{task}:staff")
    staff_api, customer_api = Api(a, ws, "staff"), Api(b, ws, "customer")
    try:
        unread_before = (await customer_api.client.get(f"/api/projects/{ws.ids['px']}/unread")).json()
        listing_before = (await customer_api.client.get(f"/api/tasks/{task}/comments")).json()["items"]
        first = await comment(staff_api, task, "Shared one")
        secret = await comment(staff_api, task, "Internal PLATYPUS", "internal")
        # A node publishes after its response, in the order of its commits; two nodes' events keep no order
        # between them, so the customer answers (on node B) once node A's two are out.
        got_staff = await thread_events(staff, 2)
        second = await comment(customer_api, task, "Customer answer")
        got_staff += await thread_events(staff, 1)
        assert [(e["type"], e["comment"]["id"]) for e in got_staff] == [
            ("comment.created", first["id"]),
            ("comment.created", secret["id"]),
            ("comment.created", second["id"]),
        ]
        got_customer = await thread_events(customer, 2)
        assert [e["comment"]["id"] for e in got_customer] == [first["id"], second["id"]]
        assert "PLATYPUS" not in str(got_customer)
        with pytest.raises(TimeoutError):
            await customer.next_event(0.3)
        # The customer's REST view and counts moved only by the shared comments.
        listing = (await customer_api.client.get(f"/api/tasks/{task}/comments")).json()["items"]
        assert [c["id"] for c in listing] == [second["id"], first["id"]] + [c["id"] for c in listing_before]
        unread = (await customer_api.client.get(f"/api/projects/{ws.ids['px']}/unread")).json()
        assert unread["total"] == unread_before["total"] + 1  # the staff's shared comment; not their own
        assert (await customer_api.client.get("/api/search?q=PLATYPUS")).json()["items"] == []
    finally:
        await staff_api.aclose()
        await customer_api.aclose()


async def test_edit_and_delete_propagate_and_survive_a_reconnect(
    two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    task = ws.ids["px_shared_task"]
    channel = f"task:{task}:shared"
    watcher = await connect(clients, b, ws, "viewer")
    await watcher.subscribe(channel)
    customer_api = Api(a, ws, "customer")
    try:
        posted = await comment(customer_api, task, "typo teh")
        assert (await next_data(watcher))["type"] == "comment.created"
        position = watcher.positions[channel]
        await watcher.close()
        # While the viewer is away: an edit, a reaction, a delete.
        edited = await customer_api.client.patch(f"/api/comments/{posted['id']}", json={"body": "typo the"})
        assert edited.status_code == 200
        await customer_api.client.post(f"/api/comments/{posted['id']}/reactions", json={"emoji": "👍"})
        assert (await customer_api.client.delete(f"/api/comments/{posted['id']}")).status_code == 204
        back = await connect(clients, a, ws, "viewer")
        reply = await back.subscribe(channel, since=position)
        assert reply["recovered"] is True
        missed = await thread_events(back, 3)
        assert [e["type"] for e in missed] == ["comment.updated", "comment.reactions", "comment.deleted"]
        assert missed[0]["comment"]["body"] == "typo the"
        assert missed[1]["comment"]["reactions"] == [{"emoji": "👍", "count": 1, "user_ids": [ws.users["customer"]]}]
        assert missed[2]["comment"]["deleted"] is True and missed[2]["comment"]["body"] == ""
    finally:
        await customer_api.aclose()


async def test_mentioned_customer_is_notified_live_and_reads_across_devices(
    two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    task = ws.ids["px_shared_task"]
    phone = await connect(clients, a, ws, "customer")
    desk = await connect(clients, b, ws, "customer")
    for device in (phone, desk):
        await device.subscribe(f"user:{ws.users['customer']}")
    staff_api, customer_api = Api(b, ws, "staff"), Api(a, ws, "customer")
    try:
        posted = await comment(staff_api, task, "@Customer can you check?", mentions=[ws.users["customer"]])
        for device in (phone, desk):
            event = await next_data(device)
            assert event["type"] == "notification.created"
            assert event["notification"]["comment_id"] == posted["id"]
        read = await customer_api.client.post(f"/api/tasks/{task}/read", json={"comment_id": posted["id"]})
        assert read.json()["unread"] == 0
        for device in (phone, desk):
            event = await next_data(device)
            assert event == {"type": "read.updated", "task_id": task, "last_read_comment_id": posted["id"], "unread": 0}
    finally:
        await staff_api.aclose()
        await customer_api.aclose()


async def test_typing_in_internal_mode_is_not_shown_to_customers(
    two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    task = ws.ids["px_shared_task"]
    customer = await connect(clients, a, ws, "customer")
    staff = await connect(clients, b, ws, "staff")
    await customer.subscribe(f"room:task:{task}")
    await staff.subscribe(f"room:task:{task}")
    await staff.subscribe(f"room:task:{task}:staff")
    with pytest.raises(ClientError):  # the staff-only room is refused
        await customer.subscribe(f"room:task:{task}:staff")
    await staff.request({"type": "presence", "channel": f"room:task:{task}:staff", "data": {"typing": True}})
    await staff.request({"type": "presence", "channel": f"room:task:{task}", "data": {"typing": False}})
    async with asyncio.timeout(5):
        while True:
            listed = (await customer.request({"type": "presence_list", "channel": f"room:task:{task}"}))["clients"]
            if any(p["name"] == "Staff" for p in listed):
                break
            await asyncio.sleep(0.05)
    assert all(p["data"].get("typing") is not True for p in listed)


async def test_the_read_push_never_names_an_internal_comment(
    two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    task = ws.ids["px_shared_task"]
    desk = await connect(clients, b, ws, "customer")
    await desk.subscribe(f"user:{ws.users['customer']}")
    staff_api, customer_api = Api(b, ws, "staff"), Api(a, ws, "customer")
    try:
        shared = await comment(staff_api, task, "Shared update")
        internal = await comment(staff_api, task, "staff only", visibility="internal")
        assert internal["id"] > shared["id"]
        # Reading "everything" (a huge id) reaches the newest comment the customer may see, no further.
        read = await customer_api.client.post(f"/api/tasks/{task}/read", json={"comment_id": 2**31 - 1})
        assert read.json()["last_read_comment_id"] == shared["id"]
        event = await next_data(desk)
        assert event == {"type": "read.updated", "task_id": task, "last_read_comment_id": shared["id"], "unread": 0}
    finally:
        await staff_api.aclose()
        await customer_api.aclose()
