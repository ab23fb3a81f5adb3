"""Failed sign-ins, slowed progressively per account and per IP address.

Each key (``acct:<email>``, ``ip:<address>``) counts its failed sign-ins. The first ``free`` failures cost
nothing; the n-th failure past them locks the key for ``base * 2**(n-1)`` seconds, at most ``max_seconds``; a
failure-free ``forget_seconds`` forgets the count, and a successful sign-in forgets the account's (not the
address's: one good password must not buy an address more guesses at other accounts). While locked, an attempt
is refused before the password is checked, with 429 ``sign_in_locked`` and ``Retry-After`` (it does not count as
a failure, so waiting it out is never punished).

The per-account minute limit (``login_attempts_per_minute``, ``server/ratelimit.py``) still applies on top.

An attacker who knows an address can keep its account locked (at most ``max_seconds`` at a time): the price of
slowing guessing per account. Per-IP lockouts let everyone else in meanwhile. Counts live in Redis when nodes
share one (a lockout holds on every node), else in this process; the clock is injectable, so tests drive time.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

    from server.settings import Settings


@dataclass(frozen=True)
class Policy:
    free: int
    base_seconds: float
    max_seconds: float
    forget_seconds: float

    def lockout(self, failures: int) -> float:
        """Seconds a key is locked after its ``failures``-th failure (0 while within the free ones)."""
        over = failures - self.free
        if over <= 0:
            return 0.0
        return min(self.max_seconds, self.base_seconds * 2.0 ** min(over - 1, 60))


class FailureStore(Protocol):
    async def locked_until(self, key: str) -> float:
        """When ``key``'s lockout ends (a time of the throttle's clock; 0 if never locked)."""
        ...

    async def fail(self, key: str, now: float, policy: Policy) -> float:
        """Count one failure of ``key`` at ``now``, forgetting older ones idle for ``forget_seconds``; atomic per
        key across every node sharing the store. Returns when its lockout ends (``now`` or earlier: none)."""
        ...

    async def forget(self, key: str) -> None: ...


class MemoryFailureStore:
    """One process's counts; bounded by dropping the stalest keys once ``max_keys`` are held."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._keys: dict[str, tuple[int, float, float]] = {}  # failures, last failure, locked until
        self._max_keys = max_keys

    async def locked_until(self, key: str) -> float:
        entry = self._keys.get(key)
        return entry[2] if entry is not None else 0.0

    async def fail(self, key: str, now: float, policy: Policy) -> float:
        failures, last, _ = self._keys.pop(key, (0, now, 0.0))
        if now - last > policy.forget_seconds:
            failures = 0
        failures += 1
        until = now + policy.lockout(failures)
        if len(self._keys) >= self._max_keys:
            for stale in sorted(self._keys, key=lambda k: self._keys[k][1])[: self._max_keys // 10]:
                del self._keys[stale]
        self._keys[key] = (failures, now, until)
        return until

    async def forget(self, key: str) -> None:
        self._keys.pop(key, None)


_FAIL = """
local failures = tonumber(redis.call('hget', KEYS[1], 'f') or '0')
local last = tonumber(redis.call('hget', KEYS[1], 'l') or ARGV[1])
local now = tonumber(ARGV[1])
if now - last > tonumber(ARGV[2]) then failures = 0 end
failures = failures + 1
local over = failures - tonumber(ARGV[3])
local locked = 0
if over > 0 then locked = math.min(tonumber(ARGV[5]), tonumber(ARGV[4]) * 2 ^ math.min(over - 1, 60)) end
local ends = now + locked
redis.call('hset', KEYS[1], 'f', failures, 'l', ARGV[1], 'u', tostring(ends))
redis.call('expire', KEYS[1], math.ceil(tonumber(ARGV[2]) + tonumber(ARGV[5])) + 1)
return tostring(ends)
"""


class RedisFailureStore:
    """Counts every node shares: one hash per key, updated by one script per failure. While Redis cannot be
    reached each node counts on its own (as `server.ratelimit.RedisRateLimiter` does), so sign-in keeps working."""

    def __init__(self, redis: Redis | RedisCluster, prefix: str) -> None:
        from redis.exceptions import ConnectionError, TimeoutError

        self._redis = redis
        self._prefix = prefix + "signin:"
        self._fail = redis.register_script(_FAIL)
        # Unreachable only: a script error is a bug and must not hide behind per-node counting.
        self._unavailable = (ConnectionError, TimeoutError, OSError)
        self._fallback = MemoryFailureStore()

    async def locked_until(self, key: str) -> float:
        try:
            raw = await self._redis.hget(self._prefix + key, "u")
        except self._unavailable:
            return await self._fallback.locked_until(key)
        return float(raw) if raw is not None else 0.0

    async def fail(self, key: str, now: float, policy: Policy) -> float:
        args: list[str | float | int] = [repr(now), policy.forget_seconds, policy.free]
        args += [policy.base_seconds, policy.max_seconds]
        try:
            return float(await self._fail(keys=[self._prefix + key], args=args))
        except self._unavailable:
            return await self._fallback.fail(key, now, policy)

    async def forget(self, key: str) -> None:
        await self._fallback.forget(key)
        # Unreachable: the lockout ends by itself, and the count is forgotten after forget_seconds.
        with contextlib.suppress(*self._unavailable):
            await self._redis.delete(self._prefix + key)


class SignInThrottle:
    """Progressive delays for failed sign-ins, per account and per IP address (see the module's docstring)."""

    def __init__(
        self,
        store: FailureStore,
        account: Policy,
        ip: Policy,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.account = account
        self.ip = ip
        self.clock = clock

    async def wait(self, email: str, ip: str) -> int:
        """Whole seconds until ``email`` may try again from ``ip`` (0: now)."""
        now = self.clock()
        until = max(await self.store.locked_until(f"acct:{email}"), await self.store.locked_until(f"ip:{ip}"))
        return math.ceil(until - now) if until > now else 0

    async def failed(self, email: str, ip: str) -> None:
        """Count a failed sign-in of ``email`` from ``ip``."""
        now = self.clock()
        await self.store.fail(f"acct:{email}", now, self.account)
        await self.store.fail(f"ip:{ip}", now, self.ip)

    async def succeeded(self, email: str) -> None:
        """Forget ``email``'s failures (its address's stay counted)."""
        await self.store.forget(f"acct:{email}")


def make_throttle(
    settings: Settings, redis: Redis | RedisCluster | None = None, clock: Callable[[], float] = time.time
) -> SignInThrottle:
    """The throttle ``settings`` describe, over Redis when given (shared by the nodes), else in memory."""
    base, most, forget = (
        settings.signin_lockout_base_seconds,
        settings.signin_lockout_max_seconds,
        float(settings.signin_forget_seconds),
    )
    store: FailureStore = RedisFailureStore(redis, settings.redis_prefix) if redis is not None else MemoryFailureStore()
    return SignInThrottle(
        store,
        Policy(settings.signin_free_failures_per_account, base, most, forget),
        Policy(settings.signin_free_failures_per_ip, base, most, forget),
        clock,
    )
