"""Sliding-window rate limits, kept in memory on one node or in Redis when several nodes share the work.

The window is the classic two-counter approximation: attempts in the current fixed window plus the previous
window's count weighted by how much of it still overlaps the sliding window. Bursts that straddle a window
boundary are therefore counted, unlike plain fixed windows.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

log = logging.getLogger(__name__)


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window_seconds: int) -> bool:
        """Count one attempt under ``key``.

        Returns:
            True while at most ``limit`` attempts fall in the sliding window, False once over it.
        """
        ...

    async def wait(self, key: str, limit: int, window_seconds: int) -> float:
        """Count one attempt under ``key``, like `hit`.

        Returns:
            0.0 while at most ``limit`` attempts fall in the sliding window; once over it, the seconds until the
            window has room again if no further attempt is made (what ``Retry-After`` tells the client).
        """
        ...

    async def reset(self, key: str) -> None:
        """Forget the attempts counted under ``key``."""
        ...

    async def close(self) -> None:
        """Release connections (at shutdown)."""
        ...


def _estimate(previous: int, current: int, now: float, window_seconds: int) -> float:
    elapsed = (now % window_seconds) / window_seconds
    return previous * (1.0 - elapsed) + current


def _wait(previous: int, current: int, now: float, window_seconds: int, limit: int) -> float:
    if _estimate(previous, current, now, window_seconds) <= limit:
        return 0.0
    elapsed = (now % window_seconds) / window_seconds
    if current <= limit:
        # Room comes back within this window, as the previous window's weight slides out.
        return max(0.0, (1.0 - (limit - current) / previous) - elapsed) * window_seconds
    # This window alone is over the limit: wait for the next one, until its share of this one has slid out.
    return ((1.0 - elapsed) + (1.0 - limit / current)) * window_seconds


class MemoryRateLimiter:
    """Per-process counters; memory is bounded by dropping keys whose windows have passed."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._counts: dict[str, dict[int, int]] = {}
        self._max_keys = max_keys

    async def hit(self, key: str, limit: int, window_seconds: int) -> bool:
        return await self.wait(key, limit, window_seconds) == 0.0

    async def wait(self, key: str, limit: int, window_seconds: int) -> float:
        now = time.time()
        window = int(now // window_seconds)
        if key not in self._counts and len(self._counts) >= self._max_keys:
            self._prune(window)
        counts = self._counts.setdefault(key, {})
        for old in [w for w in counts if w < window - 1]:
            del counts[old]
        counts[window] = counts.get(window, 0) + 1
        return _wait(counts.get(window - 1, 0), counts[window], now, window_seconds, limit)

    def _prune(self, window: int) -> None:
        for stale in [k for k, c in self._counts.items() if max(c, default=0) < window - 1]:
            del self._counts[stale]
        if len(self._counts) >= self._max_keys:
            # Still full of live keys: shed the oldest rather than grow.
            for old in list(self._counts)[: self._max_keys // 10]:
                del self._counts[old]

    async def reset(self, key: str) -> None:
        self._counts.pop(key, None)

    async def close(self) -> None:
        self._counts.clear()


_HIT = """
local current = redis.call('hincrby', KEYS[1], ARGV[1], 1)
local previous = redis.call('hget', KEYS[1], ARGV[2])
for _, window in ipairs(redis.call('hkeys', KEYS[1])) do
  if tonumber(window) < tonumber(ARGV[2]) then redis.call('hdel', KEYS[1], window) end
end
redis.call('expire', KEYS[1], ARGV[3])
return {current, previous or 0}
"""


class RedisRateLimiter:
    """Counters shared by every node: one script per attempt on one hash per key (field = window number), so a
    key's windows share one Redis Cluster slot and `reset` is one DEL.

    While Redis cannot be reached, each node counts on its own (a `MemoryRateLimiter`) rather than failing the
    request or letting everything through: limits then hold per node, and the API keeps answering through a Redis
    outage like the rest of the node does.
    """

    def __init__(self, redis: Redis | RedisCluster, prefix: str) -> None:
        from redis.exceptions import RedisError

        self._redis = redis
        self._prefix = prefix + "rl:"
        self._hit = redis.register_script(_HIT)
        self._unavailable = RedisError
        self._fallback = MemoryRateLimiter()
        self._warned_at = 0.0

    async def hit(self, key: str, limit: int, window_seconds: int) -> bool:
        return await self.wait(key, limit, window_seconds) == 0.0

    async def wait(self, key: str, limit: int, window_seconds: int) -> float:
        now = time.time()
        window = int(now // window_seconds)
        try:
            count, previous = await self._hit(
                keys=[self._prefix + key], args=[window, window - 1, window_seconds * 2 + 1]
            )
        except (self._unavailable, OSError) as exc:
            self._warn(exc)
            return await self._fallback.wait(key, limit, window_seconds)
        return _wait(int(previous), int(count), now, window_seconds, limit)

    async def reset(self, key: str) -> None:
        await self._fallback.reset(key)
        try:
            await self._redis.delete(self._prefix + key)
        except (self._unavailable, OSError) as exc:
            self._warn(exc)

    def _warn(self, exc: BaseException) -> None:
        if time.monotonic() - self._warned_at > 10.0:  # once per outage-ish, not once per request
            self._warned_at = time.monotonic()
            log.warning("rate limits counted per node: Redis unavailable (%s)", type(exc).__name__)

    async def close(self) -> None:
        await self._redis.aclose()
