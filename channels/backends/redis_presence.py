"""`RedisPresence`: presence shared by every node through Redis.

Keys (prefix ``P``)::

    P{c}:members             HASH  client_id -> "<node> <JSON of the PresenceInfo>", per channel ``c``
    P{presence}:leases       ZSET  node -> when its lease lapses (Redis ms)
    P{presence:<node>}:rooms SET   the channels ``node`` may own entries on (a superset: see below)

A node's heartbeat is one script on ``leases`` (`RedisPresence.renew`), whatever it holds: the store's liveness
work grows with nodes, not sockets. Entries carry no expiry of their own. `RedisPresence.list` reads a channel's
entries and the live leases (two calls, concurrently: on a cluster they are different slots) and keeps the entries
of live nodes. `RedisPresence.claim_dead` finds the lapsed leases, pops their ``rooms`` a hundred at a time (``SPOP``:
each room goes to one claiming node) and evicts the dead node's entries from each room in one script, so each
entry is returned once however many nodes claim at once; the lease is forgotten when its rooms are. A node adds a
channel to its ``rooms`` before its first entry there, and takes out the channels it no longer has entries on when
it renews (the two serialized per node, so a join never races a removal of its room). Time comes from Redis, so
nodes with skewed clocks agree on which leases lapsed. All of a channel's keys carry its hash tag ``{c}``, so on a
Redis Cluster they share the slot of the channel's history and pub/sub channel.

A node taking its entries back under a new lease (`RedisPresence.add_many`, after its old one lapsed) does not
cost a call per entry: it groups the entries by the shard owning their channel and sends each shard one script per
``_ADD_CHUNK`` entries, one call at a time per shard, the shards concurrently. Each channel runs in a Lua
``pcall``: a failing channel (a key of the wrong type, say) fails its own entries only. On a Redis Cluster one
script touches many slots of its shard: it declares ``allow-cross-slot-keys`` (Redis 7), names its keys in ARGV
and is sent to the shard directly; a channel whose slot moved to another shard meanwhile (the shard refuses it:
"non local key") makes it re-read the slot map and send that channel's entries again, once.

What is left: a node that dies between popping a dead node's rooms and evicting them leaves those entries behind
(never listed, since their lease lapsed, and never announced ``left``); it needs two nodes to die within
milliseconds of each other.
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
from channels.presence import Claimed, PresenceInfo

_NOW = """
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS[1]: leases. ARGV[1]: node, ARGV[2]: ttl (ms).
_REGISTER = _NOW + "redis.call('zadd', KEYS[1], string.format('%d', now + tonumber(ARGV[2])), ARGV[1])\n"

_RENEW = (
    _NOW
    + """
local lapses = redis.call('zscore', KEYS[1], ARGV[1])
if not lapses or tonumber(lapses) <= now then return 0 end
redis.call('zadd', KEYS[1], string.format('%d', now + tonumber(ARGV[2])), ARGV[1])
return 1
"""
)

_LIVE = _NOW + "return redis.call('zrangebyscore', KEYS[1], '(' .. now, '+inf')\n"

_LAPSED = _NOW + "return redis.call('zrangebyscore', KEYS[1], '-inf', now)\n"

# KEYS[1]: a channel's members. ARGV[1]: the dead node's prefix ("<node> "). Removes and returns its entries' JSON.
_EVICT = """
local all = redis.call('hgetall', KEYS[1])
local n = #ARGV[1]
local ids, gone = {}, {}
for i = 1, #all, 2 do
  if string.sub(all[i + 1], 1, n) == ARGV[1] then
    ids[#ids + 1] = all[i]
    gone[#gone + 1] = string.sub(all[i + 1], n + 1)
  end
end
for i = 1, #ids, 1000 do
  redis.call('hdel', KEYS[1], unpack(ids, i, math.min(i + 999, #ids)))
end
return gone
"""

