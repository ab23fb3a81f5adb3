from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from starlette.testclient import TestClient

from channels.backends.redis_cluster import redis_client
from server.app import create_app
from server.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from server.settings import Settings
from tests.conftest import REDIS, bearer, make_settings
from tests.nodes import RedisServer
from tests.workspace import Workspace


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


async def test_wait_says_how_long_until_there_is_room(limiter: RateLimiter) -> None:
    assert [await limiter.wait("w", 3, 60) for _ in range(3)] == [0.0, 0.0, 0.0]
    over = await limiter.wait("w", 3, 60)
    # Four attempts in the current window: room returns in the next window, within two windows at most.
    assert 0.0 < over <= 120.0


@pytest.fixture(params=["memory", "redis"])
def limited_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings with small REST limits, on the memory limiter or the Redis one (shared by every node)."""
    prefix = f"test:{uuid.uuid4().hex}:"
    yield make_settings(
        tmp_path,
        redis_url=REDIS if request.param == "redis" else None,
        redis_prefix=prefix,
        api_requests_per_minute_per_ip=1000,
        api_requests_per_minute_per_user=12,
        api_writes_per_minute_per_user=4,
    )
    if request.param == "redis":
        cleanup = SyncRedis.from_url(REDIS)
        for key in cleanup.scan_iter(match=f"{prefix}*"):
            cleanup.delete(key)
        cleanup.close()


def assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"] == "rate_limited"
    assert 1 <= int(response.headers["retry-after"]) <= 120
    assert response.headers["cache-control"] == "no-store"


def test_writes_and_requests_are_limited_per_user(limited_settings: Settings, workspace: Workspace) -> None:
    task = f"/api/tasks/{workspace.ids['px_shared_task']}"
    staff, owner = bearer(workspace, "staff"), bearer(workspace, "owner")
    with TestClient(create_app(limited_settings), base_url="http://testserver") as client:
        for i in range(4):
            assert client.patch(task, json={"title": f"write {i}"}, headers=staff).status_code == 200
        assert_limited(client.patch(task, json={"title": "one too many"}, headers=staff))
        assert client.get(task, headers=staff).json()["title"] == "write 3"  # the refused write did nothing
        # Another user is not held back by this one.
        assert client.patch(task, json={"title": "owner writes"}, headers=owner).status_code == 200
        # Reads count against the user's overall limit (12 a minute): 6 requests so far.
        for _ in range(6):
            assert client.get(task, headers=staff).status_code == 200
        assert_limited(client.get(task, headers=staff))


def test_requests_are_limited_per_ip_signed_in_or_not(tmp_path: Path, workspace: Workspace) -> None:
    settings = make_settings(tmp_path, api_requests_per_minute_per_ip=5)
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        for _ in range(3):
            assert client.get("/api/me").status_code == 401
        for _ in range(2):
            assert client.get("/api/me", headers=bearer(workspace, "owner")).status_code == 200
        assert_limited(client.post("/api/auth/login", json={"email": "x@example.test", "password": "whatever it is"}))
        assert_limited(client.get("/api/me", headers=bearer(workspace, "customer")))
        # Pages and health checks are not API requests.
        assert client.get("/healthz").status_code == 200


async def test_redis_limiter_counts_per_node_while_redis_is_down(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    redis = Redis.from_url(server.url, socket_timeout=1.0, socket_connect_timeout=1.0)
    limiter = RedisRateLimiter(redis, "test:")
    try:
        assert await limiter.hit("k", 3, 60)
        server.stop()
        # No error reaches the caller, and the limit still holds (counted on this node).
        async with asyncio.timeout(10):
            assert [await limiter.hit("k", 3, 60) for _ in range(4)] == [True, True, True, False]
        server.start()
        assert await limiter.hit("fresh", 3, 60)
    finally:
        await limiter.close()
        server.stop()


def test_sign_in_attempts_are_limited_per_ip_across_accounts(tmp_path: Path, workspace: Workspace) -> None:
    # Per account 2 a minute, so per address 5 x 2 = 10: spraying many accounts from one address is stopped too.
    settings = make_settings(tmp_path, login_attempts_per_minute=2)
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        answers = [
            client.post("/api/auth/login", json={"email": f"person{i}@example.test", "password": "a wrong guess"})
            for i in range(11)
        ]
    assert [a.status_code for a in answers] == [401] * 10 + [429]
    assert answers[-1].json()["error"] == "rate_limited"
