"""The Redis broker survives a Redis restart: it reconnects, resubscribes, and the hub fills the gap.

Runs a throwaway ``redis-server`` on a free port (AOF on, so history survives a clean restart).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from channels.backends.redis import RedisBroker
from channels.broker import BrokerUnavailable, HistoryOptions
from channels.hub import Hub, HubSettings
from tests.channels.hubkit import HubClient, InstrumentedBroker, allow_all

REDIS_SERVER = "/usr/bin/redis-server"
CHANNEL = "project:12:staff"
HISTORY = HistoryOptions(size=100, ttl_seconds=60)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _require_redis_server() -> None:
    if not os.path.exists(REDIS_SERVER):
        pytest.fail(f"{REDIS_SERVER} is required for the reconnection tests (install redis-server)")


class ThrowawayRedis:
    def __init__(self, directory: Path) -> None:
        self.port = _free_port()
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self, directory: Path | None = None) -> None:
        _require_redis_server()
        workdir = directory or self.directory
        workdir.mkdir(parents=True, exist_ok=True)
        self._proc = await asyncio.create_subprocess_exec(
            REDIS_SERVER,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "yes",
            "--dir", str(workdir),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        client = Redis.from_url(self.url)
        try:
            async with asyncio.timeout(10):
                while True:
                    try:
                        if await client.ping():
                            return
                    except RedisError:
                        await asyncio.sleep(0.02)
        finally:
            await client.aclose()

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGTERM)  # a clean SHUTDOWN: the AOF is flushed
        try:
            async with asyncio.timeout(10):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[ThrowawayRedis]:
    server = ThrowawayRedis(tmp_path / "data")
    await server.start()
    yield server
    await server.stop()


async def _publish_when_up(broker: RedisBroker, n: int) -> None:
    async with asyncio.timeout(10):
        while True:
            try:
                await broker.publish(CHANNEL, b'{"n":%d}' % n, HISTORY)
                return
            except BrokerUnavailable:
                await asyncio.sleep(0.02)


async def test_hub_fills_the_gap_after_redis_restarts(redis_server: ThrowawayRedis) -> None:
    # Node A serves the client; its pub/sub waits at least 0.5 s before reconnecting, so node B's publications
    # right after the restart are certainly missed by pub/sub and must come from history.
    node_a = RedisBroker(redis_server.url, "t:", reconnect_base_delay=1.0, reconnect_max_delay=2.0)
    node_b = RedisBroker(redis_server.url, "t:")
    watched = InstrumentedBroker(node_a)
    await watched.start()
    await node_b.start()
    hub = Hub(watched, authorize=allow_all, settings=_settings())
    await hub.start()
    try:
        client = HubClient(hub)
        await client.subscribe(CHANNEL)
        for n in range(1, 4):
            await hub.publish(CHANNEL, {"n": n})
        await client.transport.wait_for_offsets(CHANNEL, 3)
        epoch = client.events(CHANNEL)[0]["epoch"]

        await redis_server.stop()
        with pytest.raises(BrokerUnavailable):
            await hub.publish(CHANNEL, {"n": -1})
        await redis_server.start()
        for n in range(4, 7):
            await _publish_when_up(node_b, n)
        assert node_a._reader._conn is None, "node A reconnected before the gap was created"

        await client.transport.wait_for_offsets(CHANNEL, 6, within=15)
        await hub.publish(CHANNEL, {"n": 7})
        await client.transport.wait_for_offsets(CHANNEL, 7)

        assert client.offsets(CHANNEL) == list(range(1, 8))
        assert [e["data"]["n"] for e in client.events(CHANNEL)] == list(range(1, 8))
        assert {e["epoch"] for e in client.events(CHANNEL)} == {epoch}
        assert client.transport.of_type("reload") == []
        assert watched.reconnects >= 1
        assert not client.conn.closed
    finally:
        await hub.close()
        await watched.close()
        await node_b.close()


async def test_subscribers_reload_when_redis_comes_back_without_its_data(
    redis_server: ThrowawayRedis, tmp_path: Path
) -> None:
    broker = RedisBroker(redis_server.url, "t:", reconnect_base_delay=0.1)
    await broker.start()
    hub = Hub(broker, authorize=allow_all, settings=_settings())
    await hub.start()
    try:
        client = HubClient(hub)
        await client.subscribe(CHANNEL)
        for n in range(1, 4):
            await hub.publish(CHANNEL, {"n": n})
        await client.transport.wait_for_offsets(CHANNEL, 3)

        await redis_server.stop()
        await redis_server.start(tmp_path / "empty")  # history and epochs are gone
        reload = await client.transport.wait_for_frame(lambda f: f["type"] == "reload", within=15)
        await _publish_when_up(broker, 99)
        await client.transport.wait_for_frame(lambda f: f.get("data") == {"n": 99})

        assert reload["channel"] == CHANNEL
        new_epoch = reload["position"]["epoch"]
        assert new_epoch != client.events(CHANNEL)[0]["epoch"]
        last = client.events(CHANNEL)[-1]
        assert (last["epoch"], last["offset"]) == (new_epoch, reload["position"]["offset"] + 1)
    finally:
        await hub.close()
        await broker.close()


def _settings() -> HubSettings:
    return HubSettings(history=HISTORY)