# Many entries on many channels in one call. No declared KEYS: a cluster node refuses a command whose declared keys
# span slots, even from a script allowed to touch several, so each channel's members key is named in ARGV.
# ARGV[1]: the owner's prefix ("<node> "); then per channel: its members key, its entry count n, n client ids, n
# JSON entries. Returns per channel either the HSET replies (1: the entry is new) or the error (a string) that
# stopped that channel alone.
_ADD_MANY = """
local function store(key, ids, infos)
  local new = {}
  for i = 1, #ids do new[i] = redis.call('hset', key, ids[i], ARGV[1] .. infos[i]) end
  return new
end

local replies = {}
local a = 2
while a <= #ARGV do
  local key, n = ARGV[a], tonumber(ARGV[a + 1])
  local ids, infos = {}, {}
  for i = 1, n do
    ids[i] = ARGV[a + 1 + i]
    infos[i] = ARGV[a + 1 + n + i]
  end
  a = a + 2 + 2 * n
  local ok, reply = pcall(store, key, ids, infos)
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
# Entries per call of `_ADD_MANY`: bounds how long one call holds Redis (Lua runs alone) and its size (~200 B per
# entry).
_ADD_CHUNK = 1000
# Rooms of a dead node popped and evicted at a time.
_EVICT_BATCH = 100
# A node of a cluster runs a script whose keys span slots only if it says so (Redis 7).
_CROSS_SLOT = "#!lua flags=allow-cross-slot-keys\n"

# One call's worth: (channel, the indexes of its entries in the batch).
_Chunk = list[tuple[str, list[int]]]


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
        self._leases = f"{prefix}{{presence}}:leases"
        self._register = self._redis.register_script(_REGISTER)
        self._renew = self._redis.register_script(_RENEW)
        self._live = self._redis.register_script(_LIVE)
        self._lapsed = self._redis.register_script(_LAPSED)
        self._evict = self._redis.register_script(_EVICT)
        self._add_many_body = (_CROSS_SLOT if isinstance(self._redis, RedisCluster) else "") + _ADD_MANY
        self._add_many_sha = hashlib.sha1(self._add_many_body.encode()).hexdigest()
        # Per node of this process: channel -> its clients here (what `rooms` must hold), and the lock that keeps
        # adding a room and taking rooms out in order.
        self._local: dict[str, dict[str, set[str]]] = {}
        self._index_locks: dict[str, asyncio.Lock] = {}
        # The live leases last read: `list` goes by them while their shard is out.
        self._known_live: set[str] | None = None

    def _stem(self, channel: str) -> str:
        return f"{self._prefix}{{{channel}}}"

    def _members(self, channel: str) -> str:
        return f"{self._stem(channel)}:members"

    def _rooms(self, node: str) -> str:
        return f"{self._prefix}{{presence:{node}}}:rooms"

    async def register(self, node: str, ttl_seconds: float) -> None:
        try:
            await self._register(keys=[self._leases], args=[node, _ms(ttl_seconds)])
        except RedisError as exc:
            raise BrokerUnavailable(f"presence lease of {node} not registered: {exc}") from exc
        self._local.setdefault(node, {})

    async def renew(self, node: str, ttl_seconds: float) -> bool:
        local = self._local.get(node, {})
        try:
            async with self._index_lock(node):
                empty = [channel for channel, clients in local.items() if not clients]
                if empty:
                    await self._redis.srem(self._rooms(node), *empty)
                    for channel in empty:
                        del local[channel]
            renewed = bool(await self._renew(keys=[self._leases], args=[node, _ms(ttl_seconds)]))
        except RedisError as exc:
            raise BrokerUnavailable(f"presence lease of {node} not renewed: {exc}") from exc
        if not renewed:  # others claim its rooms now
            self._local.pop(node, None)
            self._index_locks.pop(node, None)
        return renewed

    def _index_lock(self, node: str) -> asyncio.Lock:
        return self._index_locks.setdefault(node, asyncio.Lock())

    async def _index(self, node: str, channels: builtins.list[str], client_ids: builtins.list[str]) -> None:
        """Note that ``client_ids`` are on ``channels`` (pairwise), adding to ``node``'s rooms the channels it had
        no entry on yet, before their entries are stored."""
        local = self._local.setdefault(node, {})
        missing = list(dict.fromkeys(channel for channel in channels if channel not in local))
        if missing:
            async with self._index_lock(node):
                missing = [channel for channel in missing if channel not in local]
                if missing:
                    await self._redis.sadd(self._rooms(node), *missing)
                    for channel in missing:
                        local[channel] = set()
        for channel, client_id in zip(channels, client_ids, strict=True):
            local[channel].add(client_id)

    async def add(self, channel: str, info: PresenceInfo, node: str) -> bool:
        value = f"{node} {_encode(info)}"
        try:
            await self._index(node, [channel], [info.client_id])
            new = await self._redis.hset(self._members(channel), info.client_id, value)
        except RedisError as exc:
            raise BrokerUnavailable(f"presence add on {channel!r} failed: {exc}") from exc
        return bool(new)

    async def add_many(
        self, entries: Sequence[tuple[str, PresenceInfo]], node: str
    ) -> builtins.list[bool | BrokerUnavailable]:
        results: builtins.list[bool | BrokerUnavailable | None] = [None] * len(entries)
        by_channel: dict[str, builtins.list[int]] = {}
        for index, (channel, _) in enumerate(entries):
            by_channel.setdefault(channel, []).append(index)
        try:
            await self._index(node, [channel for channel, _ in entries], [info.client_id for _, info in entries])
        except RedisError as exc:
            return [BrokerUnavailable(f"presence rooms of {node} not recorded: {exc}")] * len(entries)
        pending = list(by_channel)
        for attempt in range(2):  # a second one only for the shards whose slots moved (cluster)
            try:
                shards = await self._shards(pending, reread=attempt > 0)
            except BrokerUnavailable as exc:
                self._fail([(channel, by_channel[channel]) for channel in pending], exc, results)
                break
            moved = await asyncio.gather(
                *(self._add_shard(node, shard, channels, by_channel, entries, results) for shard, channels in shards)
            )
            pending = [channel for channels in moved for channel in channels]
            if not pending:
                break
        done: builtins.list[bool | BrokerUnavailable] = []
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
            raise BrokerUnavailable(f"presence add: cluster slot map unavailable: {exc}") from exc
        return [(node, grouped) for node, grouped in groups.values()]

    async def _add_shard(
        self,
        node: str,
        shard: ClusterNode | None,
        channels: builtins.list[str],
        by_channel: dict[str, builtins.list[int]],
        entries: Sequence[tuple[str, PresenceInfo]],
        results: builtins.list[bool | BrokerUnavailable | None],
    ) -> builtins.list[str]:
        """Add one shard's channels, one call at a time; returns the channels whose slot moved away."""
        moved: builtins.list[str] = []
        for chunk in _chunks(channels, by_channel):
            args: builtins.list[int | str] = [f"{node} "]
            for channel, indexes in chunk:
                infos = [entries[i][1] for i in indexes]
                args += [self._members(channel), len(infos)]
                args += [info.client_id for info in infos]
                args += [_encode(info) for info in infos]
            try:
                replies: builtins.list[Any] = await self._eval_add_many(shard, args)
            except (MovedError, AskError) as exc:
                moved += [channel for channel, _ in chunk]
                self._fail(chunk, BrokerUnavailable(f"presence add: slot moved: {exc}"), results)
                continue
            except (RedisError, RedisClusterException) as exc:
                self._fail(chunk, BrokerUnavailable(f"presence add of {len(chunk)} channels failed: {exc}"), results)
                continue
            for (channel, indexes), reply in zip(chunk, replies, strict=True):
                if isinstance(reply, bytes | str):
                    error = reply.decode() if isinstance(reply, bytes) else reply
                    if "non local key" in error:  # its slot moved to another shard since the slot map was read
                        moved.append(channel)
                    self._fail(
                        [(channel, indexes)], BrokerUnavailable(f"presence add on {channel!r}: {error}"), results
                    )
                    continue
                for index, new in zip(indexes, reply, strict=True):
                    results[index] = bool(new)
        return moved

    @staticmethod
    def _fail(
        chunk: _Chunk, failure: BrokerUnavailable, results: builtins.list[bool | BrokerUnavailable | None]
    ) -> None:
        for _, indexes in chunk:
            for index in indexes:
                results[index] = failure

    async def _eval_add_many(self, shard: ClusterNode | None, args: builtins.list[int | str]) -> Any:
        """EVALSHA of `_ADD_MANY` on ``shard`` (a cluster's node, named directly since the keys span slots), the
        script loaded there first if it did not know it."""
        target: dict[str, Any] = {} if shard is None else {"target_nodes": shard}
        command = ("EVALSHA", self._add_many_sha, 0, *args)
        try:
            return await self._redis.execute_command(*command, **target)
        except NoScriptError:
            await self._redis.execute_command("SCRIPT", "LOAD", self._add_many_body, **target)
            return await self._redis.execute_command(*command, **target)

    async def remove(self, channel: str, client_id: str) -> None:
        for local in self._local.values():
            clients = local.get(channel)
            if clients is not None:
                clients.discard(client_id)
        try:
            await self._redis.hdel(self._members(channel), client_id)
        except RedisError as exc:
            raise BrokerUnavailable(f"presence remove on {channel!r} failed: {exc}") from exc

    async def list(self, channel: str) -> builtins.list[PresenceInfo]:
        read: tuple[Any, Any] = await asyncio.gather(
            self._redis.hvals(self._members(channel)), self._live(keys=[self._leases]), return_exceptions=True
        )
        values, live = read
        for failed in (values, live):
            if isinstance(failed, BaseException) and not isinstance(failed, RedisError):
                raise failed
        if isinstance(values, BaseException):
            raise BrokerUnavailable(f"presence list on {channel!r} failed: {values}") from values
        if isinstance(live, BaseException):
            # On a cluster the leases are on one shard: while it is out, channels on the others are still listed,
            # by the leases last known alive (a node that died meanwhile is listed until the shard is back).
            if self._known_live is None:
                raise BrokerUnavailable(f"presence list on {channel!r}: leases unavailable: {live}") from live
            nodes = self._known_live
        else:
            nodes = self._known_live = {_text(node) for node in live}
        listed = []
        for value in values:
            node, _, encoded = _text(value).partition(" ")
            if node in nodes:
                listed.append(_decode(encoded))
        return listed

    async def claim_dead(self) -> builtins.list[Claimed]:
        claimed: builtins.list[Claimed] = []
        try:
            lapsed = [_text(node) for node in await self._lapsed(keys=[self._leases])]
            for node in lapsed:
                rooms = self._rooms(node)
                while channels := [_text(c) for c in await self._pop(rooms)]:
                    evicted: builtins.list[Any] = await asyncio.gather(
                        *(self._evict(keys=[self._members(c)], args=[f"{node} "]) for c in channels),
                        return_exceptions=True,
                    )
                    failed = [c for c, gone in zip(channels, evicted, strict=True) if isinstance(gone, BaseException)]
                    for channel, gone in zip(channels, evicted, strict=True):
                        if not isinstance(gone, BaseException):
                            claimed += [(channel, _decode(_text(value))) for value in gone]
                    if failed:  # back for the next claim
                        await self._redis.sadd(rooms, *failed)
                        raise next(g for g in evicted if isinstance(g, BaseException))
                await self._redis.zrem(self._leases, node)
        except RedisError as exc:
            if not claimed:
                raise BrokerUnavailable(f"presence claim failed: {exc}") from exc
        return claimed

    async def _pop(self, rooms: str) -> builtins.list[bytes | str]:
        popped: builtins.list[bytes | str] | None = await self._redis.spop(rooms, _EVICT_BATCH)  # type: ignore[assignment]
        return popped or []

    async def close(self) -> None:
        if self._owned:
            await self._redis.aclose()


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


def _encode(info: PresenceInfo) -> str:
    return json.dumps(info.to_json(), separators=(",", ":"))


def _decode(encoded: str) -> PresenceInfo:
    return PresenceInfo.from_json(json.loads(encoded))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _chunks(channels: builtins.list[str], by_channel: dict[str, builtins.list[int]]) -> builtins.list[_Chunk]:
    """``channels``' entries in calls of at most `_ADD_CHUNK` entries (a channel with more is split)."""
    chunks: builtins.list[_Chunk] = [[]]
    size = 0
    for channel in channels:
        indexes = by_channel[channel]
        for start in range(0, len(indexes), _ADD_CHUNK):
            part = indexes[start : start + _ADD_CHUNK]
            if size + len(part) > _ADD_CHUNK and chunks[-1]:
                chunks.append([])
                size = 0
            chunks[-1].append((channel, part))
            size += len(part)
    return [chunk for chunk in chunks if chunk]
