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


def info(client_id: str, user_id: str = "7", **data: object) -> PresenceInfo:
    return PresenceInfo(client_id=client_id, user_id=user_id, name=f"User {user_id}", role="staff", data=dict(data))


async def test_added_entries_are_listed_with_their_data(presence: PresenceManager) -> None:
    await presence.add("project:1:staff", info("c1", viewing="task:4"), ttl_seconds=30)
    await presence.add("project:1:staff", info("c2", user_id="8"), ttl_seconds=30)
    await presence.add("project:2:staff", info("c3"), ttl_seconds=30)

    listed = sorted(await presence.list("project:1:staff"), key=lambda i: i.client_id)

    assert listed == [info("c1", viewing="task:4"), info("c2", user_id="8")]


async def test_add_again_replaces_the_entry(presence: PresenceManager) -> None:
    await presence.add("project:1:staff", info("c1", typing=False), ttl_seconds=30)
    await presence.add("project:1:staff", info("c1", typing=True), ttl_seconds=30)

    assert await presence.list("project:1:staff") == [info("c1", typing=True)]


async def test_removed_entries_are_gone(presence: PresenceManager) -> None:
    await presence.add("project:1:staff", info("c1"), ttl_seconds=30)
    await presence.add("project:1:staff", info("c2"), ttl_seconds=30)

    await presence.remove("project:1:staff", "c1")
    await presence.remove("project:1:staff", "missing")

    assert [i.client_id for i in await presence.list("project:1:staff")] == ["c2"]


async def test_entries_expire_unless_refreshed(presence: PresenceManager) -> None:
    await presence.add("project:1:staff", info("dead-node-client"), ttl_seconds=0.5)
    await presence.add("project:1:staff", info("live-client"), ttl_seconds=0.5)

    for _ in range(4):  # heartbeats for 0.8 s, only for the live client
        await asyncio.sleep(0.2)
        await presence.add("project:1:staff", info("live-client"), ttl_seconds=0.5)

    assert [i.client_id for i in await presence.list("project:1:staff")] == ["live-client"]
    await asyncio.sleep(0.7)
    assert await presence.list("project:1:staff") == []


async def test_unknown_channel_lists_nothing(presence: PresenceManager) -> None:
    assert await presence.list("project:404:staff") == []


async def test_an_expired_entry_is_claimed_once(presence: PresenceManager) -> None:
    await presence.add("project:1:staff", info("dead-node-client"), ttl_seconds=0.3)
    await presence.add("project:1:staff", info("live-client"), ttl_seconds=30)
    assert await presence.claim_expired("project:1:staff") == []  # nothing expired yet

    await asyncio.sleep(0.4)
    assert [i.client_id for i in await presence.list("project:1:staff")] == ["live-client"]  # listing claims nothing

    assert await presence.claim_expired("project:1:staff") == [info("dead-node-client")]
    assert await presence.claim_expired("project:1:staff") == []
    assert await presence.claim_expired("project:2:staff") == []


async def test_an_entry_added_later_with_a_shorter_ttl_expires_on_its_own_time(presence: PresenceManager) -> None:
    # The memory store skips its scan until the earliest expiry it knows of: a later, shorter entry moves that.
    await presence.add("project:1:staff", info("long-a"), ttl_seconds=30)
    await presence.add("project:1:staff", info("long-b"), ttl_seconds=30)
    await presence.remove("project:1:staff", "long-a")
    await presence.add("project:1:staff", info("short"), ttl_seconds=0.3)

    await asyncio.sleep(0.4)

    assert [i.client_id for i in await presence.list("project:1:staff")] == ["long-b"]
    assert await presence.claim_expired("project:1:staff") == [info("short")]
    assert await presence.claim_expired("project:1:staff") == []


async def test_memory_forgets_an_unclaimed_expired_entry_after_its_retention() -> None:
    presence = MemoryPresence(retention_seconds=0.2)
    await presence.add("project:1:staff", info("gone"), ttl_seconds=0.1)
    await presence.add("project:1:staff", info("stays"), ttl_seconds=30)
    await asyncio.sleep(0.15)
    assert [i.client_id for i in await presence.list("project:1:staff")] == ["stays"]  # set aside, not claimed

    await asyncio.sleep(0.3)

    assert await presence.claim_expired("project:1:staff") == []
    await presence.remove("project:1:staff", "stays")
    assert await presence.list("project:1:staff") == []


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


