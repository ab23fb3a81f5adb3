"""The broker on a real Redis Cluster: channels spread over the shards, and it survives a shard restart and a slot
moving to another shard. The contract suite (``test_broker_contract.py``) runs on the cluster too."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.crc import key_slot
from redis.exceptions import MovedError

from channels.backends.redis import RedisBroker
from channels.backends.redis_cluster import ShardedSubscriber, redis_client
from channels.backends.redis_presence import RedisPresence
from channels.broker import BrokerUnavailable, HistoryOptions, StreamPosition
from channels.presence import PresenceInfo
from tests.channels.conftest import Collector
from tests.conftest import throwaway_cluster
from tests.nodes import RedisServer, RedisShards

HISTORY = HistoryOptions(size=100, ttl_seconds=60)


def _node(server: RedisServer) -> Redis:
    return Redis(host="127.0.0.1", port=server.port)


async def test_channels_and_their_keys_spread_over_all_three_shards(
    redis_shards: RedisShards, redis_prefix: str
) -> None:
    broker = RedisBroker(redis_shards.url, redis_prefix)
    await broker.start()
    got = Collector()
    broker.set_handler(got)
    channels = [f"project:{i}:shared" for i in range(30)]
    try:
        for channel in channels:
            await broker.subscribe(channel)
            await broker.publish(channel, b'{"n":1}', HISTORY)
        for channel in channels:
            await got.wait_for(channel, 1)

        subscriber = broker.subscriber
        assert isinstance(subscriber, ShardedSubscriber)
        assert len(subscriber.shards()) == 3
        per_shard_subscriptions, per_shard_keys = [], []
        for server in redis_shards.servers:
            node = _node(server)
            try:
                names = await node.execute_command("PUBSUB", "SHARDCHANNELS", f"{redis_prefix}*")
                keys = [key async for key in node.scan_iter(match=f"{redis_prefix}*")]
            finally:
                await node.aclose()
            per_shard_subscriptions.append({n.decode() for n in names})
            per_shard_keys.append({k.decode() for k in keys})
    finally:
        await broker.close()

    # Each shard serves some channels, every channel is subscribed on exactly one shard, and its keys are there too.
    assert all(per_shard_subscriptions), per_shard_subscriptions
    assert sum(len(s) for s in per_shard_subscriptions) == len(channels)
    for names, keys in zip(per_shard_subscriptions, per_shard_keys, strict=True):
        for name in names:
            tag = name.removesuffix(":pub")
            assert {f"{tag}:meta", f"{tag}:history"} <= keys


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[RedisShards]:
    """A cluster of this module's own: its tests restart shards and move slots."""
    with throwaway_cluster() as shards:
        yield shards


@pytest.fixture
async def pair(own_cluster: RedisShards, redis_prefix: str) -> AsyncIterator[tuple[RedisBroker, RedisBroker]]:
    """Two brokers (two nodes) on ``own_cluster`` with fast reconnects."""
    made = [
        RedisBroker(own_cluster.url, redis_prefix, reconnect_max_delay=0.2, ping_interval_seconds=0.5) for _ in range(2)
    ]
    for broker in made:
        await broker.start()
    yield made[0], made[1]
    for broker in made:
        await broker.close()


def _shard_of(shards: RedisShards, name: str) -> RedisServer:
    """The server owning ``name``'s slot: the one that answers for it instead of redirecting (-MOVED)."""
    return next(s for s in shards.servers if _owns(s, name))


def _owns(server: RedisServer, name: str) -> bool:
    with SyncRedis(port=server.port) as node:
        try:
            node.exists(name)
        except MovedError:
            return False
    return True


