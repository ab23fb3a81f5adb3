"""Presence on real nodes: a room's changes reach every socket as batched ``presence_diff`` frames, exactly, across
two uvicorn nodes on Redis; ``presence_list`` past its ``limit`` answers a sample and the counts."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.nodes import Node, bearer
from tests.presence_view import room_view
from tests.workspace import Workspace

FLUSH_SECONDS = 0.2  # HubSettings.presence_flush_seconds


class Socket:
    """A real websockets client that keeps every frame the server sent it, in order."""

    def __init__(self, conn: ClientConnection, name: str) -> None:
        self.conn = conn
        self.name = name
        self.frames: list[dict[str, Any]] = []
        self._ids = iter(range(1, 1_000_000))
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for message in self.conn:
            assert isinstance(message, str)
            self.frames += [json.loads(line) for line in message.split("\n")]

    async def request(self, frame: dict[str, Any], within: float = 10.0) -> dict[str, Any]:
        frame_id = next(self._ids)
        await self.conn.send(json.dumps({**frame, "id": frame_id}))
        async with asyncio.timeout(within):
            while True:
                for reply in self.frames:
                    if reply.get("id") == frame_id:
                        assert reply["type"] != "error", reply
                        return reply
                await asyncio.sleep(0.01)

    async def join(self, room: str, data: dict[str, Any], limit: int | None = None) -> dict[str, Any]:
        """What the web board does: subscribe, say what it looks at, ask who is here."""
        await self.request({"type": "subscribe", "channel": room})
        await self.request({"type": "presence", "channel": room, "data": data})
        ask: dict[str, Any] = {"type": "presence_list", "channel": room}
        if limit is not None:
            ask["limit"] = limit
        return await self.request(ask)

    def diffs(self, room: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == "presence_diff" and f["channel"] == room]

    def view(self, room: str) -> dict[str, dict[str, Any]]:
        """The room as this socket sees it."""
        return room_view(self.frames, room)

    async def close(self) -> None:
        await self.conn.close()
        self._reader.cancel()


@pytest.fixture
async def sockets() -> AsyncIterator[list[Socket]]:
    opened: list[Socket] = []
    yield opened
    for socket in opened:
        await socket.close()


async def open_socket(opened: list[Socket], node: Node, ws: Workspace, role: str) -> Socket:
    conn = await websockets.connect(node.ws, additional_headers=bearer(ws.token(role)), ping_interval=None)
    socket = Socket(conn, f"{role}@{node.port}")
    opened.append(socket)
    return socket


def seen(view: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """Who a view holds, by what each socket said it looks at (client ids are the server's)."""
    return sorted((e["user_id"], json.dumps(e["data"], sort_keys=True)) for e in view.values())


async def test_churn_on_two_nodes_ends_exact_on_every_socket_in_few_frames(
    two_nodes: list[Node], database: tuple[str, Workspace], sockets: list[Socket]
) -> None:
    ws = database[1]
    room = f"room:project:{ws.ids['px']}"
    roles = ["staff", "customer", "viewer", "owner"]
    here = [await open_socket(sockets, node, ws, role) for node in two_nodes for role in roles]
    said: dict[Socket, dict[str, Any]] = {}
    for socket in here:
        said[socket] = {"at": socket.name}
        await socket.join(room, said[socket])

    # Forty changes in about a second, on both nodes: data changes, leaves and rejoins, a socket that comes and
    # goes, one that leaves for good.
    started = time.monotonic()
    changes = 0
    for step in range(8):
        for socket in here[step % 2 :: 2]:
            said[socket] = {"at": socket.name, "step": step}
            await socket.conn.send(json.dumps({"type": "presence", "channel": room, "data": said[socket]}))
            changes += 1
        cycling = here[step]
        await cycling.request({"type": "unsubscribe", "channel": room})
        said[cycling] = {"at": cycling.name, "back": step}
        await cycling.join(room, said[cycling])
        changes += 3
    passing = await open_socket(sockets, two_nodes[step % 2], ws, "staff")
    await passing.join(room, {"passing": True})
    await passing.close()
    gone = here.pop()
    await gone.close()
    changes += 4
    churn = time.monotonic() - started

    truth = sorted((str(ws.users[s.name.split("@")[0]]), json.dumps(said[s], sort_keys=True)) for s in here)
    async with asyncio.timeout(15):
        while any(seen(s.view(room)) != truth for s in here):
            await asyncio.sleep(0.05)
    frames = [len(s.diffs(room)) for s in here]
    await asyncio.sleep(3 * FLUSH_SECONDS)  # nothing more comes once every socket is right
    assert [len(s.diffs(room)) for s in here] == frames
    assert all(seen(s.view(room)) == truth for s in here)
    # A frame per socket per window at most (plus the joins before the churn), far fewer than the changes.
    windows = churn / FLUSH_SECONDS + 2
    assert max(frames) <= windows + len(here) + 2, (frames, churn, changes)
    assert max(frames) < changes / 2, (frames, changes)
    last = here[0].diffs(room)[-1]
    assert (last["count"], last["users"]) == (len(here), len(roles))


async def test_a_list_past_its_limit_is_a_sample_of_different_people_with_the_counts(
    two_nodes: list[Node], database: tuple[str, Workspace], sockets: list[Socket]
) -> None:
    ws = database[1]
    room = f"room:project:{ws.ids['px']}"
    a, b = two_nodes
    for node, role in [(a, "staff"), (b, "staff"), (a, "staff"), (b, "customer"), (a, "viewer")]:
        await (await open_socket(sockets, node, ws, role)).join(room, {})
    watcher = await open_socket(sockets, b, ws, "customer")
    await watcher.join(room, {})

    async with asyncio.timeout(10):
        while len(watcher.view(room)) < 6:
            await asyncio.sleep(0.05)
    sample = await watcher.request({"type": "presence_list", "channel": room, "limit": 3})
    full = await watcher.request({"type": "presence_list", "channel": room})

    assert (sample["count"], sample["users"], sample["truncated"]) == (6, 3, True)
    assert sorted(c["user_id"] for c in sample["clients"]) == sorted(
        str(ws.users[r]) for r in ("staff", "customer", "viewer")
    )  # three entries: one of each person, not three tabs of one
    assert (full["count"], full["users"], full["truncated"], len(full["clients"])) == (6, 3, False, 6)
    # The counts are of the room the socket may see anyway: one it may not join tells it nothing.
    outsider = await open_socket(sockets, a, ws, "other_customer")
    await outsider.conn.send(json.dumps({"type": "presence_list", "id": 1, "channel": room}))
    async with asyncio.timeout(5):
        while not outsider.frames:
            await asyncio.sleep(0.02)
    assert outsider.frames == [{"type": "error", "id": 1, "code": "not_subscribed", "message": "not subscribed"}]
