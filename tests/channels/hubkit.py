"""Test kit for hub tests: an in-memory client over `FakeTransport` and an instrumented broker wrapper."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

from channels.broker import (
    Broker,
    HistoryOptions,
    HistoryResult,
    Publication,
    PublicationHandler,
    ReconnectHandler,
    StreamPosition,
)
from channels.connection import Connection, ConnectionLimits
from channels.hub import Hub
from tests.channels.conftest import BrokerFactory, FakeTransport, HubFactory


async def allow_all(principal: object, channel: str) -> bool:
    return True


class HubClient:
    """One fake socket registered on a hub; sends frames through `Hub.handle_frame`."""

    def __init__(self, hub: Hub, principal: object = "u1", limits: ConnectionLimits | None = None) -> None:
        self.hub = hub
        self.transport = FakeTransport()
        self.conn = Connection(self.transport, principal, limits=limits)
        self._ids = itertools.count(1)
        hub.connect(self.conn)

    async def send(self, frame: dict[str, Any]) -> None:
        await self.hub.handle_frame(self.conn, json.dumps(frame))

    async def request(self, frame: dict[str, Any]) -> dict[str, Any]:
        frame_id = next(self._ids)
        await self.send({**frame, "id": frame_id})
        return await self.transport.wait_for_frame(lambda f: f.get("id") == frame_id)

    async def subscribe(self, channel: str, since: StreamPosition | None = None) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "subscribe", "channel": channel}
        if since is not None:
            frame["since"] = {"offset": since.offset, "epoch": since.epoch}
        return await self.request(frame)

    def events(self, channel: str) -> list[dict[str, Any]]:
        return self.transport.events(channel)

    def offsets(self, channel: str) -> list[int]:
        return self.transport.offsets(channel)


async def two_nodes_subscribed(
    broker_factory: BrokerFactory, make_hub: HubFactory, channel: str
) -> tuple[Hub, Hub, HubClient, HubClient]:
    """Two hubs, each with its own broker on the same store (two nodes), and a client on each subscribed to
    ``channel``."""
    hub_a = await make_hub(broker=await broker_factory())
    hub_b = await make_hub(broker=await broker_factory())
    on_a, on_b = HubClient(hub_a), HubClient(hub_b)
    await on_a.subscribe(channel)
    await on_b.subscribe(channel)
    return hub_a, hub_b, on_a, on_b


class InstrumentedBroker:
    """Wraps a broker: counts (un)subscribes, can hold history reads and drop publications."""

    def __init__(self, inner: Broker) -> None:
        self.inner = inner
        self.subscribes: Counter[str] = Counter()
        self.unsubscribes: Counter[str] = Counter()
        self.history_calls = 0
        self.reconnects = 0
        self.history_gate: asyncio.Event | None = None
        self.gate_after_read = False
        self.history_entered = asyncio.Event()
        self.drop: Callable[[Publication], bool] = lambda pub: False

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    def set_handler(self, handler: PublicationHandler) -> None:
        def filtered(pub: Publication) -> None:
            if not self.drop(pub):
                handler(pub)

        self.inner.set_handler(filtered)

    def set_reconnect_handler(self, handler: ReconnectHandler | None) -> None:
        if handler is None:
            self.inner.set_reconnect_handler(None)
            return

        async def counted() -> None:
            self.reconnects += 1
            await handler()

        self.inner.set_reconnect_handler(counted)

    async def publish(
        self, channel: str, data: bytes, history: HistoryOptions | None, *, idempotency_key: str | None = None
    ) -> StreamPosition:
        return await self.inner.publish(channel, data, history, idempotency_key=idempotency_key)

    async def subscribe(self, channel: str) -> None:
        self.subscribes[channel] += 1
        await self.inner.subscribe(channel)

    async def unsubscribe(self, channel: str) -> None:
        self.unsubscribes[channel] += 1
        await self.inner.unsubscribe(channel)

    async def history(self, channel: str, since: StreamPosition | None, limit: int) -> HistoryResult:
        self.history_calls += 1
        gate = self.history_gate
        if gate is not None and since is not None:
            self.history_entered.set()
            if self.gate_after_read:
                result = await self.inner.history(channel, since, limit)
                await gate.wait()
                return result
            await gate.wait()
        return await self.inner.history(channel, since, limit)

    async def position(self, channel: str) -> StreamPosition:
        return await self.inner.position(channel)
