"""`RedisPresence`: presence shared by every node through Redis.

Per channel ``c`` (prefix ``P``), as centrifuge lays it out, plus the expired entries not yet announced::

    P{c}:presence        HASH  client_id -> JSON of the PresenceInfo
    P{c}:presence:exp    ZSET  client_id scored by expiry (Redis ms)
    P{c}:presence:gone   HASH  client_id -> JSON of an entry that expired and was not claimed yet

Every script first moves members whose expiry passed from the first two keys into ``gone`` (``_SWEEP``), so an
expired entry is never listed, and is kept for `RedisPresence.claim_expired`, which returns ``gone`` and deletes it
in one script: with several nodes claiming at once, each entry goes to exactly one of them. `add` takes an entry
back out of ``gone`` (it was only late, nobody was told it left) and says whether it was new; `remove` deletes it
from all three. ``presence`` and ``exp`` get a TTL of the longest entry ttl plus ``retention`` (an entry that
expired is still there to be moved aside and claimed), so a channel whose every node died disappears completely
after that; ``gone`` is kept for ``retention`` after the last expiry moved into it. Time comes from
Redis, so nodes with skewed clocks agree on expiry. All keys carry the channel's hash tag ``{c}``, so on a Redis
Cluster every script touches one slot (the slot of the channel's history and pub/sub channel).
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

# KEYS: presence, exp, gone. ARGV[1]: how long gone entries are kept (ms); the scripts' own arguments follow.
_SWEEP = """
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('zrangebyscore', KEYS[2], '-inf', now)
if #expired > 0 then
  local infos = redis.call('hmget', KEYS[1], unpack(expired))
  for i = 1, #expired do
    if infos[i] then redis.call('hset', KEYS[3], expired[i], infos[i]) end
  end
  redis.call('hdel', KEYS[1], unpack(expired))
  redis.call('zremrangebyscore', KEYS[2], '-inf', now)
  redis.call('pexpire', KEYS[3], ARGV[1])
end
"""

_STORE = """
local ttl = tonumber(ARGV[4])
local unclaimed = redis.call('hdel', KEYS[3], ARGV[2])
redis.call('zadd', KEYS[2], string.format('%d', now + ttl), ARGV[2])
local new = redis.call('hset', KEYS[1], ARGV[2], ARGV[3])
local keep = ttl + tonumber(ARGV[1])
for i = 1, 2 do
  if redis.call('pttl', KEYS[i]) < keep then redis.call('pexpire', KEYS[i], keep) end
end
local joined = 0
if new == 1 and unclaimed == 0 then joined = 1 end
"""

_TAKE_GONE = """
local gone = redis.call('hvals', KEYS[3])
if #gone > 0 then redis.call('del', KEYS[3]) end
"""

_ADD = _SWEEP + _STORE + "return joined\n"

_REFRESH = _SWEEP + _STORE + _TAKE_GONE + "return {joined, gone}\n"

_REMOVE = """
redis.call('hdel', KEYS[1], ARGV[2])
redis.call('zrem', KEYS[2], ARGV[2])
redis.call('hdel', KEYS[3], ARGV[2])
return 1
"""

_LIST = (
    _SWEEP
    + """
return redis.call('hvals', KEYS[1])
"""
)

_CLAIM = _SWEEP + _TAKE_GONE + "return gone\n"


class RedisPresence:
    """A `PresenceManager` over Redis. Guarantees as in `channels.presence.PresenceManager`."""

    def __init__(
        self, redis: str | Redis | RedisCluster, prefix: str = "tandem:", *, retention_seconds: float = 60.0
    ) -> None:
        """Args:
        redis: a ``redis://`` or ``redis+cluster://`` URL (the client is then owned and closed here) or a shared
            client.
        prefix: prepended to every key (must not contain ``{``).
        retention_seconds: how long expired entries wait to be claimed before they are forgotten (the hub claims
            every ttl/3 on each node with local subscribers: a minute is ample).
        """
        if "{" in prefix:
            raise ValueError("prefix must not contain '{'")
        self._owned = isinstance(redis, str)
        self._redis = redis_client(redis) if isinstance(redis, str) else redis
        self._prefix = prefix
        self._retention_ms = max(1, math.ceil(retention_seconds * 1000))
        self._add = self._redis.register_script(_ADD)
        self._claim = self._redis.register_script(_CLAIM)
        self._refresh = self._redis.register_script(_REFRESH)
        self._remove = self._redis.register_script(_REMOVE)
        self._list = self._redis.register_script(_LIST)

    def _keys(self, channel: str) -> list[str]:
        tag = f"{self._prefix}{{{channel}}}"
        return [f"{tag}:presence", f"{tag}:presence:exp", f"{tag}:presence:gone"]

    async def add(self, channel: str, info: PresenceInfo, ttl_seconds: float) -> bool:
        encoded = json.dumps(info.to_json(), separators=(",", ":"))
        ttl_ms = max(1, math.ceil(ttl_seconds * 1000))
        try:
            new = await self._add(keys=self._keys(channel), args=[self._retention_ms, info.client_id, encoded, ttl_ms])
        except RedisError as exc:
            raise BrokerUnavailable(f"presence add on {channel!r} failed: {exc}") from exc
        return bool(new)

    async def refresh(
        self, channel: str, info: PresenceInfo, ttl_seconds: float
    ) -> tuple[bool, builtins.list[PresenceInfo]]:
        encoded = json.dumps(info.to_json(), separators=(",", ":"))
        ttl_ms = max(1, math.ceil(ttl_seconds * 1000))
        args: builtins.list[int | str] = [self._retention_ms, info.client_id, encoded, ttl_ms]
        try:
            new, gone = await self._refresh(keys=self._keys(channel), args=args)
        except RedisError as exc:
            raise BrokerUnavailable(f"presence refresh on {channel!r} failed: {exc}") from exc
        return bool(new), [PresenceInfo.from_json(json.loads(value)) for value in gone]

    async def remove(self, channel: str, client_id: str) -> None:
        try:
            await self._remove(keys=self._keys(channel), args=[self._retention_ms, client_id])
        except RedisError as exc:
            raise BrokerUnavailable(f"presence remove on {channel!r} failed: {exc}") from exc

    async def list(self, channel: str) -> builtins.list[PresenceInfo]:
        return await self._entries(self._list, "list", channel)

    async def claim_expired(self, channel: str) -> builtins.list[PresenceInfo]:
        return await self._entries(self._claim, "claim", channel)

    async def _entries(self, script: Any, what: str, channel: str) -> builtins.list[PresenceInfo]:
        try:
            values: builtins.list[Any] = await script(keys=self._keys(channel), args=[self._retention_ms])
        except RedisError as exc:
            raise BrokerUnavailable(f"presence {what} on {channel!r} failed: {exc}") from exc
        return [PresenceInfo.from_json(json.loads(value)) for value in values]

    async def close(self) -> None:
        if self._owned:
            await self._redis.aclose()