async def test_concurrent_claims_share_out_each_expired_entry_once(
    presence: PresenceManager, other: PresenceManager
) -> None:
    for n in range(20):
        await presence.add("project:1:staff", info(f"c{n}"), ttl_seconds=0.2)
    await asyncio.sleep(0.3)
    claims = await asyncio.gather(*(m.claim_expired("project:1:staff") for m in (presence, other) * 4))
    claimed = [i.client_id for claim in claims for i in claim]
    assert sorted(claimed) == sorted(f"c{n}" for n in range(20))  # every one, none twice


async def test_a_late_heartbeat_takes_an_unclaimed_entry_back_and_a_claimed_one_is_new(
    presence: PresenceManager,
) -> None:
    assert await presence.add("project:1:staff", info("c1"), ttl_seconds=0.2) is True  # a join
    assert await presence.add("project:1:staff", info("c1"), ttl_seconds=0.2) is False  # a heartbeat
    await asyncio.sleep(0.3)
    # Expired but not claimed: nobody was told it left, so it is a refresh, and there is nothing left to claim.
    assert await presence.add("project:1:staff", info("c1"), ttl_seconds=0.2) is False
    assert await presence.claim_expired("project:1:staff") == []
    await asyncio.sleep(0.3)
    assert await presence.claim_expired("project:1:staff") == [info("c1")]  # announced as left...
    assert await presence.add("project:1:staff", info("c1"), ttl_seconds=30) is True  # ... so back is a join
    assert await presence.list("project:1:staff") == [info("c1")]


async def test_a_removed_entry_is_never_claimed(presence: PresenceManager) -> None:
    await presence.add("project:1:staff", info("c1"), ttl_seconds=0.2)
    await presence.add("project:1:staff", info("c2"), ttl_seconds=0.2)
    await asyncio.sleep(0.3)
    assert await presence.list("project:1:staff") == []  # both expired, set aside
    await presence.remove("project:1:staff", "c1")  # its node said goodbye itself, late
    assert await presence.claim_expired("project:1:staff") == [info("c2")]


async def test_a_refresh_is_an_add_that_also_claims_what_expired(presence: PresenceManager) -> None:
    await presence.add("project:1:staff", info("dead-node-client"), ttl_seconds=0.2)
    assert await presence.refresh("project:1:staff", info("live-client"), ttl_seconds=30) == (True, [])
    await asyncio.sleep(0.3)

    assert await presence.refresh("project:1:staff", info("live-client"), ttl_seconds=30) == (
        False,
        [info("dead-node-client")],
    )
    assert await presence.refresh("project:1:staff", info("live-client"), ttl_seconds=30) == (False, [])
    assert await presence.list("project:1:staff") == [info("live-client")]


async def gone_from_list(presence: PresenceManager, channel: str, client_id: str, within: float = 5.0) -> None:
    """Wait (with a deadline) until ``client_id``'s entry expired: no longer listed (listing claims nothing)."""
    async with asyncio.timeout(within):
        while client_id in [i.client_id for i in await presence.list(channel)]:
            await asyncio.sleep(0.02)


# Channels that land on every shard of the three-shard cluster (30 hash tags spread over 16,384 slots).
ROOMS = [f"room:project:{n}" for n in range(30)]


async def test_a_batch_refresh_is_a_refresh_of_each_entry_and_claims_each_channel_once(
    presence: PresenceManager,
) -> None:
    for room in ROOMS[:3]:  # a dead node's entries on three channels
        await presence.add(room, info(f"dead-{room}"), ttl_seconds=0.2)
    batch = [(room, info(f"{room}-a")) for room in ROOMS] + [(room, info(f"{room}-b")) for room in ROOMS]

    first = await presence.refresh_many(batch, ttl_seconds=30)
    assert first == [(True, [])] * len(batch)  # every entry new, nothing expired yet
    for room in ROOMS[:3]:
        await gone_from_list(presence, room, f"dead-{room}")

    second = await presence.refresh_many(batch, ttl_seconds=30)

    # The dead entries come back once each, with their channel's first entry; every entry is a refresh.
    claims = {room: [] for room in ROOMS} | {room: [info(f"dead-{room}")] for room in ROOMS[:3]}
    assert second == [(False, claims[room]) for room in ROOMS] + [(False, [])] * len(ROOMS)
    assert await presence.refresh_many(batch, ttl_seconds=30) == [(False, [])] * len(batch)
    for room in ROOMS:
        assert sorted(i.client_id for i in await presence.list(room)) == [f"{room}-a", f"{room}-b"]
    assert await presence.refresh_many([], ttl_seconds=30) == []


