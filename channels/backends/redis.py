"""`RedisBroker`: the `Broker` shared by every node through one Redis.

Layout (``P`` is the broker's prefix, ``c`` the channel)::

    P{c}:meta      HASH  o = last offset, e = epoch          (TTL: meta_ttl, refreshed on publish)
    P{c}:history   STREAM  id "<offset>-0", fields d = data, x = expiry, t = published (Redis ms)   (TTL: history ttl)
    P{c}:pub       pub/sub channel; message = b"<offset>\\0<epoch>\\0<ts>\\0<channel>\\0<data>"
    P{c}:once:k    STRING "<offset>:<epoch>" of the publication made with idempotency key k   (TTL: idempotency ttl)

`publish` is one Lua script (``_PUBLISH``): it creates the epoch if the meta hash is missing (a random value
passed in; the stale stream is deleted with it, since its offsets belong to the old epoch), increments the
offset, XADDs with exact ``MAXLEN size``, trims entries whose expiry passed (XTRIM MINID on the head), refreshes
both TTLs and PUBLISHes the envelope — all atomically, so PUBLISH order is offset order. A publish with an
idempotency key first looks the key up: if a publication with that key was made, the script returns its position
and changes nothing (no offset is spent, nothing is stored or sent); otherwise it records the key with the new
position. One GET and one SET more, in the same script, only when a key is given. Time comes from Redis
(``TIME``), so every node agrees on what has expired. `history` and `position` are a second script that also
creates a missing epoch, so a subscriber's first position and the first publication share one epoch.

`publish_batch` sends many calls of the publish script in one pipeline: one round trip, so the publications reach
every node in one read and each node's hub joins them into one message per socket. Each call after the first on its
channel also names its predecessor's idempotency key (``KEYS[4]``) and publishes nothing unless that key exists, so
what a failure leaves published on a channel is a prefix of the batch's items there.

Pub/sub is `channels.backends.redis_pubsub.PubSubReader`: one long-lived connection per broker that reads
messages, calls the handler, reconnects with backoff and awaits the reconnect handler after resubscribing.

Redis Cluster (a ``redis+cluster://`` URL, see ``channels/backends/redis_cluster.py``): every key of a channel
carries the hash tag ``{c}``, so meta, stream and the pub/sub channel of one channel map to one slot, and both
scripts touch a single slot (the prefix must not contain ``{``). The script then sends ``SPUBLISH`` instead of
``PUBLISH`` (its command is an argument), and the pub/sub side is a `ShardedSubscriber`: one reader per shard,
SSUBSCRIBE to the channels whose slot that shard owns. Nothing else changes: offsets, epochs and recovery are per
channel, and a channel never spans slots.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError

from channels.backends.redis_cluster import ShardedSubscriber, redis_client
from channels.backends.redis_pubsub import PubSubReader, Subscriber, dedicated_connection, pubsub_name
from channels.broker import (
    IDEMPOTENCY_TTL_SECONDS,
    BrokerUnavailable,
    HistoryOptions,
    HistoryResult,
    Publication,
    PublicationHandler,
    Publishing,
    ReconnectHandler,
    StreamPosition,
    publish_one_by_one,
)

_PUBLISH = """
if KEYS[3] then
  local seen = redis.call('get', KEYS[3])
  if seen then
    local o, e = string.match(seen, '^(%d+):(.*)$')
    return {tonumber(o), e}
  end
end
if KEYS[4] and not redis.call('get', KEYS[4]) then
  return {-1, ''}
