"""A burst that reaches a node from Redis together leaves it together: one WebSocket message per socket, not one
per event, in order, each event once.

The burst is published from another thread (its own event loop and `RedisBroker`) while this test's loop is held
in ``Thread.join``, so every publication is waiting in the subscriber connection's socket buffer before the node
reads any of them. Nothing here depends on timing.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from redis.asyncio import Redis

from channels.backends.redis import RedisBroker
from channels.broker import HistoryOptions, Publishing
from tests.channels.conftest import REDIS_URL, BrokerFactory, HubFactory
from tests.channels.hubkit import HubClient, two_nodes_subscribed

CHANNEL = "project:7:shared"
HISTORY = HistoryOptions(size=200, ttl_seconds=60)
BURST = 40


def _publish_from_another_loop(prefix: str, count: int, first: int = 0) -> None:
    """Publish ``count`` events through a broker of its own on its own loop; blocks the caller until done."""

    async def burst() -> None:
        broker = RedisBroker(REDIS_URL, prefix)
        await broker.start()
        try:
            for n in range(first, first + count):
                await broker.publish(CHANNEL, b'{"n":%d}' % n, HISTORY)
        finally:
            await broker.close()

    failed: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(burst())
        except BaseException as exc:  # reported on the test's thread
            failed.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()  # holds this loop: the node reads nothing until the whole burst is published
    if failed:
        raise failed[0]


def _event_messages(client: HubClient) -> list[str]:
    return [m for m in client.transport.messages if '"type":"event"' in m]


@pytest.mark.parametrize("broker_factory", ["redis"], indirect=True)
async def test_a_burst_from_redis_reaches_each_socket_in_order_once_and_joined(
    broker_factory: BrokerFactory, make_hub: HubFactory, redis_prefix: str
) -> None:
    hub = await make_hub(broker=await broker_factory())
    clients = [HubClient(hub, f"u{i}") for i in range(3)]
    for client in clients:
        await client.subscribe(CHANNEL)

    _publish_from_another_loop(redis_prefix, BURST)

    for client in clients:
        assert await client.transport.wait_for_offsets(CHANNEL, BURST) == list(range(1, BURST + 1))
        assert [e["data"]["n"] for e in client.events(CHANNEL)] == list(range(BURST))
        messages = _event_messages(client)
        assert len(messages) < BURST, f"{BURST} events in {len(messages)} messages"


@pytest.mark.parametrize("broker_factory", ["redis"], indirect=True)
async def test_a_batch_published_on_one_node_reaches_the_other_in_order_once_and_joined(
    broker_factory: BrokerFactory, make_hub: HubFactory
) -> None:
    hub_a, _, on_a, on_b = await two_nodes_subscribed(broker_factory, make_hub, CHANNEL)

    items = [Publishing(CHANNEL, b'{"n":%d}' % n, f"event-{n}") for n in range(BURST)]
    positions = await hub_a.publish_batch(items)

    assert [p.offset if p else None for p in positions] == list(range(1, BURST + 1))
    for client in (on_a, on_b):
        assert await client.transport.wait_for_offsets(CHANNEL, BURST) == list(range(1, BURST + 1))
        assert [e["data"]["n"] for e in client.events(CHANNEL)] == list(range(BURST))
        assert len(_event_messages(client)) < BURST
    # Published again (the relay retrying a batch): nothing new is made, every position is the first one's.
    assert await hub_a.publish_batch(items) == positions


@pytest.mark.parametrize("broker_factory", ["redis"], indirect=True)
async def test_what_a_failed_batch_leaves_on_a_channel_is_a_prefix_and_a_retry_keeps_the_order(
    broker_factory: BrokerFactory, make_hub: HubFactory, redis_prefix: str
) -> None:
    other = "project:7:staff"
    hub = await make_hub(broker=await broker_factory())
    client = HubClient(hub)
    await client.subscribe(CHANNEL)
    await client.subscribe(other)
    items = [
        Publishing(CHANNEL, b'{"n":0}', "e0"),
        Publishing(other, b'{"n":0}', "e0"),
        Publishing(CHANNEL, b'{"n":1}', "e1"),
        Publishing(other, b'{"n":1}', "e1"),
        Publishing(CHANNEL, b'{"n":2}', "e2"),
        Publishing(other, b'{"n":2}', "e2"),
    ]
    # The second event's idempotency key on CHANNEL is a hash: its publish script fails there, and only there.
    poisoned = f"{redis_prefix}{{{CHANNEL}}}:once:e1"
    redis = Redis.from_url(REDIS_URL)
    try:
        await redis.hset(poisoned, "x", "1")
        first = await hub.publish_batch(items)
        assert [p.offset if p else None for p in first] == [1, 1, None, 2, None, 3]
        await redis.delete(poisoned)
    finally:
        await redis.aclose()

    retried = await hub.publish_batch(items)

    assert [p.offset if p else None for p in retried] == [1, 1, 2, 2, 3, 3]
    assert await client.transport.wait_for_offsets(CHANNEL, 3) == [1, 2, 3]
    assert await client.transport.wait_for_offsets(other, 3) == [1, 2, 3]
    assert [e["data"]["n"] for e in client.events(CHANNEL)] == [0, 1, 2]
    assert [e["data"]["n"] for e in client.events(other)] == [0, 1, 2]
