"""`RedisPresence`: presence shared by every node through Redis.

Per channel ``c`` (prefix ``P``), as centrifuge lays it out::

    P{c}:presence        HASH  client_id -> JSON of the PresenceInfo
    P{c}:presence:exp    ZSET  client_id scored by expiry (Redis ms)

`add` and `list` are Lua scripts that first drop members whose expiry passed (from both keys), so an expired
entry is never returned; both keys get a TTL of the longest entry ttl, so a channel whose every node died
disappears completely. Time comes from Redis, so nodes with skewed clocks agree on expiry. `remove` is a third
script. Both keys carry the channel's hash tag ``{c}``, so on a Redis Cluster every script touches one slot (the
slot of the channel's history and pub/sub channel).
"""

from __future__ import annotations

import builtins
import json
import math
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from channels.backends.redis_cluster import redis_client
from channels.broker import BrokerUnavailable
from channels.presence import PresenceInfo

_CLEAN = """
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('zrangebyscore', KEYS[2], '-inf', now)
if #expired > 0 then
  redis.call('hdel', KEYS[1], unpack(expired))
  redis.call('zremrangebyscore', KEYS[2], '-inf', now)
end
"""

_ADD = (
    _CLEAN
    + """
local ttl = tonumber(ARGV[3])
redis.call('zadd', KEYS[2], string.format('%d', now + ttl), ARGV[1])
redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
for i = 1, 2 do
  if redis.call('pttl', KEYS[i]) < ttl then redis.call('pexpire', KEYS[i], ttl) end
end
return 1
"""
)

_REMOVE = """
redis.call('hdel', KEYS[1], ARGV[1])
redis.call('zrem', KEYS[2], ARGV[1])
return 1
"""

_LIST = (
    _CLEAN
    + """
return redis.call('hvals', KEYS[1])
"""
)


class RedisPresence:
    """A `PresenceManager` over Redis. Guarantees as in `channels.presence.PresenceManager`."""

    def __init__(self, redis: str | Redis | RedisCluster, prefix: str = "tandem:") -> None:
        """Args:
        redis: a ``redis://`` or ``redis+cluster://`` URL (the client is then owned and closed here) or a shared
            client.
        prefix: prepended to every key (must not contain ``{``).
        """
        if "{" in prefix:
            raise ValueError("prefix must not contain '{'")
        self._owned = isinstance(redis, str)
        self._redis = redis_client(redis) if isinstance(redis, str) else redis
        self._prefix = prefix
        self._add = self._redis.register_script(_ADD)
        self._remove = self._redis.register_script(_REMOVE)
        self._list = self._redis.register_script(_LIST)

    def _keys(self, channel: str) -> list[str]:
        tag = f"{self._prefix}{{{channel}}}"
        return [f"{tag}:presence", f"{tag}:presence:exp"]

    async def add(self, channel: str, info: PresenceInfo, ttl_seconds: float) -> None:
        encoded = json.dumps(info.to_json(), separators=(",", ":"))
        ttl_ms = max(1, math.ceil(ttl_seconds * 1000))
        try:
            await self._add(keys=self._keys(channel), args=[info.client_id, encoded, ttl_ms])
        except RedisError as exc:
            raise BrokerUnavailable(f"presence add on {channel!r} failed: {exc}") from exc

    async def remove(self, channel: str, client_id: str) -> None:
        try:
            await self._remove(keys=self._keys(channel), args=[client_id])
        except RedisError as exc:
            raise BrokerUnavailable(f"presence remove on {channel!r} failed: {exc}") from exc

    async def list(self, channel: str) -> builtins.list[PresenceInfo]:
        try:
            values: builtins.list[Any] = await self._list(keys=self._keys(channel), args=[])
        except RedisError as exc:
            raise BrokerUnavailable(f"presence list on {channel!r} failed: {exc}") from exc
        return [PresenceInfo.from_json(json.loads(value)) for value in values]

    async def close(self) -> None:
        if self._owned:
            await self._redis.aclose()
