"""`PubSubReader`: one long-lived Redis pub/sub connection of the Redis broker — subscriptions, message dispatch,
reconnection.

The reader sends SUBSCRIBE/UNSUBSCRIBE (plain pub/sub on one Redis) or SSUBSCRIBE/SUNSUBSCRIBE (sharded pub/sub on
one Redis Cluster primary; ``channels/backends/redis_cluster.py`` runs one reader per shard). Messages carry the
envelope ``b"<offset>\\0<epoch>\\0<channel>\\0<data>"`` and are handed to ``handler`` in the order Redis sent them.

When the connection drops, the reader reconnects with exponential backoff and jitter (capped at ``max_delay``),
resubscribes to every wanted channel, waits for the confirmations and then awaits ``reconnect_handler`` so the hub
can fill gaps from history. A PING after ``ping_interval`` seconds of silence detects half-open connections.

A sharded reader also reports, through ``on_lost``, that its shard may no longer own some of its channels: a
``-MOVED`` answer to SSUBSCRIBE, an ``sunsubscribe`` the reader did not ask for (Redis sends one to every
subscriber of a slot that migrated), or a connection that keeps failing (a failover may have moved the shard).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MovedError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from channels.broker import BrokerUnavailable, Publication, PublicationHandler, ReconnectHandler

logger = logging.getLogger(__name__)

# A shard whose connection failed this many times in a row is reported through `on_lost`.
_FAILURES_BEFORE_LOST = 3


class SlotMoved(BrokerUnavailable):
    """The shard answered that it does not serve the channel's hash slot (``-MOVED``); ask the new owner."""


class Subscriber(Protocol):
    """What the broker asks of its pub/sub side: `PubSubReader` on one Redis, `ShardedSubscriber` on a cluster."""

    handler: PublicationHandler | None
    reconnect_handler: ReconnectHandler | None

    def start(self) -> None: ...

    async def close(self) -> None: ...

    async def subscribe(self, channel: str) -> None: ...

    async def unsubscribe(self, channel: str) -> None: ...


def dedicated_connection(
    connection_class: type[AbstractConnection], connection_kwargs: Mapping[str, Any], socket_timeout: float
) -> Callable[[], AbstractConnection]:
    """A factory of connections like a pool's (or a cluster node's), for a reader's own use: RESP2 (pub/sub messages
    arrive as plain arrays), no retries (the reader reconnects itself) and no maintenance push notifications (those
    need RESP3)."""
    kwargs = dict(connection_kwargs)
    kwargs.update(protocol=2, socket_timeout=socket_timeout, retry=Retry(NoBackoff(), 0))
    kwargs.pop("maint_notifications_pool_handler", None)
    kwargs["maint_notifications_config"] = None
    return lambda: connection_class(**kwargs)


def pubsub_name(prefix: str, channel: str) -> str:
    """The Redis pub/sub channel of ``channel``: hash-tagged, so it shares a slot with the channel's keys."""
    return f"{prefix}{{{channel}}}:pub"


@dataclass(frozen=True, slots=True)
class _Verbs:
    subscribe: str
    unsubscribe: str
    message: bytes
    subscribed: bytes
    unsubscribed: bytes


_PLAIN = _Verbs("SUBSCRIBE", "UNSUBSCRIBE", b"message", b"subscribe", b"unsubscribe")
_SHARDED = _Verbs("SSUBSCRIBE", "SUNSUBSCRIBE", b"smessage", b"ssubscribe", b"sunsubscribe")


