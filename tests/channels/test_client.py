"""`TandemClient` against the hub served by a real ``websockets`` server on a free port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from channels.backends.memory import MemoryBroker
from channels.client import ClientError, TandemClient
from channels.connection import Connection
from channels.hub import Hub
from channels.protocol import CloseCode
from tests.channels.conftest import wait_until

CHANNEL = "project:12:staff"


class WebsocketsTransport:
    """What the server adapter does for Starlette, here for a ``websockets`` server connection."""

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws

    async def send_text(self, text: str) -> None:
        await self.ws.send(text)

    def write_frame(self, frame: bytes) -> bool:
        return False  # websockets frames every message itself

    async def close(self, code: int, reason: str) -> None:
        await self.ws.close(code, reason)


async def _frames(ws: ServerConnection) -> AsyncIterator[str]:
    try:
        async for message in ws:
            yield message if isinstance(message, str) else message.decode()
    except ConnectionClosed:
        return


@dataclass
class Served:
    hub: Hub
    url: str
    connections: list[Connection]


async def _staff_only(principal: object, channel: str) -> bool:
    return principal == "staff-token" or not channel.endswith(":staff")


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    broker = MemoryBroker()
    await broker.start()
    hub = Hub(broker, authorize=_staff_only)
    await hub.start()
    connections: list[Connection] = []

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        token = ws.request.headers.get("Authorization", "").removeprefix("Bearer ")
        conn = Connection(WebsocketsTransport(ws), principal=token)
        connections.append(conn)
        await hub.serve(conn, _frames(ws))

    server: Server
    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield Served(hub, f"ws://127.0.0.1:{port}/ws", connections)
        await hub.close()
    await broker.close()


async def test_subscribe_and_receive_coalesced_events_in_order(served: Served) -> None:
    client = await TandemClient.connect(served.url, token="staff-token")
    try:
        reply = await client.subscribe(CHANNEL)
        await asyncio.gather(*(served.hub.publish(CHANNEL, {"n": n}) for n in range(1, 51)))

        events = [await client.next_event(timeout=5) for _ in range(50)]

        assert reply["type"] == "subscribed"
        assert [e["offset"] for e in events] == list(range(1, 51))
        assert client.positions[CHANNEL].offset == 50
    finally:
        await client.close()


async def test_forbidden_subscribe_raises_client_error(served: Served) -> None:
    client = await TandemClient.connect(served.url, token="customer-token")
    try:
        with pytest.raises(ClientError) as raised:
            await client.subscribe(CHANNEL)
        assert raised.value.code == "forbidden"
        assert (await client.request({"type": "ping"}))["type"] == "pong"
    finally:
        await client.close()


async def test_reconnect_recovers_what_was_missed(served: Served) -> None:
    client = await TandemClient.connect(served.url, token="staff-token", ping_interval=None)
    try:
        await client.subscribe(CHANNEL)
        for n in range(1, 4):
            await served.hub.publish(CHANNEL, {"n": n})
        assert [(await client.next_event(timeout=5))["offset"] for _ in range(3)] == [1, 2, 3]

        served.connections[-1].abort(CloseCode.GOING_AWAY, "node restarting")
        await wait_until(lambda: client.close_code is not None)
        for n in range(4, 7):
            await served.hub.publish(CHANNEL, {"n": n})
        results = await client.reconnect(deadline=10)
        await served.hub.publish(CHANNEL, {"n": 7})

        assert results[CHANNEL]["recovered"] is True
        assert [(await client.next_event(timeout=5))["offset"] for _ in range(4)] == [4, 5, 6, 7]
    finally:
        await client.close()


async def test_auto_reconnect_resubscribes_since_the_last_position(served: Served) -> None:
    client = await TandemClient.connect(served.url, token="staff-token", auto_reconnect=True, ping_interval=None)
    try:
        await client.subscribe(CHANNEL)
        await served.hub.publish(CHANNEL, {"n": 1})
        assert (await client.next_event(timeout=5))["offset"] == 1

        served.connections[-1].abort(CloseCode.GOING_AWAY, "node restarting")
        reconnected = await client.next_event(timeout=10)
        await served.hub.publish(CHANNEL, {"n": 2})

        assert reconnected["type"] == "reconnected"
        assert reconnected["subscribed"][CHANNEL]["recovered"] is True
        assert (await client.next_event(timeout=5))["offset"] == 2
    finally:
        await client.close()
