"""Contract tests every `PresenceManager` backend passes (memory, a real Redis, a real three-shard Redis Cluster)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from channels.backends.redis_cluster import redis_client
from channels.backends.redis_presence import RedisPresence
from channels.broker import BrokerUnavailable
from channels.presence import MemoryPresence, PresenceInfo, PresenceManager
from tests.channels.conftest import REDIS_URL


@pytest.fixture(params=["memory", "redis", "redis-cluster"])
async def presence(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[PresenceManager]:
    manager: PresenceManager
    if request.param == "memory":
        manager = MemoryPresence()
    else:
        url = REDIS_URL if request.param == "redis" else request.getfixturevalue("redis_shards").url
        manager = RedisPresence(url, redis_prefix)
    yield manager
    await manager.close()


# Channels that land on every shard of the three-shard cluster (30 hash tags spread over 16,384 slots).
ROOMS = [f"room:project:{n}" for n in range(30)]


def info(client_id: str, user_id: str = "7", **data: object) -> PresenceInfo:
    return PresenceInfo(client_id=client_id, user_id=user_id, name=f"User {user_id}", role="staff", data=dict(data))


async def leased(presence: PresenceManager, node: str = "node-a", ttl_seconds: float = 30) -> str:
    await presence.register(node, ttl_seconds)
    return node


async def lapsed(presence: PresenceManager, node: str, within: float = 5.0) -> None:
    """Wait (with a deadline) until ``node``'s lease lapsed: `renew` refuses it (and so never extends it)."""
    async with asyncio.timeout(within):
        while await presence.renew(node, 0.001):
            await asyncio.sleep(0.02)


async def claimed_until(presence: PresenceManager, count: int, within: float = 5.0) -> list[tuple[str, PresenceInfo]]:
    """Claim (with a deadline) until ``count`` entries came back; the leases lapse on the store's clock."""
    claimed: list[tuple[str, PresenceInfo]] = []
    async with asyncio.timeout(within):
        while len(claimed) < count:
            claimed += await presence.claim_dead()
            await asyncio.sleep(0.02)
    return claimed


async def test_added_entries_are_listed_with_their_data(presence: PresenceManager) -> None:
    node = await leased(presence)
    assert await presence.add("project:1:staff", info("c1", viewing="task:4"), node) is True
    await presence.add("project:1:staff", info("c2", user_id="8"), node)
    await presence.add("project:2:staff", info("c3"), node)

    listed = sorted(await presence.list("project:1:staff"), key=lambda i: i.client_id)

    assert listed == [info("c1", viewing="task:4"), info("c2", user_id="8")]


async def test_add_again_replaces_the_entry(presence: PresenceManager) -> None:
    node = await leased(presence)
    await presence.add("project:1:staff", info("c1", typing=False), node)
    assert await presence.add("project:1:staff", info("c1", typing=True), node) is False  # an update

    assert await presence.list("project:1:staff") == [info("c1", typing=True)]


async def test_removed_entries_are_gone(presence: PresenceManager) -> None:
    node = await leased(presence)
    await presence.add("project:1:staff", info("c1"), node)
    await presence.add("project:1:staff", info("c2"), node)

    await presence.remove("project:1:staff", "c1")
    await presence.remove("project:1:staff", "missing")

    assert [i.client_id for i in await presence.list("project:1:staff")] == ["c2"]
    assert await presence.add("project:1:staff", info("c1"), node) is True  # back: a join


async def test_entries_live_as_long_as_their_nodes_lease(presence: PresenceManager) -> None:
    dead = await leased(presence, "dead-node", ttl_seconds=0.5)
    live = await leased(presence, "live-node", ttl_seconds=0.5)
    await presence.add("project:1:staff", info("dead-node-client"), dead)
    await presence.add("project:1:staff", info("live-node-client"), live)

    async with asyncio.timeout(5):  # heartbeats for the live node only, until the other's lease lapsed
        while await presence.renew(dead, 0.001):
            assert await presence.renew(live, 0.5) is True
            await asyncio.sleep(0.02)

    assert await presence.renew(live, 30) is True
    assert [i.client_id for i in await presence.list("project:1:staff")] == ["live-node-client"]
    assert await presence.renew(dead, 30) is False  # a lapsed lease stays lapsed
    assert [i.client_id for i in await presence.list("project:1:staff")] == ["live-node-client"]


