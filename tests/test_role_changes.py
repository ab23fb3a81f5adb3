"""Downgraded and removed members lose what they lost at once: on their next REST request, and on the sockets they
already hold, on another node (the control bus), without reconnecting.

Nodes: changes are made on node A, the person's sockets live on node B.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from channels.client import ClientError, TandemClient
from tests.crdt.yclient import YClient
from tests.nodes import Node, connect
from tests.workspace import Workspace

CHANGE_DEADLINE_SECONDS = 1.0


def api(node: Node, ws: Workspace, role: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=node.http, headers={"authorization": f"Bearer {ws.token(role)}"}, timeout=10)


@pytest.fixture
async def notes() -> AsyncIterator[list[YClient]]:
    opened: list[YClient] = []
    yield opened
    for client in opened:
        await client.close()


async def open_note(opened: list[YClient], node: Node, ws: Workspace, role: str, note_id: int) -> YClient:
    client = await YClient.connect(f"ws://127.0.0.1:{node.port}/yjs/{note_id}", token=ws.token(role))
    opened.append(client)
    await asyncio.wait_for(client.synced.wait(), 10)
    return client


async def refused_edit_after_change(client: YClient, started: float) -> float:
    """Edit until the server refuses (permission denied); returns how long after ``started`` that was."""
    async with asyncio.timeout(CHANGE_DEADLINE_SECONDS * 3):
        while not client.denied:
            await client.edit(" x")
            await asyncio.sleep(0.05)
    return time.monotonic() - started


async def comment(http: httpx.AsyncClient, ws: Workspace, body: str) -> int:
    response = await http.post(
        f"/api/tasks/{ws.ids['px_shared_task']}/comments", json={"body": body, "visibility": "shared"}
    )
    return response.status_code


async def test_a_customer_made_viewer_can_no_longer_write_anywhere(
    two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient], notes: list[YClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    note = ws.ids["px_shared_note"]
    live = await connect(clients, b, ws, "customer")
    await live.subscribe(f"project:{ws.ids['px']}:shared")
    editor = await open_note(notes, b, ws, "customer", note)
    watcher = await open_note(notes, b, ws, "staff", note)
    await editor.edit(" before")
    await watcher.wait_text("px shared note text before")
    async with api(a, ws, "customer") as customer, api(a, ws, "owner") as owner:
        assert await comment(customer, ws, "while a customer") == 201
        changed = await owner.patch(
            f"/api/projects/{ws.ids['px']}/members/{ws.users['customer']}", json={"role": "viewer"}
        )
        assert changed.status_code == 200, changed.text
        started = time.monotonic()
        # The next request already knows.
        assert await comment(customer, ws, "as a viewer") == 403
        # The open note socket turns read-only (it stays open: viewers read).
        took = await refused_edit_after_change(editor, started)
        assert took < CHANGE_DEADLINE_SECONDS, took
        assert "read-only" in editor.denied[0]
        refusals = len(editor.denied)
        await editor.edit(" AFTER THE CHANGE")
        # The room answers each update of a read-only peer with its own refusal: once this one's arrives, the room
        # has handled the edit.
        await editor.wait(lambda: len(editor.denied) > refusals, what="the edit refused")
        exported = (await owner.get(f"/api/notes/{note}/export")).text
        assert "AFTER THE CHANGE" not in exported and "AFTER THE CHANGE" not in str(watcher)
        assert editor.close_code is None
        # Viewers still read the board: the shared stream stays subscribed.
        await owner.patch(f"/api/tasks/{ws.ids['px_shared_task']}", json={"title": "seen by the viewer"})
        async with asyncio.timeout(5):
            while "task" not in (frame := await live.next_event(5)).get("data", {}):
                assert frame["type"] == "event", frame  # never "unsubscribed"
        assert frame["data"]["task"]["title"] == "seen by the viewer"


async def test_a_removed_customer_loses_every_stream_and_note_on_every_node(
    two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient], notes: list[YClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    px, task = ws.ids["px"], ws.ids["px_shared_task"]
    live = await connect(clients, b, ws, "customer")
    lost = {f"project:{px}:shared", f"report:project:{px}:shared", f"task:{task}:shared", f"room:project:{px}"}
    for channel in lost:
        await live.subscribe(channel)
    await live.subscribe(f"user:{ws.users['customer']}")
    editor = await open_note(notes, b, ws, "customer", ws.ids["px_shared_note"])
    async with api(a, ws, "owner") as owner, api(a, ws, "customer") as customer:
        removed = await owner.delete(f"/api/projects/{px}/members/{ws.users['customer']}")
        assert removed.status_code == 204
        assert await comment(customer, ws, "after removal") == 404
        assert (await customer.get(f"/api/projects/{px}")).status_code == 404
        dropped: set[str] = set()
        async with asyncio.timeout(CHANGE_DEADLINE_SECONDS):
            while dropped != lost:
                frame = await live.next_event(CHANGE_DEADLINE_SECONDS)
                if frame["type"] == "unsubscribed":
                    assert frame["reason"] == "forbidden"
                    dropped.add(frame["channel"])
        assert await editor.wait_closed(timeout=CHANGE_DEADLINE_SECONDS) == 4403
    # Their own channel stays, and the socket stays open; the project's streams cannot be taken back.
    assert live.close_code is None
    with pytest.raises(ClientError):
        await live.subscribe(f"project:{px}:shared")


async def test_a_manager_made_member_can_no_longer_manage_members(
    two_nodes: list[Node], database: tuple[str, Workspace]
) -> None:
    a, b = two_nodes
    ws = database[1]
    members = f"/api/projects/{ws.ids['px']}/members"
    viewer = f"{members}/{ws.users['viewer']}"
    async with api(a, ws, "owner") as owner, api(b, ws, "staff") as staff:
        assert (await owner.patch(f"{members}/{ws.users['staff']}", json={"role": "manager"})).status_code == 200
        assert (await staff.patch(viewer, json={"role": "customer"})).status_code == 200
        assert (await owner.patch(f"{members}/{ws.users['staff']}", json={"role": "member"})).status_code == 200
        # On the other node, at once: no cache holds the old role.
        assert (await staff.patch(viewer, json={"role": "viewer"})).status_code == 403


async def test_switching_off_note_editing_makes_open_customer_notes_read_only(
    two_nodes: list[Node], database: tuple[str, Workspace], notes: list[YClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    editor = await open_note(notes, b, ws, "customer", ws.ids["px_shared_note"])
    async with api(a, ws, "owner") as owner:
        changed = await owner.patch(f"/api/projects/{ws.ids['px']}/settings", json={"customer_edit_notes": False})
        assert changed.status_code == 200, changed.text
        took = await refused_edit_after_change(editor, time.monotonic())
    assert took < CHANGE_DEADLINE_SECONDS, took
    assert editor.close_code is None
