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
after that (the batched heartbeat extends it only once it fell below the ttl plus half the retention: at least
that much); ``gone`` is kept for ``retention`` after the last expiry moved into it. Time comes from
Redis, so nodes with skewed clocks agree on expiry. All keys carry the channel's hash tag ``{c}``, so on a Redis
Cluster a channel's keys share one slot (the slot of the channel's history and pub/sub channel).

The heartbeat (`RedisPresence.refresh_many`) does not cost a script per entry: it groups a node's entries by the
shard owning their channel and sends each shard one script per ``_REFRESH_CHUNK`` entries (one script for up to
that many, however many channels they are on), one call at a time per shard, the shards concurrently. Per channel
the script does what `RedisPresence.refresh` does: sweep, store each entry, claim what expired. Each channel runs
in a Lua ``pcall``: a failing channel (a key of the wrong type, say) fails its own entries only, and the other
channels of the call are refreshed. On a Redis Cluster one script touches many slots of its shard: it declares
``allow-cross-slot-keys`` (Redis 7), names its keys in ARGV and is sent to the shard directly; a channel whose slot
moved to another shard meanwhile (the shard refuses it: "non local key") makes it re-read the slot map and send
that channel's entries again, once.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import json
import math
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot
from redis.exceptions import AskError, MovedError, NoScriptError, RedisClusterException, RedisError

from channels.backends.redis_cluster import redis_client
from channels.broker import BrokerUnavailable
from channels.presence import PresenceInfo, Refreshed

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

# The heartbeat of many entries on many channels in one call. No declared KEYS: a cluster node refuses a command
# whose declared keys span slots, even from a script allowed to touch several, so the keys of each channel are
# named in ARGV (by their common stem ``P{c}``). ARGV[1]: retention (ms), ARGV[2]: ttl (ms); then per channel: its
# stem, its entry count n, n client ids, n JSON entries. Returns per channel either {joined flags, claimed JSON
# entries} or the error (a string) that stopped that channel alone.
_REFRESH_MANY = """
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local retention = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local keep = ttl + retention
local expires = string.format('%d', now + ttl)

local function refresh(p, e, g, ids, infos)
  local expired = redis.call('zrangebyscore', e, '-inf', now)
  if #expired > 0 then
    local old = redis.call('hmget', p, unpack(expired))
    for i = 1, #expired do
      if old[i] then redis.call('hset', g, expired[i], old[i]) end
    end
    redis.call('hdel', p, unpack(expired))
    redis.call('zremrangebyscore', e, '-inf', now)
    redis.call('pexpire', g, retention)
  end
  -- Fewer commands than _STORE per entry (what a heartbeat of thousands of entries pays): the claimable hash is
  -- touched only if it exists, one ZADD takes every entry, and one TTL stands for both keys (created, extended
  -- and emptied together), extended only once it fell below the entry ttl plus half the retention (every third
  -- heartbeat or so, not every one: the keys then outlive their last refresh by at least that).
  local claimable = redis.call('exists', g) == 1
  local joined, scores = {}, {}
  for i = 1, #ids do
    local unclaimed = 0
    if claimable then unclaimed = redis.call('hdel', g, ids[i]) end
    local new = redis.call('hset', p, ids[i], infos[i])
    if new == 1 and unclaimed == 0 then joined[i] = 1 else joined[i] = 0 end
    scores[2 * i - 1] = expires
    scores[2 * i] = ids[i]
  end
  redis.call('zadd', e, unpack(scores))
  if redis.call('pttl', p) < keep - retention / 2 then
    redis.call('pexpire', p, keep)
    redis.call('pexpire', e, keep)
  end
  local gone = {}
  if claimable then
    gone = redis.call('hvals', g)
    if #gone > 0 then redis.call('del', g) end
  end
  return {joined, gone}
end

local replies = {}
local a = 3
while a <= #ARGV do
  local stem, n = ARGV[a], tonumber(ARGV[a + 1])
  local ids, infos = {}, {}
  for i = 1, n do
    ids[i] = ARGV[a + 1 + i]
    infos[i] = ARGV[a + 1 + n + i]
  end
  a = a + 2 + 2 * n
  local ok, reply = pcall(refresh, stem .. ':presence', stem .. ':presence:exp', stem .. ':presence:gone', ids, infos)
  if ok then
    replies[#replies + 1] = reply
  elseif type(reply) == 'table' and reply.err then
    replies[#replies + 1] = reply.err
  else
    replies[#replies + 1] = tostring(reply)
  end
end
return replies
"""
# Entries per call of `_REFRESH_MANY`: bounds how long one call holds Redis (Lua runs alone) and its size (~200 B
# per entry). At 1,000 a call takes about a millisecond or two of Redis CPU (bench/presence_refresh.py).
_REFRESH_CHUNK = 1000
# A node of a cluster runs a script whose keys span slots only if it says so (Redis 7).
_CROSS_SLOT = "#!lua flags=allow-cross-slot-keys\n"