end
local epoch = redis.call('hget', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[5]
  redis.call('del', KEYS[2])
  redis.call('hset', KEYS[1], 'e', epoch, 'o', 0)
end
local offset = redis.call('hincrby', KEYS[1], 'o', 1)
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('xadd', KEYS[2], 'MAXLEN', ARGV[2], offset .. '-0', 'd', ARGV[1], 'x', string.format('%d', now + ttl),
  't', string.format('%d', now))
while true do
  local head = redis.call('xrange', KEYS[2], '-', '+', 'COUNT', 32)
  local keep = nil
  local last = nil
  for i = 1, #head do
    local fields = head[i][2]
    local expiry = 0
    for j = 1, #fields, 2 do
      if fields[j] == 'x' then expiry = tonumber(fields[j + 1]) end
    end
    if expiry > now then keep = i; break end
    last = head[i][1]
  end
  if last == nil then break end
  if keep ~= nil then
    redis.call('xtrim', KEYS[2], 'MINID', head[keep][1])
    break
  end
  redis.call('xtrim', KEYS[2], 'MINID', (tonumber(string.match(last, '^(%d+)')) + 1) .. '-0')
end
redis.call('pexpire', KEYS[2], ttl)
redis.call('pexpire', KEYS[1], ARGV[4])
local stamp = string.format('%d', now)
redis.call(ARGV[8], ARGV[6], offset .. '\\0' .. epoch .. '\\0' .. stamp .. '\\0' .. ARGV[7] .. '\\0' .. ARGV[1])
if KEYS[3] then
  redis.call('set', KEYS[3], offset .. ':' .. epoch, 'PX', ARGV[9])
end
return {offset, epoch}
"""

_HISTORY = """
local meta = redis.call('hmget', KEYS[1], 'o', 'e')
local offset = tonumber(meta[1]) or 0
local epoch = meta[2]
if not epoch then
  epoch = ARGV[4]
  offset = 0
  redis.call('del', KEYS[2])
  redis.call('hset', KEYS[1], 'e', epoch, 'o', 0)
  redis.call('pexpire', KEYS[1], ARGV[5])
end
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local since = tonumber(ARGV[1])
if since < 0 or since >= offset or epoch ~= ARGV[3] then
  return {offset, epoch, now, {}}
end
return {offset, epoch, now, redis.call('xrange', KEYS[2], (since + 1) .. '-0', '+', 'COUNT', ARGV[2])}
"""


def _new_epoch() -> str:
    return secrets.token_hex(4)


class RedisBroker:
    """A `Broker` over Redis (see the module docstring for layout and recovery). Guarantees as in
    `channels.broker.Broker`; `publish` is attempted once (never retried), so it is applied at most once."""

    def __init__(
        self,
        url: str,
        prefix: str = "tandem:",
        *,
        meta_ttl_seconds: float = 24 * 3600.0,
        idempotency_ttl_seconds: float = IDEMPOTENCY_TTL_SECONDS,
        ping_interval_seconds: float = 5.0,
        reconnect_base_delay: float = 0.05,
        reconnect_max_delay: float = 2.0,
        subscribe_timeout_seconds: float = 5.0,
        socket_timeout_seconds: float = 5.0,
    ) -> None:
        """Args:
        url: ``redis://``/``rediss://`` URL, or ``redis+cluster://``/``rediss+cluster://`` for a Redis Cluster.
        prefix: prepended to every key and pub/sub channel (must not contain ``{``).
        meta_ttl_seconds: an idle channel's offset and epoch are forgotten after this long (at least twice
            the history ttl), after which clients get ``reload``.
        idempotency_ttl_seconds: how long an idempotency key is remembered (see `Broker.publish`).
        ping_interval_seconds: silence on the pub/sub connection after which it is pinged; no answer within
            another interval means it is dead.
        reconnect_base_delay: first reconnect delay; doubles per failed attempt.
        reconnect_max_delay: cap of the reconnect backoff.
        subscribe_timeout_seconds: how long `subscribe` waits for Redis to confirm.
        socket_timeout_seconds: connect and command timeout of the command connections.
        """
        if "{" in prefix:
            raise ValueError("prefix must not contain '{' (it would break cluster hash tags)")
        self._prefix = prefix
        self._meta_ttl_seconds = meta_ttl_seconds
        self._idempotency_ttl_ms = max(1, math.ceil(idempotency_ttl_seconds * 1000))
        client = redis_client(
            url,
            socket_timeout=socket_timeout_seconds,
            socket_connect_timeout=socket_timeout_seconds,
            retry=Retry(NoBackoff(), 0),
        )
        self._redis = client
        self._publish_script = client.register_script(_PUBLISH)
        self._history_script = client.register_script(_HISTORY)
        options: dict[str, Any] = dict(
            ping_interval=ping_interval_seconds,
            base_delay=reconnect_base_delay,
            max_delay=reconnect_max_delay,
            subscribe_timeout=subscribe_timeout_seconds,
        )
        self._reader: Subscriber
        if isinstance(client, Redis):
            pool = client.connection_pool
            connect = dedicated_connection(pool.connection_class, pool.connection_kwargs, socket_timeout_seconds)
            self._reader = PubSubReader(connect, prefix, sharded=False, **options)
            self._publish_command = "publish"
        else:
            self._reader = ShardedSubscriber(client, prefix, socket_timeout=socket_timeout_seconds, **options)
            self._publish_command = "spublish"

    @property
    def subscriber(self) -> Subscriber:
        """The pub/sub side (a `ShardedSubscriber` on a cluster)."""
        return self._reader

    def _keys(self, channel: str) -> list[str]:
        tag = f"{self._prefix}{{{channel}}}"
        return [f"{tag}:meta", f"{tag}:history"]

    async def start(self) -> None:
        self._reader.start()

    async def close(self) -> None:
        await self._reader.close()
        await self._redis.aclose()

    def set_handler(self, handler: PublicationHandler) -> None:
        self._reader.handler = handler

    def set_reconnect_handler(self, handler: ReconnectHandler | None) -> None:
        self._reader.reconnect_handler = handler

    async def publish(
        self, channel: str, data: bytes, history: HistoryOptions | None, *, idempotency_key: str | None = None
    ) -> StreamPosition:
        name = pubsub_name(self._prefix, channel)
        try:
            if history is None:
                envelope = b"0\x00\x000\x00" + channel.encode() + b"\x00" + data
                await self._redis.execute_command(self._publish_command.upper(), name, envelope)
                return StreamPosition(0, "")
            if history.size < 1 or history.ttl_seconds <= 0:
                raise ValueError("history needs size >= 1 and ttl_seconds > 0")
            ttl_ms = max(1, math.ceil(history.ttl_seconds * 1000))
            meta_ttl_ms = max(2 * ttl_ms, math.ceil(self._meta_ttl_seconds * 1000))
            keys = self._keys(channel)
            args: list[bytes | int | str] = [
                data,
                history.size,
                ttl_ms,
                meta_ttl_ms,
                _new_epoch(),
                name,
                channel,
                self._publish_command,
            ]
            if idempotency_key is not None:
                keys.append(f"{self._prefix}{{{channel}}}:once:{idempotency_key}")
                args.append(self._idempotency_ttl_ms)
            reply = await self._publish_script(keys=keys, args=args)
        except RedisError as exc:
            raise BrokerUnavailable(f"publish to {channel!r} failed: {exc}") from exc
        offset, epoch = reply
        return StreamPosition(int(offset), _text(epoch))

    async def publish_batch(self, items: Sequence[Publishing], history: HistoryOptions) -> list[StreamPosition | None]:
        """`BatchPublisher.publish_batch`: one pipeline of publish scripts on one Redis (on a cluster, one
        `publish` after another)."""
        if not items:
            return []
        if self._publish_command == "spublish":
            return await publish_one_by_one(self, items, history)
        if history.size < 1 or history.ttl_seconds <= 0:
            raise ValueError("history needs size >= 1 and ttl_seconds > 0")
        ttl_ms = max(1, math.ceil(history.ttl_seconds * 1000))
        meta_ttl_ms = max(2 * ttl_ms, math.ceil(self._meta_ttl_seconds * 1000))
        last_key: dict[str, str] = {}  # channel -> the idempotency key of its previous item
        calls: list[tuple[Any, ...]] = []
        for item in items:
            keys = self._keys(item.channel)
            once = f"{self._prefix}{{{item.channel}}}:once:{item.idempotency_key}"
            keys.append(once)
            previous = last_key.get(item.channel)
            if previous is not None:
                keys.append(previous)
            last_key[item.channel] = once
            name = pubsub_name(self._prefix, item.channel)
            args = (item.data, history.size, ttl_ms, meta_ttl_ms, _new_epoch(), name, item.channel)
            calls.append((len(keys), *keys, *args, self._publish_command, self._idempotency_ttl_ms))
        try:
            replies = await self._run_pipeline(calls)
            if any(isinstance(r, NoScriptError) for r in replies):
                # Redis lost its scripts (restart, SCRIPT FLUSH): nothing ran; load the script, send the batch again.
                await self._redis.script_load(_PUBLISH)
                replies = await self._run_pipeline(calls)
        except RedisError as exc:
            raise BrokerUnavailable(f"publishing {len(items)} publications failed: {exc}") from exc
        positions: list[StreamPosition | None] = []
        for reply in replies:
            if isinstance(reply, BaseException) or int(reply[0]) < 0:
                positions.append(None)
            else:
                positions.append(StreamPosition(int(reply[0]), _text(reply[1])))
        return positions

    async def _run_pipeline(self, calls: list[tuple[Any, ...]]) -> list[Any]:
        pipe = self._redis.pipeline(transaction=False)
        for call in calls:
            pipe.execute_command("EVALSHA", self._publish_script.sha, *call)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies

    async def subscribe(self, channel: str) -> None:
        await self._reader.subscribe(channel)

    async def unsubscribe(self, channel: str) -> None:
        await self._reader.unsubscribe(channel)

    async def has_subscribers(self, channel: str) -> bool:
        if self._publish_command == "spublish":
            return True  # a shard's subscribers are counted on that shard only: not worth a routed query here
        name = pubsub_name(self._prefix, channel)
        try:
            counts = await self._redis.pubsub_numsub(name)  # [(name, count)]
        except RedisError as exc:
            raise BrokerUnavailable(f"counting subscribers of {channel!r} failed: {exc}") from exc
        return any(int(count) > 0 for _, count in counts)  # a node holds one subscription per channel

    async def history(self, channel: str, since: StreamPosition | None, limit: int) -> HistoryResult:
        since_offset = -1 if since is None else since.offset
        since_epoch = "" if since is None else since.epoch
        keys = self._keys(channel)
        args: list[int | str] = [
            since_offset,
            max(1, limit),
            since_epoch,
            _new_epoch(),
            max(1, math.ceil(self._meta_ttl_seconds * 1000)),
        ]
        try:
            try:
                reply = await self._history_script(keys=keys, args=args)
            except RedisConnectionError:
                # A pooled connection that went stale (its server or shard restarted). Unlike `publish`, a
                # history read is safe to repeat: at most it creates the epoch the first attempt created.
                reply = await self._history_script(keys=keys, args=args)
        except RedisError as exc:
            raise BrokerUnavailable(f"history of {channel!r} failed: {exc}") from exc
        offset, epoch, now, entries = int(reply[0]), _text(reply[1]), int(reply[2]), reply[3]
        position = StreamPosition(offset, epoch)
        if since is None:
            return HistoryResult([], position, True)
        if since.epoch != epoch or since.offset > offset:
            return HistoryResult([], position, False)
        if since.offset == offset:
            return HistoryResult([], position, True)
        pubs = _live_publications(channel, epoch, entries, now)
        if not pubs or pubs[0].offset != since.offset + 1:
            return HistoryResult([], position, False)
        return HistoryResult(pubs, position, True)

    async def position(self, channel: str) -> StreamPosition:
        return (await self.history(channel, None, 1)).position


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _live_publications(channel: str, epoch: str, entries: list[Any], now_ms: int) -> list[Publication]:
    pubs: list[Publication] = []
    for entry_id, fields in entries:
        values = dict(zip(fields[::2], fields[1::2], strict=True))
        if int(values.get(b"x", 0)) <= now_ms:
            continue
        offset = int(_text(entry_id).partition("-")[0])
        pubs.append(Publication(channel, offset, epoch, bytes(values[b"d"]), int(values.get(b"t", 0))))
    return pubs