async def test_a_restarted_shard_is_resubscribed_and_the_gap_is_recoverable(
    own_cluster: RedisShards, pair: tuple[RedisBroker, RedisBroker], redis_prefix: str
) -> None:
    publisher, listener = pair
    channel = "project:7:staff"
    got = Collector()
    listener.set_handler(got)
    reconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    listener.set_reconnect_handler(on_reconnect)
    await listener.subscribe(channel)
    first = await publisher.publish(channel, b'{"n":1}', HISTORY)
    await got.wait_for(channel, 1)

    shard = _shard_of(own_cluster, f"{redis_prefix}{{{channel}}}:pub")
    shard.stop()  # SIGTERM: the AOF and nodes.conf are kept, as after a clean restart
    shard.start()
    async with asyncio.timeout(30):
        await reconnected.wait()
        while True:  # the cluster needs a moment to agree the shard is back
            try:
                await publisher.publish(channel, b'{"n":2}', HISTORY)
                break
            except Exception:
                await asyncio.sleep(0.1)

    pubs = await got.wait_for(channel, 2, within=10)
    assert [p.data for p in pubs] == [b'{"n":1}', b'{"n":2}']
    history = await listener.history(channel, StreamPosition(first.offset, first.epoch), 10)
    assert history.recoverable and [p.offset for p in history.publications] == [2]


async def test_a_migrated_slot_is_followed_to_its_new_shard(
    own_cluster: RedisShards, pair: tuple[RedisBroker, RedisBroker], redis_prefix: str
) -> None:
    publisher, listener = pair
    channel = "task:42:shared"
    name = f"{redis_prefix}{{{channel}}}:pub"
    slot = key_slot(name.encode())
    got = Collector()
    listener.set_handler(got)
    rerouted = asyncio.Event()

    async def on_reroute() -> None:
        rerouted.set()

    listener.set_reconnect_handler(on_reroute)
    await listener.subscribe(channel)
    await publisher.publish(channel, b'{"n":1}', HISTORY)
    await got.wait_for(channel, 1)

    source = _shard_of(own_cluster, name)
    target = next(s for s in own_cluster.servers if s is not source)
    await _migrate_slot(slot, source, target, own_cluster.servers)

    async with asyncio.timeout(15):
        await rerouted.wait()
    await publisher.publish(channel, b'{"n":2}', HISTORY)
    pubs = await got.wait_for(channel, 2, within=10)
    assert [(p.offset, p.data) for p in pubs] == [(1, b'{"n":1}'), (2, b'{"n":2}')]
    subscriber = listener.subscriber
    assert isinstance(subscriber, ShardedSubscriber)
    assert subscriber.shards().get(f"127.0.0.1:{target.port}") == [channel]
    assert _owns(target, name) and not _owns(source, name)


async def _migrate_slot(slot: int, source: RedisServer, target: RedisServer, everyone: list[RedisServer]) -> None:
    """Move ``slot`` with its keys from ``source`` to ``target`` as ``redis-cli --cluster reshard`` does."""
    src, dst = _node(source), _node(target)
    try:
        src_id = (await src.execute_command("CLUSTER", "MYID")).decode()
        dst_id = (await dst.execute_command("CLUSTER", "MYID")).decode()
        await dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        await src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        keys = await src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000)
        if keys:
            await src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
        for server in [target, source, *(s for s in everyone if s not in (source, target))]:
            node = _node(server)
            try:
                await node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
            finally:
                await node.aclose()
    finally:
        await src.aclose()
        await dst.aclose()


def _entry(client_id: str) -> PresenceInfo:
    return PresenceInfo(client_id=client_id, user_id="7", name="User 7", role="staff")


async def test_a_presence_batch_follows_a_migrated_slot(own_cluster: RedisShards, redis_prefix: str) -> None:
    presence = RedisPresence(own_cluster.url, redis_prefix)
    rooms = [f"room:project:{n}" for n in range(12)]
    batch = [(room, _entry(f"c-{room}")) for room in rooms]
    try:
        await presence.register("node-a", 30)
        assert await presence.add_many(batch, "node-a") == [True] * len(batch)
        stem = f"{redis_prefix}{{{rooms[0]}}}"
        source = _shard_of(own_cluster, stem)
        target = next(s for s in own_cluster.servers if s is not source)
        await _migrate_slot(key_slot(stem.encode()), source, target, own_cluster.servers)

        # The client's slot map still names the old owner: the call there fails, the map is read again, and the
        # channel is added on its new shard in the same batch.
        assert await presence.add_many(batch, "node-a") == [False] * len(batch)
        assert await presence.list(rooms[0]) == [_entry(f"c-{rooms[0]}")]
        assert _owns(target, f"{stem}:members") and not _owns(source, f"{stem}:members")
    finally:
        await presence.close()


