from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from channels.backends.redis_cluster import redis_client
from server.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter


@pytest.fixture(params=["memory", "redis", "redis-cluster"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    if request.param == "memory":
        yield MemoryRateLimiter()
        return
    url = "redis://127.0.0.1:6379/0" if request.param == "redis" else request.getfixturevalue("redis_shards").url
    redis = redis_client(url)
    prefix = f"test:{uuid.uuid4().hex}:"
    yield RedisRateLimiter(redis, prefix)
    if isinstance(redis, Redis):  # the cluster is the session's own; only the shared Redis needs cleaning
        async for key in redis.scan_iter(match=f"{prefix}*"):
            await redis.delete(key)
    await redis.aclose()


async def test_allows_up_to_the_limit_then_refuses(limiter: RateLimiter) -> None:
    results = [await limiter.hit("k", 5, 60) for _ in range(7)]
    assert results == [True] * 5 + [False] * 2


async def test_keys_are_independent_and_reset(limiter: RateLimiter) -> None:
    for _ in range(3):
        await limiter.hit("a", 2, 60)
    assert await limiter.hit("b", 2, 60)
    assert not await limiter.hit("a", 2, 60)
    await limiter.reset("a")
    assert await limiter.hit("a", 2, 60)


async def test_memory_limiter_stays_bounded() -> None:
    limiter = MemoryRateLimiter(max_keys=100)
    for i in range(1000):
        await limiter.hit(f"key{i}", 5, 60)
    assert len(limiter._counts) <= 100
