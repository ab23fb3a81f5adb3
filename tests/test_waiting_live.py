"""The "waiting on you" hints, across two nodes with Redis: a customer's devices hear when something enters or
leaves their list, and hear nothing of internal work."""

from __future__ import annotations

import asyncio
from typing import Any

from channels.client import TandemClient
from tests.nodes import Api, Node, connect, next_data
from tests.workspace import Workspace


async def until(client: TandemClient, kind: str) -> list[dict[str, Any]]:
    """The events up to and including the first of type ``kind`` (within five seconds)."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(5):
        while not seen or seen[-1]["type"] != kind:
            seen.append(await next_data(client))
    return seen


async def waiting(api: Api) -> list[tuple[str, int]]:
    answer = await api.client.get("/api/me/waiting")
    assert answer.status_code == 200, answer.text
    return [(i["kind"], i["id"]) for i in answer.json()["items"]]


async def test_a_customer_hears_their_list_change_and_nothing_internal(
    two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    task, internal, request = ws.ids["px_shared_task"], ws.ids["px_internal_task"], ws.ids["px_request"]
    phone = await connect(clients, b, ws, "customer")
    await phone.subscribe(f"user:{ws.users['customer']}")
    staff, customer = Api(a, ws, "staff"), Api(b, ws, "customer")
    try:
        # Internal work in the customer column: no hint (the next event the phone gets is the request's).
        await staff.patch_task(internal, status_id=ws.ids["px_blocked"])
        asked = await staff.client.post(f"/api/requests/{request}/triage", json={"action": "ask", "message": "Size?"})
        assert asked.status_code == 200, asked.text
        events = await until(phone, "waiting.changed")
        assert [e["type"] for e in events] == ["notification.created", "waiting.changed"]
        assert events[-1] == {"type": "waiting.changed"}
        assert ("request", request) in await waiting(customer)

        replied = await customer.client.post(f"/api/requests/{request}/reply", json={"message": "Large."})
        assert replied.status_code == 200, replied.text
        await until(phone, "waiting.changed")
        assert ("request", request) not in await waiting(customer)

        # A shared card moved into the customer column, and out of it.
        await staff.patch_task(task, status_id=ws.ids["px_blocked"])
        await until(phone, "waiting.changed")
        assert ("task", task) in await waiting(customer)
        await staff.patch_task(task, status_id=ws.ids["px_active"])
        await until(phone, "waiting.changed")
        assert ("task", task) not in await waiting(customer)

        # Answering a mention in the thread takes it off the list, on every device.
        mention = await staff.client.post(
            f"/api/tasks/{task}/comments",
            json={"body": "@Customer ok?", "visibility": "shared", "mentions": [ws.users["customer"]]},
        )
        assert mention.status_code == 201, mention.text
        created = (await until(phone, "notification.created"))[-1]
        assert created["notification"]["comment_id"] == mention.json()["id"]
        assert ("mention", mention.json()["id"]) in await waiting(customer)
        reply = await customer.client.post(f"/api/tasks/{task}/comments", json={"body": "Ok!", "visibility": "shared"})
        assert reply.status_code == 201, reply.text
        await until(phone, "waiting.changed")
        assert ("mention", mention.json()["id"]) not in await waiting(customer)
    finally:
        await staff.aclose()
        await customer.aclose()


async def test_reading_notifications_on_one_device_reaches_the_others(
    two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    task = ws.ids["px_shared_task"]
    phone, desk = await connect(clients, a, ws, "customer"), await connect(clients, b, ws, "customer")
    for device in (phone, desk):
        await device.subscribe(f"user:{ws.users['customer']}")
    staff, customer = Api(a, ws, "staff"), Api(b, ws, "customer")
    try:
        posted = await staff.client.post(
            f"/api/tasks/{task}/comments",
            json={"body": "@Customer see this", "visibility": "shared", "mentions": [ws.users["customer"]]},
        )
        assert posted.status_code == 201, posted.text
        notification = (await until(phone, "notification.created"))[-1]["notification"]
        await until(desk, "notification.created")
        read = await customer.client.post("/api/notifications/read", json={"ids": [notification["id"]]})
        assert read.status_code == 204, read.text
        for device in (phone, desk):
            assert (await until(device, "notifications.read"))[-1] == {
                "type": "notifications.read",
                "ids": [notification["id"]],
            }
        unread = await customer.client.get("/api/notifications?unread=true")
        assert notification["id"] not in [n["id"] for n in unread.json()["items"]]
        assert (await customer.client.post("/api/notifications/read", json={"all": True})).status_code == 204
        for device in (phone, desk):
            assert (await until(device, "notifications.read"))[-1] == {"type": "notifications.read", "all": True}
        assert (await customer.client.get("/api/notifications?unread=true")).json()["items"] == []
    finally:
        await staff.aclose()
        await customer.aclose()


async def test_joining_a_project_hints_what_now_waits_on_the_newcomer(
    two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    newcomer = await connect(clients, b, ws, "spare_customer")
    await newcomer.subscribe(f"user:{ws.users['spare_customer']}")
    owner, spare = Api(a, ws, "owner"), Api(b, ws, "spare_customer")
    try:
        assert await waiting(spare) == []
        added = await owner.client.post(
            f"/api/projects/{ws.ids['px']}/members", json={"user_id": ws.users["spare_customer"], "role": "customer"}
        )
        assert added.status_code == 201, added.text
        await until(newcomer, "waiting.changed")
        assert ("feedback", ws.ids["px_feedback_request"]) in await waiting(spare)
    finally:
        await owner.aclose()
        await spare.aclose()