async def test_a_batch_keeps_refreshed_entries_alive_and_lets_the_others_expire(presence: PresenceManager) -> None:
    live = [(room, info(f"live-{room}")) for room in ROOMS]
    await presence.refresh_many(live, ttl_seconds=3)
    await presence.refresh_many([(room, info(f"dead-{room}")) for room in ROOMS], ttl_seconds=0.3)

    claimed: list[PresenceInfo] = []
    async with asyncio.timeout(10):  # heartbeats for the live entries only, until every dead one was claimed
        while len(claimed) < len(ROOMS):
            results = await presence.refresh_many(live, ttl_seconds=3)
            assert all(not isinstance(r, Exception) and r[0] is False for r in results)  # never lapsed, never new
            claimed += [gone for r in results if not isinstance(r, Exception) for gone in r[1]]
            await asyncio.sleep(0.05)

    assert sorted(i.client_id for i in claimed) == sorted(f"dead-{room}" for room in ROOMS)  # once each
    for room in ROOMS:
        assert await presence.list(room) == [info(f"live-{room}")]


async def test_a_late_batch_takes_its_own_expired_entries_back_and_rejoins_claimed_ones(
    presence: PresenceManager,
) -> None:
    await presence.add("room:project:1", info("stalled"), ttl_seconds=0.2)  # expires, nobody claims it yet
    await presence.add("room:project:2", info("claimed"), ttl_seconds=0.2)  # expires, and is announced left
    await presence.add("room:project:1", info("dead"), ttl_seconds=0.2)
    for room, client in (("room:project:1", "stalled"), ("room:project:2", "claimed"), ("room:project:1", "dead")):
        await gone_from_list(presence, room, client)
    assert await presence.claim_expired("room:project:2") == [info("claimed")]

    results = await presence.refresh_many(
        [("room:project:1", info("stalled")), ("room:project:2", info("claimed"))], ttl_seconds=30
    )

    # "stalled" was never said to have left: a refresh, not claimed. "claimed" was: joined again.
    assert results == [(False, [info("dead")]), (True, [])]
    assert await presence.list("room:project:1") == [info("stalled")]
    assert await presence.list("room:project:2") == [info("claimed")]


async def test_a_batch_larger_than_one_store_call_refreshes_every_entry(presence: PresenceManager) -> None:
    # 1,500 entries in one room (more than one Redis call carries) and one entry in each of 1,000 others.
    batch = [("room:project:big", info(f"c{n}")) for n in range(1500)]
    batch += [(f"room:project:{n}", info(f"c{n}")) for n in range(1000)]

    assert await presence.refresh_many(batch, ttl_seconds=30) == [(True, [])] * len(batch)
    assert await presence.refresh_many(batch, ttl_seconds=30) == [(False, [])] * len(batch)
    assert len(await presence.list("room:project:big")) == 1500
    assert await presence.list("room:project:999") == [info("c999")]


async def test_concurrent_batches_from_two_nodes_claim_each_expired_entry_once(
    presence: PresenceManager, other: PresenceManager
) -> None:
    dead = [(room, info(f"dead{n}-{room}")) for room in ROOMS[:5] for n in range(4)]
    await presence.refresh_many(dead, ttl_seconds=0.2)
    for room, entry in dead:
        await gone_from_list(presence, room, entry.client_id)
    node_entries = [[(room, info(f"node{n}-{room}")) for room in ROOMS[:5]] for n in range(8)]
    managers = (presence, other) * 4

    results = await asyncio.gather(*(m.refresh_many(e, 30) for m, e in zip(managers, node_entries, strict=True)))

    refreshed = [r for result in results for r in result if not isinstance(r, Exception)]
    claimed = [gone.client_id for r in refreshed for gone in r[1]]
    assert sorted(claimed) == sorted(entry.client_id for _, entry in dead)  # every one, none twice


@pytest.mark.parametrize("presence", ["redis", "redis-cluster"], indirect=True)  # a memory store has no key to break
async def test_a_channel_the_store_cannot_refresh_fails_alone_in_its_batch(
    presence: PresenceManager, redis_prefix: str, request: pytest.FixtureRequest
) -> None:
    param = request.node.callspec.params["presence"]
    client = redis_client(REDIS_URL if param == "redis" else request.getfixturevalue("redis_shards").url)
    try:
        await client.set(f"{redis_prefix}{{{ROOMS[4]}}}:presence", "not a hash")  # WRONGTYPE for this channel only
    finally:
        await client.aclose()
    batch = [(room, info(f"{room}-{n}")) for n in range(3) for room in ROOMS]

    results = await presence.refresh_many(batch, ttl_seconds=30)

    for (room, _), result in zip(batch, results, strict=True):
        if room == ROOMS[4]:
            assert isinstance(result, BrokerUnavailable) and "WRONGTYPE" in str(result)
        else:
            assert result == (True, [])
    assert sorted(i.client_id for i in await presence.list(ROOMS[5])) == [f"{ROOMS[5]}-{n}" for n in range(3)]