async def test_an_unregistered_node_has_no_lease_to_renew(presence: PresenceManager) -> None:
    assert await presence.renew("never-registered", 30) is False


async def test_unknown_channel_lists_nothing(presence: PresenceManager) -> None:
    assert await presence.list("project:404:staff") == []


async def test_a_dead_nodes_entries_are_claimed_once_on_every_channel_and_a_live_nodes_stay(
    presence: PresenceManager,
) -> None:
    dead = await leased(presence, "dead-node", ttl_seconds=0.3)
    live = await leased(presence)
    for room in ROOMS[:4]:
        await presence.add(room, info(f"dead-{room}"), dead)
        await presence.add(room, info(f"live-{room}"), live)
    assert await presence.claim_dead() == []  # nothing lapsed yet

    claimed = await claimed_until(presence, 4)

    assert sorted(claimed, key=lambda c: c[0]) == [(room, info(f"dead-{room}")) for room in sorted(ROOMS[:4])]
    assert await presence.claim_dead() == []  # once, and the lease is forgotten
    for room in ROOMS[:4]:
        assert await presence.list(room) == [info(f"live-{room}")]


async def test_a_removed_entry_is_never_claimed(presence: PresenceManager) -> None:
    node = await leased(presence, ttl_seconds=0.3)
    await presence.add("project:1:staff", info("c1"), node)
    await presence.add("project:1:staff", info("c2"), node)
    await lapsed(presence, node)
    assert await presence.list("project:1:staff") == []
    await presence.remove("project:1:staff", "c1")  # its node said goodbye itself, late

    assert await claimed_until(presence, 1) == [("project:1:staff", info("c2"))]


async def test_a_node_back_after_its_lease_lapsed_takes_unclaimed_entries_back_and_rejoins_claimed_ones(
    presence: PresenceManager,
) -> None:
    old = await leased(presence, "stalled-node", ttl_seconds=0.3)
    await presence.add("room:project:1", info("claimed"), old)
    await lapsed(presence, old)
    assert await claimed_until(presence, 1) == [("room:project:1", info("claimed"))]  # announced as left
    other = await leased(presence, "other-node", ttl_seconds=0.3)  # lapses too, but nobody claims it yet
    await presence.add("room:project:2", info("stalled"), other)
    await lapsed(presence, other)

    new = await leased(presence, "new-lease")
    results = await presence.add_many([("room:project:1", info("claimed")), ("room:project:2", info("stalled"))], new)

    # "claimed" was told to have left: it joins again. "stalled" never was: it is taken back under the new lease,
    # and the old lease's claim no longer takes it.
    assert results == [True, False]
    assert await presence.claim_dead() == []
    assert await presence.list("room:project:1") == [info("claimed")]
    assert await presence.list("room:project:2") == [info("stalled")]


@pytest.fixture
async def other(
    presence: PresenceManager, redis_prefix: str, request: pytest.FixtureRequest
) -> AsyncIterator[PresenceManager]:
    """A second manager on the same store, playing a second surviving node (memory: the same manager, used
    concurrently)."""
    if not isinstance(presence, RedisPresence):
        yield presence
        return
    param = request.node.callspec.params["presence"]
    second = RedisPresence(REDIS_URL if param == "redis" else request.getfixturevalue("redis_shards").url, redis_prefix)
    yield second
    await second.close()


async def test_concurrent_claims_from_two_nodes_share_out_each_dead_entry_once(
    presence: PresenceManager, other: PresenceManager
) -> None:
    dead = [await leased(presence, f"dead-{n}", ttl_seconds=0.2) for n in range(3)]
    entries = [(room, info(f"{node}-{room}-{k}"), node) for node in dead for room in ROOMS for k in range(2)]
    for room, entry, node in entries:
        await presence.add(room, entry, node)
    for node in dead:
        await lapsed(presence, node)

    claims = await asyncio.gather(*(m.claim_dead() for m in (presence, other) * 4))

    claimed = [entry.client_id for claim in claims for _, entry in claim]
    assert sorted(claimed) == sorted(entry.client_id for _, entry, _ in entries)  # every one, none twice