async def test_a_presence_batch_adds_on_the_live_shards_when_one_is_down(
    own_cluster: RedisShards, redis_prefix: str
) -> None:
    presence = RedisPresence(own_cluster.url, redis_prefix)
    rooms = [f"room:project:{n}" for n in range(30)]
    batch = [(room, _entry(f"c-{room}")) for room in rooms]
    down = _shard_of(own_cluster, f"{redis_prefix}{{presence}}:leases")  # the shard every lease is on
    survivors = [server for server in own_cluster.servers if server is not down]
    on_down = {room for room in rooms if _owns(down, f"{redis_prefix}{{{room}}}")}
    assert on_down and len(on_down) < len(rooms)
    for server in survivors:  # keep serving their own slots while a shard is down (the default stops them all)
        with SyncRedis(port=server.port) as node:
            node.config_set("cluster-require-full-coverage", "no")
    try:
        await presence.register("node-a", 30)
        assert await presence.add_many(batch, "node-a") == [True] * len(batch)
        assert await presence.list(rooms[0]) == [_entry(f"c-{rooms[0]}")]
        down.stop()

        results = await presence.add_many(batch, "node-a")  # does not raise

        for (room, _), result in zip(batch, results, strict=True):
            if room in on_down:
                assert isinstance(result, BrokerUnavailable), (room, result)
            else:
                assert result is False, (room, result)
        live = next(room for room in rooms if room not in on_down)  # still listed, by the leases last read
        assert await presence.list(live) == [_entry(f"c-{live}")]
    finally:
        down.start()
        async with asyncio.timeout(30):  # the shard is back: every entry is added again
            while any(isinstance(r, BrokerUnavailable) for r in await presence.add_many(batch, "node-a")):
                await asyncio.sleep(0.2)
        for server in survivors:
            with SyncRedis(port=server.port) as node:
                node.config_set("cluster-require-full-coverage", "yes")
        await presence.close()


async def test_a_failover_moves_subscriptions_to_the_promoted_replica(redis_prefix: str) -> None:
    channel = "project:9:shared"
    name = f"{redis_prefix}{{{channel}}}:pub"
    with throwaway_cluster(replicas=1) as shards:
        brokers = [
            RedisBroker(shards.url, redis_prefix, reconnect_max_delay=0.2, ping_interval_seconds=0.5) for _ in range(2)
        ]
        publisher, listener = brokers
        try:
            for broker in brokers:
                await broker.start()
            got = Collector()
            listener.set_handler(got)
            moved = asyncio.Event()

            async def on_reroute() -> None:
                moved.set()

            listener.set_reconnect_handler(on_reroute)
            await listener.subscribe(channel)
            await publisher.publish(channel, b'{"n":1}', HISTORY)
            await got.wait_for(channel, 1)

            primary = _shard_of(shards, name)
            assert primary.process is not None
            primary.process.kill()  # SIGKILL: its replica must take over
            primary.process.wait(timeout=10)
            async with asyncio.timeout(30):
                await moved.wait()
                while len(got.on(channel)) < 2:  # publish until one arrives through the promoted replica
                    with contextlib.suppress(BrokerUnavailable):
                        await publisher.publish(channel, b'{"n":2}', HISTORY)
                    await asyncio.sleep(0.2)
            subscriber = listener.subscriber
            assert isinstance(subscriber, ShardedSubscriber)
            (holder,) = [shard for shard, held in subscriber.shards().items() if channel in held]
            assert holder != f"127.0.0.1:{primary.port}"
            assert got.on(channel)[1].data == b'{"n":2}'
        finally:
            for broker in brokers:
                await broker.close()


def test_cluster_urls_name_their_seeds() -> None:
    from redis.asyncio.cluster import RedisCluster

    client = redis_client("redis+cluster://u:p%40ss@10.0.0.1:7000,10.0.0.2:7001")
    assert isinstance(client, RedisCluster)
    seeds = sorted(node.name for node in client.nodes_manager.startup_nodes.values())
    assert seeds == ["10.0.0.1:7000", "10.0.0.2:7001"]
    assert client.nodes_manager.connection_kwargs["password"] == "p@ss"
    with pytest.raises(ValueError, match="database 0"):
        redis_client("redis+cluster://10.0.0.1:7000/3")
    assert isinstance(redis_client("redis://127.0.0.1:6379/0"), Redis)
