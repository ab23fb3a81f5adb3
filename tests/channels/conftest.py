"""Fixtures for the real-time hub tests: both broker and presence backends, a fake transport, deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import pytest
from redis.asyncio import Redis
from websockets.frames import Opcode

from channels.backends.memory import MemoryBroker
from channels.backends.redis import RedisBroker
from channels.backends.redis_presence import RedisPresence
from channels.broker import Broker, Publication
from channels.presence import MemoryPresence, PresenceManager
from tests.frames import read_frame

if TYPE_CHECKING:
    from channels.hub import Hub

REDIS_URL = "redis://127.0.0.1:6379/0"


async def wait_until(predicate: Callable[[], bool], within: float = 5.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true; fail the test after ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            while True:
                if predicate():
                    return
                await asyncio.sleep(0.005)
    except TimeoutError:
        pytest.fail(f"timed out after {within}s waiting for {what}")


class Collector:
    """A broker handler that records publications."""

    def __init__(self) -> None:
        self.items: list[Publication] = []

    def __call__(self, pub: Publication) -> None:
        self.items.append(pub)

    def on(self, channel: str) -> list[Publication]:
        return [p for p in self.items if p.channel == channel]

    async def wait_for(self, channel: str, count: int, within: float = 5.0) -> list[Publication]:
        await wait_until(lambda: len(self.on(channel)) >= count, within, f"{count} publications on {channel}")
        return self.on(channel)


class FakeTransport:
    """An in-memory `Transport`: records messages; can be blocked to play a slow client."""

    def __init__(self, *, blocked: bool = False) -> None:
        self.messages: list[str] = []
        self.closed: tuple[int, str] | None = None
        self._gate = asyncio.Event()
        if not blocked:
            self._gate.set()

    def unblock(self) -> None:
        self._gate.set()

    async def send_text(self, text: str) -> None:
        await self._gate.wait()
        if self.closed is not None:
            raise ConnectionError("closed")
        self.messages.append(text)

    def write_frame(self, frame: bytes) -> bool:
        """Take prebuilt frames as a raw socket would; not while blocked (back-pressure) or closed."""
        if not self._gate.is_set() or self.closed is not None:
            return False
        opcode, payload = read_frame(frame)
        assert opcode is Opcode.TEXT
        self.messages.append(payload.decode())
        return True

    async def close(self, code: int, reason: str) -> None:
        if self.closed is None:
            self.closed = (code, reason)

    def frames(self) -> list[dict[str, Any]]:
        return [json.loads(line) for message in self.messages for line in message.split("\n")]

    def of_type(self, kind: str, channel: str | None = None) -> list[dict[str, Any]]:
        return [f for f in self.frames() if f.get("type") == kind and (channel is None or f.get("channel") == channel)]

    def events(self, channel: str) -> list[dict[str, Any]]:
        return self.of_type("event", channel)

    def offsets(self, channel: str) -> list[int]:
        return [f["offset"] for f in self.events(channel)]

    async def wait_for_frame(self, predicate: Callable[[dict[str, Any]], bool], within: float = 5.0) -> dict[str, Any]:
        found: list[dict[str, Any]] = []

        def check() -> bool:
            found[:] = [f for f in self.frames() if predicate(f)]
            return bool(found)

        await wait_until(check, within, "a matching frame")
        return found[0]

    async def wait_for_offsets(self, channel: str, last: int, within: float = 5.0) -> list[int]:
        await wait_until(
            lambda: bool(self.offsets(channel)) and self.offsets(channel)[-1] >= last,
            within,
            f"offset {last} on {channel}",
        )
        return self.offsets(channel)


async def _delete_prefix(prefix: str) -> None:
    client = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix unique to this test; its keys are deleted afterwards (never FLUSHDB)."""
    prefix = f"test:{uuid4().hex}:"
    yield prefix
    await _delete_prefix(prefix)


BrokerFactory = Callable[..., Awaitable[Broker]]  # options (e.g. ``idempotency_ttl_seconds``) go to the broker


@contextlib.asynccontextmanager
async def brokers_of(backend: str, request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[BrokerFactory]:
    """A factory of started brokers of ``backend`` (``memory``, ``redis``, ``redis-cluster``: a real three-shard
    cluster, sharded pub/sub), all closed afterwards; Redis brokers share ``prefix``, so two of them are two nodes."""
    made: list[Broker] = []
    url = {"redis": REDIS_URL}.get(backend)
    if backend == "redis-cluster":
        url = request.getfixturevalue("redis_shards").url

    async def make(**options: Any) -> Broker:
        broker: Broker = MemoryBroker(**options) if url is None else RedisBroker(url, prefix, **options)
        await broker.start()
        made.append(broker)
        return broker

    try:
        yield make
    finally:
        for broker in made:
            await broker.close()


@pytest.fixture(params=["memory", "redis"])
async def broker_factory(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[BrokerFactory]:
    """Makes started brokers of one backend (the contract tests add ``redis-cluster``)."""
    async with brokers_of(request.param, request, redis_prefix) as make:
        yield make


@pytest.fixture
async def broker(broker_factory: BrokerFactory) -> Broker:
    return await broker_factory()


@pytest.fixture(params=["memory", "redis"])
async def presence(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[PresenceManager]:
    manager: PresenceManager = MemoryPresence() if request.param == "memory" else RedisPresence(REDIS_URL, redis_prefix)
    yield manager
    await manager.close()


HubFactory = Callable[..., Awaitable["Hub"]]


@pytest.fixture
async def make_hub(broker: Broker) -> AsyncIterator[HubFactory]:
    """Makes started hubs on the test's broker (override with ``broker=``); closes them afterwards."""
    from channels.hub import Hub
    from tests.channels.hubkit import allow_all

    hubs: list[Hub] = []

    async def make(**options: Any) -> Hub:
        hub = Hub(
            options.pop("broker", broker),
            options.pop("presence", None),
            authorize=options.pop("authorize", allow_all),
            **options,
        )
        await hub.start()
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        await hub.close()
