"""Contract tests every `Broker` backend passes: memory, a real Redis, and a real three-shard Redis Cluster."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from channels.backends import make_broker
from channels.backends.memory import MemoryBroker
from channels.broker import BatchPublisher, Broker, HistoryOptions, Publishing, StreamPosition
from tests.channels.conftest import REDIS_URL, BrokerFactory, Collector, brokers_of

HISTORY = HistoryOptions(size=100, ttl_seconds=60)
BACKENDS = ["memory", "redis", "redis-cluster"]


@pytest.fixture(params=BACKENDS)
async def broker_factory(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[BrokerFactory]:
    async with brokers_of(request.param, request, redis_prefix) as make:
        yield make


async def test_offsets_start_at_one_and_grow_by_one_in_one_epoch(broker: Broker) -> None:
    positions = [await broker.publish("project:1:staff", b'{"n":%d}' % i, HISTORY) for i in range(5)]

    assert [p.offset for p in positions] == [1, 2, 3, 4, 5]
    assert len({p.epoch for p in positions}) == 1
    assert await broker.position("project:1:staff") == positions[-1]


async def test_position_of_a_new_channel_is_zero_and_its_epoch_is_kept_by_the_first_publish(broker: Broker) -> None:
    before = await broker.position("task:9:shared")
    again = await broker.position("task:9:shared")
    published = await broker.publish("task:9:shared", b"{}", HISTORY)

    assert before.offset == 0
    assert again == before
    assert published == StreamPosition(1, before.epoch)


async def test_channels_have_independent_offsets_and_epochs(broker: Broker) -> None:
    a = await broker.publish("project:1:staff", b"{}", HISTORY)
    b = await broker.publish("project:1:shared", b"{}", HISTORY)
    a2 = await broker.publish("project:1:staff", b"{}", HISTORY)

    assert (a.offset, b.offset, a2.offset) == (1, 1, 2)
    assert a.epoch != b.epoch


async def test_handler_receives_subscribed_channels_in_offset_order(broker: Broker) -> None:
    got = Collector()
    broker.set_handler(got)
    await broker.subscribe("project:1:staff")

    for i in range(50):
        await broker.publish("project:1:staff", b'{"n":%d}' % i, HISTORY)
    await broker.publish("project:2:staff", b"{}", HISTORY)  # not subscribed

    pubs = await got.wait_for("project:1:staff", 50)
    assert [p.offset for p in pubs] == list(range(1, 51))
    assert [p.data for p in pubs] == [b'{"n":%d}' % i for i in range(50)]
    await asyncio.sleep(0.05)
    assert got.on("project:2:staff") == []


async def test_concurrent_publishes_get_distinct_offsets_delivered_in_order(broker: Broker) -> None:
    got = Collector()
    broker.set_handler(got)
    await broker.subscribe("project:1:staff")

    positions = await asyncio.gather(*(broker.publish("project:1:staff", b"{}", HISTORY) for _ in range(40)))

    assert sorted(p.offset for p in positions) == list(range(1, 41))
    pubs = await got.wait_for("project:1:staff", 40)
    assert [p.offset for p in pubs] == list(range(1, 41))


async def test_publications_carry_the_time_the_broker_accepted_them_live_and_in_history(broker: Broker) -> None:
    got = Collector()
    broker.set_handler(got)
    await broker.subscribe("project:1:staff")
    since = await broker.position("project:1:staff")

    before = time.time_ns() // 1_000_000
    for i in range(3):
        await broker.publish("project:1:staff", b'{"n":%d}' % i, HISTORY)
    after = time.time_ns() // 1_000_000

    live = await got.wait_for("project:1:staff", 3)
    stored = (await broker.history("project:1:staff", since, 10)).publications
    # The broker's clock (Redis's TIME) is this machine's clock here; a millisecond of slack for truncation.
    assert all(before - 1 <= p.ts <= after + 1 for p in live)
    assert [p.ts for p in stored] == [p.ts for p in live]
    assert [p.ts for p in live] == sorted(p.ts for p in live)


async def test_unsubscribe_stops_delivery(broker: Broker) -> None:
    got = Collector()
    broker.set_handler(got)
    await broker.subscribe("project:1:staff")
    await broker.publish("project:1:staff", b'{"n":1}', HISTORY)
    await got.wait_for("project:1:staff", 1)

    await broker.unsubscribe("project:1:staff")
    await broker.publish("project:1:staff", b'{"n":2}', HISTORY)
    await asyncio.sleep(0.1)

    assert [p.offset for p in got.on("project:1:staff")] == [1]


async def test_ephemeral_publish_is_delivered_but_not_stored(broker: Broker) -> None:
    got = Collector()
    broker.set_handler(got)
    await broker.subscribe("project:1:staff#presence")

    position = await broker.publish("project:1:staff#presence", b'{"x":1}', None)

    assert position.offset == 0
    (pub,) = await got.wait_for("project:1:staff#presence", 1)
    assert (pub.offset, pub.epoch, pub.data) == (0, "", b'{"x":1}')
    assert (await broker.position("project:1:staff#presence")).offset == 0


async def test_history_since_returns_exactly_the_missed_publications(broker: Broker) -> None:
    for i in range(10):
        last = await broker.publish("project:1:staff", b'{"n":%d}' % i, HISTORY)

    result = await broker.history("project:1:staff", StreamPosition(6, last.epoch), limit=100)

    assert result.recoverable
    assert result.position == last
    assert [p.offset for p in result.publications] == [7, 8, 9, 10]
    assert [p.data for p in result.publications] == [b'{"n":6}', b'{"n":7}', b'{"n":8}', b'{"n":9}']
    assert {p.epoch for p in result.publications} == {last.epoch}


async def test_history_limit_returns_the_oldest_missed_first(broker: Broker) -> None:
    for _ in range(10):
        last = await broker.publish("project:1:staff", b"{}", HISTORY)

    result = await broker.history("project:1:staff", StreamPosition(2, last.epoch), limit=3)

    assert result.recoverable
    assert [p.offset for p in result.publications] == [3, 4, 5]


async def test_history_when_nothing_was_missed_is_recoverable_and_empty(broker: Broker) -> None:
    last = await broker.publish("project:1:staff", b"{}", HISTORY)

    result = await broker.history("project:1:staff", last, limit=100)

    assert result.recoverable
    assert result.publications == []


async def test_history_without_since_only_gives_the_position(broker: Broker) -> None:
    last = await broker.publish("project:1:staff", b"{}", HISTORY)

    result = await broker.history("project:1:staff", None, limit=100)

    assert (result.publications, result.position, result.recoverable) == ([], last, True)


async def test_history_trimmed_by_size_is_not_recoverable(broker: Broker) -> None:
    small = HistoryOptions(size=5, ttl_seconds=60)
    for _ in range(12):
        last = await broker.publish("project:1:staff", b"{}", small)

    lost = await broker.history("project:1:staff", StreamPosition(3, last.epoch), limit=100)
    kept = await broker.history("project:1:staff", StreamPosition(7, last.epoch), limit=100)

    assert not lost.recoverable
    assert lost.publications == []
    assert lost.position == last
    assert kept.recoverable
    assert [p.offset for p in kept.publications] == [8, 9, 10, 11, 12]


async def test_history_trimmed_by_age_is_not_recoverable(broker: Broker) -> None:
    short = HistoryOptions(size=100, ttl_seconds=0.3)
    for _ in range(3):
        first = await broker.publish("project:1:staff", b"{}", short)
    await asyncio.sleep(0.5)
    last = await broker.publish("project:1:staff", b"{}", short)

    old = await broker.history("project:1:staff", StreamPosition(1, first.epoch), limit=100)
    fresh = await broker.history("project:1:staff", StreamPosition(3, first.epoch), limit=100)

    assert last.offset == 4 and last.epoch == first.epoch
    assert not old.recoverable
    assert fresh.recoverable
    assert [p.offset for p in fresh.publications] == [4]


async def test_history_with_another_epoch_is_not_recoverable(broker: Broker) -> None:
    last = await broker.publish("project:1:staff", b"{}", HISTORY)

    result = await broker.history("project:1:staff", StreamPosition(0, last.epoch + "x"), limit=100)

    assert not result.recoverable
    assert result.position == last


async def test_history_from_the_future_is_not_recoverable(broker: Broker) -> None:
    last = await broker.publish("project:1:staff", b"{}", HISTORY)

    result = await broker.history("project:1:staff", StreamPosition(5, last.epoch), limit=100)

    assert not result.recoverable


@pytest.mark.parametrize("broker_factory", ["redis", "redis-cluster"], indirect=True)  # memory: one process
async def test_two_nodes_see_each_others_publications(broker_factory: BrokerFactory) -> None:
    node_a = await broker_factory()
    node_b = await broker_factory()
    got_a, got_b = Collector(), Collector()
    node_a.set_handler(got_a)
    node_b.set_handler(got_b)
    await node_a.subscribe("project:1:staff")
    await node_b.subscribe("project:1:staff")

    await node_a.publish("project:1:staff", b'{"from":"a"}', HISTORY)
    await node_b.publish("project:1:staff", b'{"from":"b"}', HISTORY)

    for got in (got_a, got_b):
        pubs = await got.wait_for("project:1:staff", 2)
        assert [(p.offset, p.data) for p in pubs] == [(1, b'{"from":"a"}'), (2, b'{"from":"b"}')]
    assert await node_b.position("project:1:staff") == await node_a.position("project:1:staff")


async def test_a_repeated_idempotency_key_publishes_nothing_and_spends_no_offset(broker: Broker) -> None:
    got = Collector()
    broker.set_handler(got)
    await broker.subscribe("project:1:staff")

    first = await broker.publish("project:1:staff", b'{"v":2}', HISTORY, idempotency_key="row-7")
    again = await broker.publish("project:1:staff", b'{"v":2}', HISTORY, idempotency_key="row-7")
    later = await broker.publish("project:1:staff", b'{"v":3}', HISTORY, idempotency_key="row-8")

    assert again == first  # the first publication's position, not a new one
    assert later == StreamPosition(first.offset + 1, first.epoch)  # no offset was spent on the repeat
    pubs = await got.wait_for("project:1:staff", 2)
    await asyncio.sleep(0.1)
    assert [(p.offset, p.data) for p in got.on("project:1:staff")] == [(1, b'{"v":2}'), (2, b'{"v":3}')]
    history = await broker.history("project:1:staff", StreamPosition(0, first.epoch), limit=100)
    assert [(p.offset, p.data) for p in history.publications] == [(p.offset, p.data) for p in pubs]


async def test_an_idempotency_key_is_per_channel(broker: Broker) -> None:
    staff = await broker.publish("project:1:staff", b"{}", HISTORY, idempotency_key="row-7")
    shared = await broker.publish("project:1:shared", b"{}", HISTORY, idempotency_key="row-7")

    assert (staff.offset, shared.offset) == (1, 1)
    assert (await broker.position("project:1:shared")).offset == 1


async def test_publishes_without_a_key_are_never_dropped(broker: Broker) -> None:
    positions = [await broker.publish("project:1:staff", b'{"same":1}', HISTORY) for _ in range(3)]
    assert [p.offset for p in positions] == [1, 2, 3]


async def test_an_idempotency_key_is_forgotten_after_its_window(broker_factory: BrokerFactory) -> None:
    broker = await broker_factory(idempotency_ttl_seconds=0.2)
    first = await broker.publish("project:1:staff", b"{}", HISTORY, idempotency_key="row-7")
    assert await broker.publish("project:1:staff", b"{}", HISTORY, idempotency_key="row-7") == first
    await asyncio.sleep(0.3)
    assert (await broker.publish("project:1:staff", b"{}", HISTORY, idempotency_key="row-7")).offset == 2


@pytest.mark.parametrize("broker_factory", ["redis", "redis-cluster"], indirect=True)  # memory: one process
async def test_two_nodes_racing_with_one_key_publish_it_once(broker_factory: BrokerFactory) -> None:
    node_a = await broker_factory()
    node_b = await broker_factory()
    got = Collector()
    node_b.set_handler(got)
    await node_b.subscribe("project:1:staff")

    positions = await asyncio.gather(
        *(
            node.publish("project:1:staff", b'{"v":2}', HISTORY, idempotency_key="row-7")
            for node in (node_a, node_b) * 5
        )
    )

    assert len(set(positions)) == 1 and positions[0].offset == 1
    await got.wait_for("project:1:staff", 1)
    await asyncio.sleep(0.1)
    assert len(got.on("project:1:staff")) == 1
    assert (await node_a.publish("project:1:staff", b"{}", HISTORY)).offset == 2


async def test_a_subscribed_channel_has_subscribers(broker: Broker) -> None:
    await broker.subscribe("report:project:1:staff")
    assert await broker.has_subscribers("report:project:1:staff")


@pytest.mark.parametrize("broker_factory", ["memory", "redis"], indirect=True)  # a cluster answers True: allowed
async def test_a_channel_nobody_subscribes_to_has_no_subscribers(broker_factory: BrokerFactory) -> None:
    broker = await broker_factory()
    assert not await broker.has_subscribers("report:project:1:staff")
    await broker.subscribe("report:project:1:staff")
    await broker.unsubscribe("report:project:1:staff")
    assert not await broker.has_subscribers("report:project:1:staff")


@pytest.mark.parametrize("broker_factory", ["redis", "redis-cluster"], indirect=True)
async def test_a_channel_subscribed_on_another_node_has_subscribers(broker_factory: BrokerFactory) -> None:
    node_a = await broker_factory()
    node_b = await broker_factory()
    await node_b.subscribe("report:project:1:shared")
    assert await node_a.has_subscribers("report:project:1:shared")


@pytest.mark.parametrize("broker_factory", ["redis", "redis-cluster"], indirect=True)  # memory: no batches
async def test_a_batch_is_published_in_order_once_per_key_and_reaches_subscribers(
    broker_factory: BrokerFactory,
) -> None:
    node_a = await broker_factory()
    node_b = await broker_factory()
    assert isinstance(node_a, BatchPublisher)
    received = Collector()
    node_b.set_handler(received)
    channels = ["project:1:staff", "project:2:staff"]  # two slots on the cluster
    for channel in channels:
        await node_b.subscribe(channel)
    items = [Publishing(channels[n % 2], b'{"n":%d}' % n, f"k{n}") for n in range(6)]

    positions = await node_a.publish_batch(items, HISTORY)

    assert [p.offset if p else None for p in positions] == [1, 1, 2, 2, 3, 3]
    assert await node_a.publish_batch(items, HISTORY) == positions  # again: nothing new, the first positions
    for index, channel in enumerate(channels):
        got = await received.wait_for(channel, 3)
        assert [(p.offset, p.data) for p in got] == [(n // 2 + 1, b'{"n":%d}' % n) for n in range(index, 6, 2)]
    assert await node_a.position(channels[0]) == positions[-2]


def test_make_broker_picks_the_backend_by_scheme(redis_prefix: str) -> None:
    from channels.backends.redis import RedisBroker
    from channels.backends.redis_cluster import ShardedSubscriber

    assert isinstance(make_broker(None, "x:"), MemoryBroker)
    assert isinstance(make_broker("memory://", "x:"), MemoryBroker)
    assert isinstance(make_broker(REDIS_URL, redis_prefix), RedisBroker)
    assert isinstance(make_broker("rediss://example.invalid:6380/0", redis_prefix), RedisBroker)
    on_cluster = make_broker("redis+cluster://example.invalid:7000,example.invalid:7001", redis_prefix)
    assert isinstance(on_cluster, RedisBroker) and isinstance(on_cluster.subscriber, ShardedSubscriber)
    with pytest.raises(ValueError, match="scheme"):
        make_broker("kafka://x", "x:")