async def test_a_batch_add_is_an_add_of_each_entry(presence: PresenceManager) -> None:
    node = await leased(presence)
    await presence.add(ROOMS[0], info(f"{ROOMS[0]}-a"), node)  # already there: an update
    batch = [(room, info(f"{room}-a")) for room in ROOMS] + [(room, info(f"{room}-b")) for room in ROOMS]

    assert await presence.add_many(batch, node) == [False] + [True] * (len(batch) - 1)
    assert await presence.add_many(batch, node) == [False] * len(batch)
    for room in ROOMS:
        assert sorted(i.client_id for i in await presence.list(room)) == [f"{room}-a", f"{room}-b"]
    assert await presence.add_many([], node) == []


async def test_a_batch_larger_than_one_store_call_adds_every_entry_and_a_claim_takes_them_all(
    presence: PresenceManager,
) -> None:
    # 1,500 entries in one room (more than one Redis call carries) and one entry in each of 1,000 others.
    batch = [("room:project:big", info(f"c{n}")) for n in range(1500)]
    batch += [(f"room:project:{n}", info(f"c{n}")) for n in range(1000)]
    node = await leased(presence, ttl_seconds=1)

    assert await presence.add_many(batch, node) == [True] * len(batch)
    assert len(await presence.list("room:project:big")) == 1500
    assert await presence.list("room:project:999") == [info("c999")]
    await lapsed(presence, node)

    assert len(await claimed_until(presence, len(batch))) == len(batch)
    assert await presence.list("room:project:big") == []


@pytest.mark.parametrize("presence", ["redis", "redis-cluster"], indirect=True)  # a memory store has no key to break
async def test_a_channel_the_store_cannot_add_to_fails_alone_in_its_batch(
    presence: PresenceManager, redis_prefix: str, request: pytest.FixtureRequest
) -> None:
    param = request.node.callspec.params["presence"]
    client = redis_client(REDIS_URL if param == "redis" else request.getfixturevalue("redis_shards").url)
    try:
        await client.set(f"{redis_prefix}{{{ROOMS[4]}}}:members", "not a hash")  # WRONGTYPE for this channel only
    finally:
        await client.aclose()
    batch = [(room, info(f"{room}-{n}")) for n in range(3) for room in ROOMS]

    results = await presence.add_many(batch, await leased(presence))

    for (room, _), result in zip(batch, results, strict=True):
        if room == ROOMS[4]:
            assert isinstance(result, BrokerUnavailable) and "WRONGTYPE" in str(result)
        else:
            assert result is True
    assert sorted(i.client_id for i in await presence.list(ROOMS[5])) == [f"{ROOMS[5]}-{n}" for n in range(3)]


@pytest.mark.parametrize("presence", ["redis", "redis-cluster"], indirect=True)
async def test_a_renew_takes_the_rooms_a_node_left_out_of_its_rooms_and_a_join_puts_them_back(
    presence: PresenceManager, redis_prefix: str, request: pytest.FixtureRequest
) -> None:
    param = request.node.callspec.params["presence"]
    client = redis_client(REDIS_URL if param == "redis" else request.getfixturevalue("redis_shards").url)
    node = await leased(presence)
    rooms_key = f"{redis_prefix}{{presence:{node}}}:rooms"
    try:
        for room in ROOMS[:3]:
            await presence.add(room, info(f"c-{room}"), node)
        await presence.remove(ROOMS[1], f"c-{ROOMS[1]}")
        assert sorted(await client.smembers(rooms_key)) == sorted(r.encode() for r in ROOMS[:3])  # until a renew

        assert await presence.renew(node, 30) is True

        assert sorted(await client.smembers(rooms_key)) == sorted(r.encode() for r in (ROOMS[0], ROOMS[2]))
        await presence.add(ROOMS[1], info(f"c-{ROOMS[1]}"), node)
        assert await client.sismember(rooms_key, ROOMS[1])
    finally:
        await client.aclose()