class PubSubReader:
    """One pub/sub connection: the channels this process wants on it, dispatch, reconnection."""

    def __init__(
        self,
        connect: Callable[[], AbstractConnection],
        prefix: str,
        *,
        sharded: bool,
        ping_interval: float,
        base_delay: float,
        max_delay: float,
        subscribe_timeout: float,
        name: str = "tandem-redis-pubsub",
    ) -> None:
        """Args:
        connect: makes a new, unconnected RESP2 connection to the server (or shard) this reader reads.
        prefix: the broker's key prefix.
        sharded: SSUBSCRIBE (a Redis Cluster shard) instead of SUBSCRIBE.
        ping_interval: silence after which the connection is pinged; no answer within another interval is a loss.
        base_delay: first reconnect delay; doubles per failed attempt.
        max_delay: cap of the reconnect backoff.
        subscribe_timeout: how long `subscribe` waits for the confirmation.
        name: the reader task's name.
        """
        self.handler: PublicationHandler | None = None
        self.reconnect_handler: ReconnectHandler | None = None
        self.on_lost: Callable[[], None] | None = None
        self._connect = connect
        self._prefix = prefix
        self._verbs = _SHARDED if sharded else _PLAIN
        self._ping_interval = ping_interval
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._subscribe_timeout = subscribe_timeout
        self._name = name
        # pub/sub name (bytes) -> channel, for every channel this process wants on this connection.
        self._wanted: dict[bytes, str] = {}
        self._confirmations: dict[bytes, list[asyncio.Future[None]]] = {}
        self._conn: AbstractConnection | None = None
        self._send_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._after_reconnect: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def wanted(self) -> dict[bytes, str]:
        """The channels this reader keeps subscribed, by pub/sub name."""
        return self._wanted

    def start(self) -> None:
        if self._task is None:
            self._closed = False
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self._name)

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
        """Want ``channel`` and wait for Redis to confirm.

        Raises:
            SlotMoved: a sharded reader's shard does not own the channel's slot (the channel is no longer wanted).
            BrokerUnavailable: no confirmation within the subscribe timeout.
        """
        name = pubsub_name(self._prefix, channel).encode()
        self._wanted[name] = channel
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._confirmations.setdefault(name, []).append(future)
        # Not connected: the reader subscribes to everything wanted when it (re)connects.
        await self._send(self._verbs.subscribe, name)
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
        await self.forget(pubsub_name(self._prefix, channel).encode())

    async def forget(self, name: bytes) -> str | None:
        """Stop wanting the pub/sub channel ``name``; return its channel if it was wanted."""
        channel = self._wanted.pop(name, None)
        if channel is not None:
            await self._send(self._verbs.unsubscribe, name)
        return channel

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

    async def _resubscribe(self, conn: AbstractConnection, names: list[bytes]) -> None:
        if not names:
            return
        if self._verbs is _PLAIN:
            await conn.send_command("SUBSCRIBE", *names, check_health=False)
            return
        # SSUBSCRIBE takes channels of one slot only: one command per channel, written in one go.
        commands = [("SSUBSCRIBE", name) for name in names]
        await conn.send_packed_command(conn.pack_commands(commands), check_health=False)

    async def _run(self) -> None:
        attempt = 0
        connected_before = False
        while not self._closed:
            conn = self._connect()
            try:
                await conn.connect()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
                self._conn = conn
                names = list(self._wanted)
                await self._resubscribe(conn, names)
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
            attempt += 1
            if attempt >= _FAILURES_BEFORE_LOST and self.on_lost is not None:
                self.on_lost()
            # Exponential backoff with "equal jitter": nodes restarted together spread out, yet never retry
            # sooner than half the current delay.
            delay = min(self._max_delay, self._base_delay * 2 ** (attempt - 1))
            await asyncio.sleep(delay / 2 + random.uniform(0, delay / 2))

    async def _read_loop(self, conn: AbstractConnection) -> None:
        ping_outstanding = False
        while True:
            try:
                reply = await conn.read_response(timeout=self._ping_interval)
            except ResponseError as exc:
                # An error answer to one of our commands; the connection itself is fine.
                self._refused(exc)
                continue
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
        kind, verbs = reply[0], self._verbs
        if kind == verbs.message and len(reply) == 3:
            name, payload = reply[1], reply[2]
            if name in self._wanted and self.handler is not None:
                pub = parse_envelope(payload)
                if pub is not None:
                    self.handler(pub)
        elif kind == verbs.subscribed:
            for future in self._confirmations.pop(reply[1], []):
                if not future.done():
                    future.set_result(None)
        elif kind == verbs.unsubscribed and verbs is _SHARDED and reply[1] in self._wanted:
            # Not asked for: the slot moved to another shard (resharding, failover).
            logger.warning("shard dropped %r (slot moved)", reply[1])
            self._report_lost()

    def _refused(self, exc: ResponseError) -> None:
        if isinstance(exc, MovedError):
            for name in [n for n in self._confirmations if key_slot(n) == exc.slot_id]:
                self._wanted.pop(name, None)
                for future in self._confirmations.pop(name):
                    if not future.done():
                        future.set_exception(SlotMoved(f"slot {exc.slot_id} is served by {exc.host}:{exc.port}"))
        else:
            logger.warning("redis refused a pub/sub command: %s", exc)
        self._report_lost()

    def _report_lost(self) -> None:
        if self.on_lost is not None:
            self.on_lost()

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
        except SlotMoved:
            return  # the cluster subscriber re-routes the moved channels and runs the handler itself
        handler = self.reconnect_handler
        if handler is not None:
            try:
                await handler()
            except Exception:
                logger.exception("reconnect handler failed")


def parse_envelope(payload: bytes) -> Publication | None:
    """Inverse of the envelope the publish script sends; None (logged) when malformed."""
    parts = payload.split(b"\x00", 4)
    if len(parts) != 5:
        logger.error("malformed pub/sub envelope (%d bytes)", len(payload))
        return None
    offset, epoch, ts, channel, data = parts
    return Publication(channel.decode(), int(offset), epoch.decode(), data, int(ts))
