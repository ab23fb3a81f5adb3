"""Contract tests every `PresenceManager` backend passes (memory, a real Redis, a real three-shard Redis Cluster)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from channels.backends.redis_presence import RedisPresence
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


async def test_concurrent_claims_share_out_each_expired_entry_once(
    presence: PresenceManager, redis_prefix: str, request: pytest.FixtureRequest
) -> None:
    # A second manager on the same store plays a second surviving node (memory: the same manager, concurrently).
    other = presence
    if isinstance(presence, RedisPresence):
        param = request.node.callspec.params["presence"]
        url = REDIS_URL if param == "redis" else request.getfixturevalue("redis_shards").url
        other = RedisPresence(url, redis_prefix)
    try:
        for n in range(20):
            await presence.add("project:1:staff", info(f"c{n}"), ttl_seconds=0.2)
        await asyncio.sleep(0.3)
        claims = await asyncio.gather(*(m.claim_expired("project:1:staff") for m in (presence, other) * 4))
        claimed = [i.client_id for claim in claims for i in claim]
        assert sorted(claimed) == sorted(f"c{n}" for n in range(20))  # every one, none twice
    finally:
        if other is not presence:
            await other.close()


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
