"""`RedisBroker`: the `Broker` shared by every node through one Redis.

Layout (``P`` is the broker's prefix, ``c`` the channel)::

    P{c}:meta      HASH  o = last offset, e = epoch          (TTL: meta_ttl, refreshed on publish)
    P{c}:history   STREAM  id "<offset>-0", fields d = data, x = expiry (Redis ms)   (TTL: history ttl)
    P{c}:pub       pub/sub channel; message = b"<offset>\\0<epoch>\\0<channel>\\0<data>"

`publish` is one Lua script (``_PUBLISH``): it creates the epoch if the meta hash is missing (a random value
passed in; the stale stream is deleted with it, since its offsets belong to the old epoch), increments the
offset, XADDs with exact ``MAXLEN size``, trims entries whose expiry passed (XTRIM MINID on the head), refreshes
both TTLs and PUBLISHes the envelope — all atomically, so PUBLISH order is offset order. Time comes from Redis
(``TIME``), so every node agrees on what has expired. `history` and `position` are a second script that also
creates a missing epoch, so a subscriber's first position and the first publication share one epoch.

One long-lived pub/sub connection per broker reads messages and calls the handler. When it drops, the reader
reconnects with exponential backoff and jitter (capped at ``reconnect_max_delay``), resubscribes to every
channel, waits for the confirmations and then awaits the reconnect handler so the hub can fill gaps from
history. A PING every ``ping_interval`` seconds of silence detects half-open connections.

Redis Cluster: every key of a channel carries the hash tag ``{c}``, so meta, stream and the pub/sub channel
of one channel map to one slot, and both scripts touch a single slot (the prefix must not contain ``{``).
Sharded pub/sub plugs in at two places: the script's ``redis.call('publish', ...)`` becomes ``spublish`` (same
slot as the keys), and `_PubSubReader` becomes one reader per shard sending SSUBSCRIBE/SUNSUBSCRIBE for the
channels whose slot that shard owns and handling ``smessage`` pushes (and ``-MOVED``/``sunsubscribe`` on
resharding by resubscribing on the new owner, then calling the reconnect handler as after a reconnect).
Nothing else changes: offsets, epochs and recovery are per channel, and a channel never spans slots.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import secrets
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from channels.broker import (
    BrokerUnavailable,
    HistoryOptions,
    HistoryResult,
    Publication,
    PublicationHandler,
    ReconnectHandler,
    StreamPosition,
)

logger = logging.getLogger(__name__)

_PUBLISH = """
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
redis.call('xadd', KEYS[2], 'MAXLEN', ARGV[2], offset .. '-0', 'd', ARGV[1], 'x', string.format('%d', now + ttl))
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
redis.call('publish', ARGV[6], offset .. '\\0' .. epoch .. '\\0' .. ARGV[7] .. '\\0' .. ARGV[1])
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
        ping_interval_seconds: float = 5.0,
        reconnect_base_delay: float = 0.05,
        reconnect_max_delay: float = 2.0,
        subscribe_timeout_seconds: float = 5.0,
        socket_timeout_seconds: float = 5.0,
    ) -> None:
        """Args:
        url: ``redis://`` or ``rediss://`` URL.
        prefix: prepended to every key and pub/sub channel (must not contain ``{``).
        meta_ttl_seconds: an idle channel's offset and epoch are forgotten after this long (at least twice
            the history ttl), after which clients get ``reload``.
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
        self._redis: Redis = Redis.from_url(
            url,
            socket_timeout=socket_timeout_seconds,
            socket_connect_timeout=socket_timeout_seconds,
            retry=Retry(NoBackoff(), 0),
        )
        self._publish_script = self._redis.register_script(_PUBLISH)
        self._history_script = self._redis.register_script(_HISTORY)
        self._reader = _PubSubReader(
            self._redis,
            prefix,
            ping_interval=ping_interval_seconds,
            base_delay=reconnect_base_delay,
            max_delay=reconnect_max_delay,
            subscribe_timeout=subscribe_timeout_seconds,
            socket_timeout=socket_timeout_seconds,
        )

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

    async def publish(self, channel: str, data: bytes, history: HistoryOptions | None) -> StreamPosition:
        pubsub_name = self._reader.pubsub_name(channel)
        try:
            if history is None:
                envelope = b"0\x00\x00" + channel.encode() + b"\x00" + data
                await self._redis.publish(pubsub_name, envelope)
                return StreamPosition(0, "")
            if history.size < 1 or history.ttl_seconds <= 0:
                raise ValueError("history needs size >= 1 and ttl_seconds > 0")
            ttl_ms = max(1, math.ceil(history.ttl_seconds * 1000))
            meta_ttl_ms = max(2 * ttl_ms, math.ceil(self._meta_ttl_seconds * 1000))
            reply = await self._publish_script(
                keys=self._keys(channel),
                args=[data, history.size, ttl_ms, meta_ttl_ms, _new_epoch(), pubsub_name, channel],
            )
        except RedisError as exc:
            raise BrokerUnavailable(f"publish to {channel!r} failed: {exc}") from exc
        offset, epoch = reply
        return StreamPosition(int(offset), _text(epoch))

    async def subscribe(self, channel: str) -> None:
        await self._reader.subscribe(channel)

    async def unsubscribe(self, channel: str) -> None:
        await self._reader.unsubscribe(channel)

    async def history(self, channel: str, since: StreamPosition | None, limit: int) -> HistoryResult:
        since_offset = -1 if since is None else since.offset
        since_epoch = "" if since is None else since.epoch
        try:
            reply = await self._history_script(
                keys=self._keys(channel),
                args=[
                    since_offset,
                    max(1, limit),
                    since_epoch,
                    _new_epoch(),
                    max(1, math.ceil(self._meta_ttl_seconds * 1000)),
                ],
            )
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
        pubs.append(Publication(channel, offset, epoch, bytes(values[b"d"])))
    return pubs


class _PubSubReader:
    """The broker's single pub/sub connection: subscriptions, message dispatch, reconnection."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        ping_interval: float,
        base_delay: float,
        max_delay: float,
        subscribe_timeout: float,
        socket_timeout: float,
    ) -> None:
        self.handler: PublicationHandler | None = None
        self.reconnect_handler: ReconnectHandler | None = None
        self._redis = redis
        self._prefix = prefix
        self._ping_interval = ping_interval
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._subscribe_timeout = subscribe_timeout
        self._socket_timeout = socket_timeout
        # pub/sub name (bytes) -> channel, for every channel this process wants.
        self._wanted: dict[bytes, str] = {}
        self._confirmations: dict[bytes, list[asyncio.Future[None]]] = {}
        self._conn: AbstractConnection | None = None
        self._send_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._after_reconnect: asyncio.Task[None] | None = None
        self._closed = False

    def pubsub_name(self, channel: str) -> str:
        return f"{self._prefix}{{{channel}}}:pub"

    def start(self) -> None:
        if self._task is None:
            self._closed = False
            self._task = asyncio.get_running_loop().create_task(self._run(), name="tandem-redis-pubsub")

    async def close(self) -> None:
        self._closed = True
        for task in (self._task, self._after_reconnect):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._task = self._after_reconnect = None
        for futures in self._confirmations.values():
            for future in futures:
                future.cancel()
        self._confirmations.clear()

    async def subscribe(self, channel: str) -> None:
        name = self.pubsub_name(channel).encode()
        self._wanted[name] = channel
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._confirmations.setdefault(name, []).append(future)
        # Not connected: the reader subscribes to everything wanted when it (re)connects.
        await self._send("SUBSCRIBE", name)
        try:
            async with asyncio.timeout(self._subscribe_timeout):
                await future
        except TimeoutError as exc:
            raise BrokerUnavailable(f"subscribing to {channel!r} timed out") from exc
        finally:
            waiting = self._confirmations.get(name)
            if waiting is not None and future in waiting:
                waiting.remove(future)
                if not waiting:
                    del self._confirmations[name]

    async def unsubscribe(self, channel: str) -> None:
        name = self.pubsub_name(channel).encode()
        if self._wanted.pop(name, None) is not None:
            await self._send("UNSUBSCRIBE", name)

    async def _send(self, *args: Any) -> None:
        conn = self._conn
        if conn is None or not conn.is_connected:
            return
        async with self._send_lock:
            try:
                await conn.send_command(*args, check_health=False)
            except (RedisError, OSError):
                # The reader sees the broken connection too and resubscribes everything on reconnect.
                logger.debug("pub/sub send failed", exc_info=True)

    def _new_connection(self) -> AbstractConnection:
        pool = self._redis.connection_pool
        kwargs = dict(pool.connection_kwargs)
        # RESP2: pub/sub messages arrive as plain arrays on this dedicated connection.
        kwargs.update(protocol=2, socket_timeout=self._socket_timeout, retry=Retry(NoBackoff(), 0))
        # Maintenance push notifications need RESP3; this connection only ever reads pub/sub messages.
        kwargs.pop("maint_notifications_pool_handler", None)
        kwargs["maint_notifications_config"] = None
        conn: AbstractConnection = pool.connection_class(**kwargs)
        return conn

    async def _run(self) -> None:
        attempt = 0
        connected_before = False
        while not self._closed:
            conn = self._new_connection()
            try:
                await conn.connect()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
                self._conn = conn
                names = list(self._wanted)
                if names:
                    await conn.send_command("SUBSCRIBE", *names, check_health=False)
                if connected_before:
                    self._schedule_reconnect_handler(names)
                connected_before = True
                attempt = 0
                await self._read_loop(conn)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                logger.warning("redis pub/sub connection lost: %s", exc)
            except Exception:
                # Anything else (a protocol surprise, a bug) must not end the reader: log, reconnect.
                logger.exception("redis pub/sub reader failed; reconnecting")
            finally:
                self._conn = None
                await conn.disconnect(nowait=True)
            if self._closed:
                return
            # Exponential backoff with "equal jitter": nodes restarted together spread out, yet never retry
            # sooner than half the current delay.
            delay = min(self._max_delay, self._base_delay * 2**attempt)
            attempt += 1
            await asyncio.sleep(delay / 2 + random.uniform(0, delay / 2))

    async def _read_loop(self, conn: AbstractConnection) -> None:
        ping_outstanding = False
        while True:
            reply = await conn.read_response(timeout=self._ping_interval)
            if reply is None:
                if ping_outstanding:
                    raise RedisTimeoutError("pub/sub connection did not answer PING")
                await self._send("PING")
                ping_outstanding = True
                continue
            ping_outstanding = False
            self._dispatch(reply)

    def _dispatch(self, reply: Any) -> None:
        if not isinstance(reply, list) or len(reply) < 2:
            return
        kind = reply[0]
        if kind == b"message" and len(reply) == 3:
            name, payload = reply[1], reply[2]
            if name in self._wanted and self.handler is not None:
                pub = _parse_envelope(payload)
                if pub is not None:
                    self.handler(pub)
        elif kind == b"subscribe":
            for future in self._confirmations.pop(reply[1], []):
                if not future.done():
                    future.set_result(None)

    def _schedule_reconnect_handler(self, names: list[bytes]) -> None:
        loop = asyncio.get_running_loop()
        futures = []
        for name in names:
            future: asyncio.Future[None] = loop.create_future()
            self._confirmations.setdefault(name, []).append(future)
            futures.append(future)
        if self._after_reconnect is not None:
            self._after_reconnect.cancel()
        self._after_reconnect = loop.create_task(self._after_resubscribed(futures))

    async def _after_resubscribed(self, futures: list[asyncio.Future[None]]) -> None:
        try:
            async with asyncio.timeout(self._subscribe_timeout):
                await asyncio.gather(*futures)
        except TimeoutError:
            logger.warning("resubscribe not confirmed in time; the next reconnect retries")
            return
        handler = self.reconnect_handler
        if handler is not None:
            try:
                await handler()
            except Exception:
                logger.exception("reconnect handler failed")


def _parse_envelope(payload: bytes) -> Publication | None:
    parts = payload.split(b"\x00", 3)
    if len(parts) != 4:
        logger.error("malformed pub/sub envelope (%d bytes)", len(payload))
        return None
    offset, epoch, channel, data = parts
    return Publication(channel.decode(), int(offset), epoch.decode(), data)
