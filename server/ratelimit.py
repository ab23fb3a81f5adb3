"""Fixed-window rate limits, kept in memory on one node or in Redis when several nodes share the work."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from redis.asyncio import Redis


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window_seconds: int) -> bool:
        """Count one attempt under ``key``.

        Returns:
            True while at most ``limit`` attempts were made in the current window, False once over it.
        """
        ...

    async def reset(self, key: str) -> None:
        """Forget the attempts counted under ``key``."""
        ...


class MemoryRateLimiter:
    """Per-process counters; memory is bounded by pruning windows that have ended."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._counts: dict[str, tuple[int, int]] = {}
        self._max_keys = max_keys

    async def hit(self, key: str, limit: int, window_seconds: int) -> bool:
        window = int(time.monotonic() // window_seconds)
        start, count = self._counts.get(key, (window, 0))
        if start != window:
            start, count = window, 0
        if len(self._counts) >= self._max_keys and key not in self._counts:
            self._prune(window)
        self._counts[key] = (start, count + 1)
        return count + 1 <= limit

    def _prune(self, window: int) -> None:
        for stale in [k for k, (w, _) in self._counts.items() if w != window]:
            del self._counts[stale]
        if len(self._counts) >= self._max_keys:
            # Still full within one window: shed the oldest keys rather than grow.
            for old in list(self._counts)[: self._max_keys // 10]:
                del self._counts[old]

    async def reset(self, key: str) -> None:
        self._counts.pop(key, None)


class RedisRateLimiter:
    """Counters shared by every node: INCR plus an expiry per window."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix + "rl:"

    async def hit(self, key: str, limit: int, window_seconds: int) -> bool:
        window = int(time.time() // window_seconds)
        name = f"{self._prefix}{key}:{window}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, window_seconds + 1)
            count, _ = await pipe.execute()
        return int(count) <= limit

    async def reset(self, key: str) -> None:
        async for name in self._redis.scan_iter(match=f"{self._prefix}{key}:*", count=100):
            await self._redis.delete(name)
