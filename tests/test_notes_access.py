"""Live note sockets follow access changes made on any node, and awareness shows who a peer really is.

Two real nodes share the database and Redis: a change made through node A re-checks the ``/yjs`` and ``/ws`` sockets
on both (one typed ``AccessChanged`` on the control bus); a peer's awareness ``user`` is the one the server
authenticated, as every other peer, on any node, sees it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from channels.client import TandemClient
from crdt import protocol as p
from tests.crdt.yclient import YClient
from tests.nodes import Api, Node, connect
from tests.test_notes_interop import NodeEditor, ensure_node_modules
from tests.workspace import Workspace


@pytest.fixture
async def opened() -> AsyncIterator[list[YClient]]:
    clients: list[YClient] = []
    yield clients
    for client in clients:
        await client.close()


@pytest.fixture
async def node_editors() -> AsyncIterator[list[NodeEditor]]:
    started: list[NodeEditor] = []
    yield started
    for editor in started:
        await editor.stop()


async def join(opened: list[YClient], node: Node, ws: Workspace, role: str, note_id: int) -> YClient:
    client = await YClient.connect(f"ws://127.0.0.1:{node.port}/yjs/{note_id}", token=ws.token(role))
    opened.append(client)
    return client


async def synced(client: YClient) -> YClient:
    async with asyncio.timeout(10):
        await asyncio.wait_for(client.synced.wait(), 10)
    return client


async def create_note(node: Node, ws: Workspace, **fields: Any) -> int:
    async with Api(node, ws, "staff").client as api:
        created = await api.post(f"/api/projects/{ws.ids['px']}/notes", json={"visibility": "shared", **fields})
        assert created.status_code == 201, created.text
        return int(created.json()["id"])


async def forced_unsubscribe(client: TandemClient, channel: str, timeout: float = 10.0) -> None:
    """Wait for the hub to drop ``channel`` from ``client`` (board events on the way are skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            frame = await client.next_event(timeout)
            if frame["type"] == "unsubscribed" and frame["channel"] == channel:
                return


async def status(node: Node, ws: Workspace, role: str, path: str) -> int:
    async with httpx.AsyncClient(base_url=node.http, timeout=10) as http:
        response = await http.get(path, headers={"authorization": f"Bearer {ws.token(role)}"})
        return response.status_code


def awareness(client_id: int, clock: int, state: dict[str, Any] | None) -> bytes:
    return p.encode_awareness([p.AwarenessEntry(client_id, clock, json.dumps(state))])


def at_cursor(client: YClient, client_id: int, index: int) -> Callable[[], bool]:
    """True once ``client`` holds ``client_id``'s state with its cursor at ``index``."""
    return lambda: (client.awareness.get(client_id) or {}).get("cursor") == {"index": index}


async def test_a_task_made_internal_closes_customers_sockets_on_its_notes_on_every_node(
    two_nodes: list[Node], database: tuple[str, Workspace], opened: list[YClient], clients: list[TandemClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    task = ws.ids["px_shared_task"]
    note = await create_note(a, ws, title="Task plan", task_id=task, content="Plan\n")
    customer = await synced(await join(opened, b, ws, "customer", note))
    viewer = await synced(await join(opened, a, ws, "viewer", note))
    staff = await synced(await join(opened, b, ws, "staff", note))
    thread = await connect(clients, b, ws, "customer")
    await thread.subscribe(f"task:{task}:shared")
    assert await status(b, ws, "customer", f"/api/notes/{note}") == 200

    staff_api = Api(a, ws, "staff")
    try:
        await staff_api.patch_task(task, visibility="internal")
    finally:
        await staff_api.aclose()

    # The customer on node B and the viewer on node A lose the note (permission-denied, then 4403) ...
    assert await customer.wait_closed() == 4403
    assert customer.denied == ["access revoked"]
    assert await viewer.wait_closed() == 4403
    # ... and the task's thread on /ws, from the same access change.
    await forced_unsubscribe(thread, f"task:{task}:shared")
    # Staff keep editing; the customer can neither come back nor read it over REST.
    assert staff.close_code is None
    await staff.edit("Internal now\n")
    again = await join(opened, b, ws, "customer", note)
    assert await again.wait_closed() == 4403
    assert again.denied and "Internal now" not in str(again)
    assert await status(a, ws, "customer", f"/api/notes/{note}") == 404
    assert staff.close_code is None


async def test_a_stock_yjs_client_is_closed_when_its_notes_task_is_made_internal(
    two_nodes: list[Node], database: tuple[str, Workspace], node_editors: list[NodeEditor]
) -> None:
    await asyncio.to_thread(ensure_node_modules)
    a, b = two_nodes
    ws = database[1]
    task = ws.ids["px_shared_task"]
    note = await create_note(a, ws, title="Task plan", task_id=task, content="Plan\n")
    customer = await NodeEditor.start(f"ws://127.0.0.1:{b.port}/yjs", note, ws.token("customer"), "jsC")
    node_editors.append(customer)
    await customer.wait(lambda s: s["synced"] and "Plan" in s["text"])
    staff_api = Api(a, ws, "staff")
    try:
        await staff_api.patch_task(task, visibility="internal")
    finally:
        await staff_api.aclose()
    # The stock provider sees its socket closed with 4403 (it retries, and is refused again).
    await customer.wait(lambda s: s["denied"] == 4403)


async def test_a_note_made_internal_closes_customers_sockets_on_the_other_node(
    two_nodes: list[Node], database: tuple[str, Workspace], opened: list[YClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    note = await create_note(a, ws, title="Shared minutes", content="Minutes\n")
    customer = await synced(await join(opened, b, ws, "customer", note))
    staff = await synced(await join(opened, b, ws, "staff", note))
    async with Api(a, ws, "staff").client as api:
        changed = await api.patch(f"/api/notes/{note}", json={"visibility": "internal"})
        assert changed.status_code == 200, changed.text
    assert await customer.wait_closed() == 4403
    assert customer.denied == ["access revoked"]
    assert staff.close_code is None


async def test_a_deleted_task_drops_its_thread_subscriptions_on_every_node(
    two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    async with Api(a, ws, "staff").client as api:
        created = await api.post(
            f"/api/projects/{ws.ids['px']}/tasks", json={"title": "Short-lived", "visibility": "shared"}
        )
        assert created.status_code == 201, created.text
        task = created.json()["id"]
        watcher = await connect(clients, b, ws, "customer")
        await watcher.subscribe(f"task:{task}:shared")
        assert (await api.delete(f"/api/tasks/{task}")).status_code == 204
    await forced_unsubscribe(watcher, f"task:{task}:shared")


async def test_a_forged_awareness_name_is_seen_as_the_real_user_on_the_other_node(
    two_nodes: list[Node], database: tuple[str, Workspace], opened: list[YClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    note = await create_note(a, ws, title="Review", content="Agenda\n")
    staff = await synced(await join(opened, a, ws, "staff", note))
    observer = await synced(await join(opened, a, ws, "owner", note))
    customer = await synced(await join(opened, b, ws, "customer", note))
    staff_id, customer_id = staff.doc.client_id, customer.doc.client_id

    await staff.set_awareness(1, {"user": {"name": "Staff", "color": "#1f6feb"}, "cursor": {"index": 0}})
    await customer.wait(lambda: staff_id in customer.awareness, what="staff's awareness on node B")
    staff_state = customer.awareness[staff_id]
    assert staff_state["user"] == {"name": "Staff", "id": ws.users["staff"], "role": "staff", "color": "#1f6feb"}

    # The customer claims to be the owner, then tries to take over and remove the staff member's state.
    forged = {"name": "Owner", "id": ws.users["owner"], "role": "staff", "color": "#aa0000"}
    await customer.set_awareness(1, {"user": forged, "cursor": {"index": 1}})
    await customer.send_raw(awareness(staff_id, 5, {"user": {"name": "Staff"}, "cursor": {"index": 99}}))
    await customer.send_raw(awareness(staff_id, 6, None))
    await customer.set_awareness(2, {"user": forged, "cursor": {"index": 2}})

    # What the peers on node A see: the customer as the customer, and the staff member's state untouched.
    await observer.wait(at_cursor(observer, customer_id, 2), what="the customer's second state on node A")
    shown = observer.awareness[customer_id]
    assert shown["user"] == {"name": "Customer", "id": ws.users["customer"], "role": "customer", "color": "#aa0000"}
    assert observer.awareness[staff_id] == staff_state
    await staff.wait(at_cursor(staff, customer_id, 2), what="the customer's second state at the staff member")
    assert staff.awareness[customer_id]["user"]["name"] == "Customer"
    assert staff.awareness[staff_id] == staff_state  # nobody told the staff member it left either


async def test_a_node_that_opens_a_note_late_shows_who_is_already_there_on_other_nodes(
    two_nodes: list[Node], database: tuple[str, Workspace], opened: list[YClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    note = await create_note(a, ws, title="Standup", content="Notes\n")
    staff = await synced(await join(opened, a, ws, "staff", note))
    await staff.set_awareness(1, {"user": {"name": "Staff"}, "cursor": {"index": 0}})
    await staff.wait(at_cursor(staff, staff.doc.client_id, 0), what="the staff state held on node A")
    # Node B has not opened the note yet; the staff member announced themselves once and stays still.
    customer = await synced(await join(opened, b, ws, "customer", note))
    await customer.wait(at_cursor(customer, staff.doc.client_id, 0), timeout=5, what="node A's peers, on node B")
    assert customer.awareness[staff.doc.client_id]["user"]["name"] == "Staff"
