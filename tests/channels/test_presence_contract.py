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
