"""Hostile and broken clients on a real node: each gets its documented answer, and the node keeps serving others.

Also presence: who is here, visible to the project's participants only, gone when a node dies.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from channels.client import ClientError, TandemClient
from tests.conftest import REDIS
from tests.nodes import Node, RedisServer, bearer, cluster
from tests.workspace import Workspace


@pytest.fixture
def node(database: tuple[str, Workspace], tmp_path: Path) -> Iterator[Node]:
    with cluster(tmp_path, database[0], None, count=1) as nodes:
        yield nodes[0]


@pytest.fixture
async def bystander(node: Node, database: tuple[str, Workspace]) -> AsyncIterator[TandemClient]:
    """A well-behaved staff socket that must keep receiving while others misbehave."""
    ws = database[1]
    client = await TandemClient.connect(node.ws, token=ws.token("staff"), ping_interval=None)
    await client.subscribe(f"project:{ws.ids['px']}:staff")
    yield client
    await client.close()


async def raw(node: Node, ws: Workspace, role: str = "customer") -> ClientConnection:
    return await websockets.connect(node.ws, max_size=None, additional_headers=bearer(ws.token(role)))


async def close_code(conn: ClientConnection, timeout: float = 5.0) -> int:
    async with asyncio.timeout(timeout):
        try:
            while True:
                await conn.recv()
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None
            return closed.rcvd.code


async def reply(conn: ClientConnection, frame: dict[str, Any] | str) -> dict[str, Any]:
    await conn.send(frame if isinstance(frame, str) else json.dumps(frame))
    async with asyncio.timeout(5):
        return json.loads((await conn.recv()).split("\n")[0])  # type: ignore[no-any-return]


async def assert_still_served(node: Node, ws: Workspace, bystander: TandemClient) -> None:
    async with httpx.AsyncClient(base_url=node.http, timeout=10) as http:
        title = f"still served {asyncio.get_running_loop().time()}"
        response = await http.patch(
            f"/api/tasks/{ws.ids['px_shared_task']}",
            json={"title": title},
            headers={"authorization": f"Bearer {ws.token('owner')}"},
        )
        assert response.status_code == 200
    event = await bystander.next_event(5)
    assert event["data"]["task"]["title"] == title


async def test_malformed_and_unknown_frames_get_error_frames(
    node: Node, database: tuple[str, Workspace], bystander: TandemClient
) -> None:
    ws = database[1]
    conn = await raw(node, ws)
    try:
        assert (await reply(conn, "{not json"))["code"] == "bad_request"
        assert (await reply(conn, "[1, 2]"))["code"] == "bad_request"
        assert (await reply(conn, {"type": "teleport", "id": 7})) == {
            "type": "error",
            "id": 7,
            "code": "unknown_type",
            "message": "unknown frame type 'teleport'",
        }
        assert (await reply(conn, {"type": "subscribe", "id": 8, "channel": "../../etc"}))["code"] == "unknown_channel"
        forbidden = await reply(conn, {"type": "subscribe", "id": 9, "channel": f"project:{ws.ids['py']}:shared"})
        assert forbidden["code"] == "forbidden" and forbidden["id"] == 9
        since = {
            "type": "subscribe",
            "id": 10,
            "channel": f"project:{ws.ids['px']}:shared",
            "since": {"offset": -1, "epoch": "x"},
        }
        assert (await reply(conn, since))["code"] == "bad_request"
        assert (await reply(conn, {"type": "ping", "id": 11})) == {"type": "pong", "id": 11}
    finally:
        await conn.close()
    await assert_still_served(node, ws, bystander)


async def test_oversize_frame_closes_with_1009(
    node: Node, database: tuple[str, Workspace], bystander: TandemClient
) -> None:
    ws = database[1]
    conn = await raw(node, ws)
    await conn.send(json.dumps({"type": "ping", "pad": "x" * 200_000}))
    assert await close_code(conn) == 1009
    await assert_still_served(node, ws, bystander)


async def test_binary_frame_closes_with_4400(node: Node, database: tuple[str, Workspace]) -> None:
    conn = await raw(node, database[1])
    await conn.send(b"\x00\x01binary")
    assert await close_code(conn) == 4400


async def test_flood_closes_with_4429(node: Node, database: tuple[str, Workspace], bystander: TandemClient) -> None:
    ws = database[1]
    conn = await raw(node, ws)
    try:
        for i in range(1000):
            await conn.send(json.dumps({"type": "ping", "id": i}))
    except websockets.ConnectionClosed:
        pass
    assert await close_code(conn) == 4429
    await assert_still_served(node, ws, bystander)


async def test_too_many_subscriptions_is_an_error_frame(database: tuple[str, Workspace], tmp_path: Path) -> None:
    ws = database[1]
    with cluster(tmp_path, database[0], None, count=1) as (node,):
        node.stop()
        node.env["TANDEM_WS_MAX_SUBSCRIPTIONS"] = "3"
        node.start()
        client = await TandemClient.connect(node.ws, token=ws.token("owner"), ping_interval=None)
        try:
            for channel in (
                f"project:{ws.ids['px']}:staff",
                f"project:{ws.ids['py']}:staff",
                f"user:{ws.users['owner']}",
            ):
                await client.subscribe(channel)
            with pytest.raises(ClientError) as caught:
                await client.subscribe(f"room:project:{ws.ids['px']}")
            assert caught.value.code == "too_many_subscriptions"
            await client.unsubscribe(f"user:{ws.users['owner']}")
            await client.subscribe(f"room:project:{ws.ids['px']}")
        finally:
            await client.close()


async def test_slow_consumer_is_disconnected_and_others_keep_receiving(
    database: tuple[str, Workspace], tmp_path: Path
) -> None:
    ws = database[1]
    with cluster(tmp_path, database[0], None, count=1) as (node,):
        node.stop()
        # A tiny send queue makes a client that stops reading overflow quickly.
        node.env["TANDEM_WS_MAX_QUEUE_MESSAGES"] = "16"
        node.start()
        fast = await TandemClient.connect(node.ws, token=ws.token("staff"), ping_interval=None)
        await fast.subscribe(f"project:{ws.ids['px']}:staff")
        # A small receive buffer, so the kernel cannot absorb what the server sends to a client that stops reading.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", node.port))
        slow = await websockets.connect(
            node.ws, max_size=None, max_queue=1, sock=sock, additional_headers=bearer(ws.token("owner"))
        )
        await slow.send(json.dumps({"type": "subscribe", "id": 1, "channel": f"project:{ws.ids['px']}:staff"}))
        await slow.recv()
        slow.transport.pause_reading()  # stops reading: the server's writes back up
        try:
            async with httpx.AsyncClient(base_url=node.http, timeout=10) as http:

                async def move_many() -> None:
                    big = "y" * 19_000
                    for i in range(300):
                        await http.patch(
                            f"/api/tasks/{ws.ids['px_shared_task']}",
                            json={"description": f"{i} {big}"},
                            headers={"authorization": f"Bearer {ws.token('owner')}"},
                        )

                publisher = asyncio.create_task(move_many())
                # The server gives a close frame a few seconds to get through a socket nobody reads, so the
                # slow client starts reading again once the node has counted the 4409 close.
                async with asyncio.timeout(90):  # generous: 300 requests on a loaded CI machine
                    while 'tandem_ws_closes_total{code="4409"}' not in (await http.get("/metrics")).text:
                        await asyncio.sleep(0.05)
                slow.transport.resume_reading()
                assert await close_code(slow, 20) == 4409
                received = 0
                async with asyncio.timeout(90):
                    while received < 300:
                        await fast.next_event(30)
                        received += 1
                await publisher
        finally:
            await fast.close()
            await slow.close()


async def presence_of(client: TandemClient, channel: str) -> list[dict[str, Any]]:
    answer = await client.request({"type": "presence_list", "channel": channel})
    return answer["clients"]  # type: ignore[no-any-return]


async def test_presence_across_nodes_and_expiry_when_a_node_dies(
    database: tuple[str, Workspace], tmp_path: Path
) -> None:
    ws = database[1]
    room = f"room:project:{ws.ids['px']}"
    redis = RedisServer(tmp_path).start()
    opened: list[TandemClient] = []
    try:
        with cluster(tmp_path, database[0], redis.url, count=2) as (a, b):
            b.stop()
            b.env["TANDEM_PRESENCE_TTL_SECONDS"] = "2"
            b.start()
            a.stop()
            a.env["TANDEM_PRESENCE_TTL_SECONDS"] = "2"
            a.start()
            customer = await TandemClient.connect(a.ws, token=ws.token("customer"), ping_interval=None)
            staff = await TandemClient.connect(b.ws, token=ws.token("staff"), ping_interval=None)
            opened += [customer, staff]
            await customer.subscribe(room)
            await staff.subscribe(room)
            await staff.request({"type": "presence", "channel": room, "data": {"viewing": "board"}})
            async with asyncio.timeout(5):
                while len(await presence_of(customer, room)) < 2:
                    await asyncio.sleep(0.05)
            people = {p["name"]: p for p in await presence_of(customer, room)}
            assert people["Staff"]["role"] == "staff" and people["Staff"]["data"] == {"viewing": "board"}
            assert people["Customer"]["role"] == "customer"
            # Another client's customer cannot even look.
            outsider = await TandemClient.connect(a.ws, token=ws.token("other_customer"), ping_interval=None)
            opened.append(outsider)
            with pytest.raises(ClientError):
                await outsider.subscribe(room)
            with pytest.raises(ClientError):
                await presence_of(outsider, room)
            # Node B dies without a goodbye: its presences expire on their own.
            b.kill()
            async with asyncio.timeout(10):
                while [p["name"] for p in await presence_of(customer, room)] != ["Customer"]:
                    await asyncio.sleep(0.2)
    finally:
        for client in opened:
            await client.close()
        redis.stop()


async def test_the_clients_of_a_killed_node_are_announced_left_once_by_the_survivors(
    database: tuple[str, Workspace], tmp_path: Path
) -> None:
    ws = database[1]
    room = f"room:project:{ws.ids['px']}"
    opened: list[TandemClient] = []

    async def join(node: Node, role: str) -> TandemClient:
        client = await TandemClient.connect(node.ws, token=ws.token(role), ping_interval=None)
        opened.append(client)
        await client.subscribe(room)
        await client.request({"type": "presence", "channel": room, "data": {"node": node.port}})
        return client

    try:
        with cluster(tmp_path, database[0], REDIS, count=3, extra_env={"TANDEM_PRESENCE_TTL_SECONDS": "2"}) as nodes:
            a, b, c = nodes
            watchers = [await join(b, "viewer"), await join(c, "owner")]
            await join(a, "customer")  # only on the node that dies
            await join(a, "staff")  # on the node that dies, and ...
            await join(b, "staff")  # ... on a survivor: still here
            async with asyncio.timeout(10):
                while len(clients := await presence_of(watchers[0], room)) < 5:
                    await asyncio.sleep(0.05)
            on_a = {e["client_id"] for e in clients if e["data"] == {"node": a.port}}
            staying = {(e["user_id"], e["client_id"]) for e in clients if e["data"] != {"node": a.port}}
            assert len(on_a) == 2 and len(staying) == 3
            for watcher in watchers:  # what arrived before the kill is not what we wait for
                while not watcher._events.empty():
                    watcher._events.get_nowait()

            a.kill()
            killed_at = time.monotonic()
            lefts: list[list[str]] = [[], []]

            async def collect(watcher: TandemClient, into: list[str], until: float) -> None:
                while (remaining := until - time.monotonic()) > 0:
                    try:
                        frame = await watcher.next_event(remaining)
                    except TimeoutError:
                        return
                    if frame.get("type") == "presence_diff":
                        into += [entry["client_id"] for entry in frame["left"]]

            # Announced within the ttl (2 s) plus a heartbeat period and a housekeeping tick, with room for a
            # loaded machine; then nothing more for two more ttls, though two survivors claim expired entries.
            async with asyncio.timeout(20):
                while any(set(got) != on_a for got in lefts) and time.monotonic() - killed_at < 8:
                    await asyncio.gather(
                        *(collect(w, got, time.monotonic() + 0.2) for w, got in zip(watchers, lefts, strict=True))
                    )
            assert [set(got) for got in lefts] == [on_a, on_a], f"after {time.monotonic() - killed_at:.1f}s"
            await asyncio.gather(
                *(collect(w, got, time.monotonic() + 4) for w, got in zip(watchers, lefts, strict=True))
            )
            assert [sorted(got) for got in lefts] == [sorted(on_a)] * 2  # once each, at each survivor
            remaining = {(e["user_id"], e["client_id"]) for e in await presence_of(watchers[1], room)}
            assert remaining == staying  # staff is still here through its socket on b
    finally:
        for client in opened:
            await client.close()