# One call's worth: (channel, the indexes of its entries in the batch), channels in KEYS order.
_Chunk = list[tuple[str, list[int]]]


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
        self._cluster = isinstance(self._redis, RedisCluster)
        self._refresh_many_body = (_CROSS_SLOT if self._cluster else "") + _REFRESH_MANY
        self._refresh_many_sha = hashlib.sha1(self._refresh_many_body.encode()).hexdigest()

    def _stem(self, channel: str) -> str:
        return f"{self._prefix}{{{channel}}}"

    def _keys(self, channel: str) -> list[str]:
        stem = self._stem(channel)
        return [f"{stem}:presence", f"{stem}:presence:exp", f"{stem}:presence:gone"]

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

    async def refresh_many(
        self, entries: Sequence[tuple[str, PresenceInfo]], ttl_seconds: float
    ) -> builtins.list[Refreshed | BrokerUnavailable]:
        ttl_ms = max(1, math.ceil(ttl_seconds * 1000))
        results: builtins.list[Refreshed | BrokerUnavailable | None] = [None] * len(entries)
        by_channel: dict[str, builtins.list[int]] = {}
        for index, (channel, _) in enumerate(entries):
            by_channel.setdefault(channel, []).append(index)
        pending = list(by_channel)
        for attempt in range(2):  # a second one only for the shards whose slots moved (cluster)
            try:
                shards = await self._shards(pending, reread=attempt > 0)
            except BrokerUnavailable as exc:
                self._fail([(channel, by_channel[channel]) for channel in pending], exc, results)
                break
            moved = await asyncio.gather(
                *(
                    self._refresh_shard(node, channels, by_channel, entries, ttl_ms, results)
                    for node, channels in shards
                )
            )
            pending = [channel for channels in moved for channel in channels]
            if not pending:
                break
        done: builtins.list[Refreshed | BrokerUnavailable] = []
        for result in results:
            assert result is not None
            done.append(result)
        return done

    async def _shards(
        self, channels: builtins.list[str], *, reread: bool
    ) -> builtins.list[tuple[ClusterNode | None, builtins.list[str]]]:
        """``channels`` grouped by the node owning their slot (one group, node None, on a single Redis)."""
        if not isinstance(self._redis, RedisCluster):
            return [(None, channels)]
        try:
            if reread:
                await self._redis.nodes_manager.initialize()
            else:
                await self._redis.initialize()
            groups: dict[str, tuple[ClusterNode, builtins.list[str]]] = {}
            for channel in channels:
                node = self._redis.nodes_manager.get_node_from_slot(key_slot(self._stem(channel).encode()))
                groups.setdefault(node.name, (node, []))[1].append(channel)
        except (RedisError, RedisClusterException) as exc:
            raise BrokerUnavailable(f"presence refresh: cluster slot map unavailable: {exc}") from exc
        return [(node, grouped) for node, grouped in groups.values()]

    async def _refresh_shard(
        self,
        node: ClusterNode | None,
        channels: builtins.list[str],
        by_channel: dict[str, builtins.list[int]],
        entries: Sequence[tuple[str, PresenceInfo]],
        ttl_ms: int,
        results: builtins.list[Refreshed | BrokerUnavailable | None],
    ) -> builtins.list[str]:
        """Refresh one shard's channels, one call at a time; returns the channels whose slot moved away."""
        moved: builtins.list[str] = []
        for chunk in _chunks(channels, by_channel):
            args: builtins.list[int | str] = [self._retention_ms, ttl_ms]
            for channel, indexes in chunk:
                infos = [entries[i][1] for i in indexes]
                args += [self._stem(channel), len(infos)]
                args += [info.client_id for info in infos]
                args += [json.dumps(info.to_json(), separators=(",", ":")) for info in infos]
            try:
                replies: builtins.list[Any] = await self._eval_refresh_many(node, args)
            except (MovedError, AskError) as exc:
                moved += [channel for channel, _ in chunk]
                self._fail(chunk, BrokerUnavailable(f"presence refresh: slot moved: {exc}"), results)
                continue
            except (RedisError, RedisClusterException) as exc:
                self._fail(
                    chunk, BrokerUnavailable(f"presence refresh of {len(chunk)} channels failed: {exc}"), results
                )
                continue
            for (channel, indexes), reply in zip(chunk, replies, strict=True):
                if isinstance(reply, bytes | str):
                    error = reply.decode() if isinstance(reply, bytes) else reply
                    if "non local key" in error:  # its slot moved to another shard since the slot map was read
                        moved.append(channel)
                    failure = BrokerUnavailable(f"presence refresh on {channel!r}: {error}")
                    self._fail([(channel, indexes)], failure, results)
                    continue
                joined, gone = reply
                for n, (index, new) in enumerate(zip(indexes, joined, strict=True)):
                    claimed = [PresenceInfo.from_json(json.loads(value)) for value in gone] if n == 0 else []
                    results[index] = (bool(new), claimed)
        return moved

    @staticmethod
    def _fail(
        chunk: _Chunk, failure: BrokerUnavailable, results: builtins.list[Refreshed | BrokerUnavailable | None]
    ) -> None:
        for _, indexes in chunk:
            for index in indexes:
                results[index] = failure

    async def _eval_refresh_many(self, node: ClusterNode | None, args: builtins.list[int | str]) -> Any:
        """EVALSHA of `_REFRESH_MANY` on ``node`` (a cluster's shard, named directly since the keys span slots), the
        script loaded there first if it did not know it."""
        target: dict[str, Any] = {} if node is None else {"target_nodes": node}
        command = ("EVALSHA", self._refresh_many_sha, 0, *args)
        try:
            return await self._redis.execute_command(*command, **target)
        except NoScriptError:
            await self._redis.execute_command("SCRIPT", "LOAD", self._refresh_many_body, **target)
            return await self._redis.execute_command(*command, **target)

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


def _chunks(channels: builtins.list[str], by_channel: dict[str, builtins.list[int]]) -> builtins.list[_Chunk]:
    """``channels``' entries in calls of at most `_REFRESH_CHUNK` entries (a channel with more is split)."""
    chunks: builtins.list[_Chunk] = [[]]
    size = 0
    for channel in channels:
        indexes = by_channel[channel]
        for start in range(0, len(indexes), _REFRESH_CHUNK):
            part = indexes[start : start + _REFRESH_CHUNK]
            if size + len(part) > _REFRESH_CHUNK and chunks[-1]:
                chunks.append([])
                size = 0
            chunks[-1].append((channel, part))
            size += len(part)
    return [chunk for chunk in chunks if chunk]
