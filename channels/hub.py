"""`Hub`: the transport-independent real-time hub — connections, subscriptions, local fan-out, recovery.

One hub per process. It reference-counts local subscribers and asks the `Broker` to subscribe once per channel
(10,000 local subscribers on a channel are one broker subscription). A publication from the broker is encoded
once and enqueued on every local subscriber's `Connection` (O(1) each, no task per subscriber); ordering, gap
filling and recovery live in `channels.channel.LocalChannel`; presence duties in `channels.hub_presence`.

The server adapter's whole job is::

    conn = Connection(AsgiTransport(websocket, send), principal=user)
    await hub.serve(conn, websocket.iter_text())

`Hub.serve` is the one place a `ConnectionClosedError` becomes a close frame.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterable, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from channels import metrics
from channels.broker import (
    BatchPublisher,
    Broker,
    BrokerUnavailable,
    HistoryOptions,
    HistoryResult,
    Publishing,
    StreamPosition,
    publish_one_by_one,
)
from channels.channel import LocalChannel
from channels.connection import Connection, Subscription
from channels.hub_presence import Describe, HubPresence, default_describe
from channels.loops import Clock, Loop
from channels.presence import PresenceInfo, PresenceManager
from channels.protocol import (
    CloseCode,
    ConnectionClosedError,
    ErrorCode,
    Ping,
    PresenceList,
    ProtocolError,
    SetPresence,
    Subscribe,
    Unsubscribe,
    encode_ack,
    encode_error,
    encode_payload,
    encode_pong,
    encode_presence_list,
    encode_unsubscribed,
    is_valid_channel,
    parse_client_frame,
)
from channels.registry import ChannelRegistry
from channels.replay import Replay

logger = logging.getLogger(__name__)

Authorize = Callable[[object, str], Awaitable[bool]]
PresencePolicy = Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class HubSettings:
    """Hub-wide limits and policies.

    Attributes:
        history: history bounds used by `Hub.publish` unless overridden per call.
        recovery_limit: most publications replayed on subscribe or read per gap-fill page; a client that
            missed more gets ``reload``. Keep it below `ConnectionLimits.max_queue_messages`.
        presence_prefixes: channels starting with one of these have presence (unless a ``presence_enabled``
            callback is given to the hub).
        presence_ttl_seconds: presence entries expire this long after their last heartbeat (every ttl/3); at the
            next heartbeat a node with subscribers on the channel claims them and announces ``left``.
        presence_flush_seconds: a socket gets at most one ``presence_diff`` per room per this period (the
            first change after a quiet period goes out at once).
        max_presence_bytes: largest client-set presence ``data`` (encoded).
        max_publication_bytes: largest publication `Hub.publish` accepts.
        idle_timeout_seconds: close with ``TIMEOUT`` a connection that sent no frame for this long (clients
            ping); None disables.
        catch_up_timeout_seconds: how long a subscribe waits for this node to catch up with a client that has
            seen more than the node delivered (the client came from a faster node) before answering ``reload``.
        housekeeping_interval_seconds: period of the idle/heartbeat sweep.
        sync_concurrency: concurrent history reads when many channels need gap-filling (after a reconnect).
    """

    history: HistoryOptions = field(default_factory=lambda: HistoryOptions(size=1000, ttl_seconds=600.0))
    recovery_limit: int = 1000
    presence_prefixes: tuple[str, ...] = ()
    presence_ttl_seconds: float = 30.0
    presence_flush_seconds: float = 0.2
    max_presence_bytes: int = 4096
    max_publication_bytes: int = 256 * 1024
    idle_timeout_seconds: float | None = None
    catch_up_timeout_seconds: float = 5.0
    housekeeping_interval_seconds: float = 1.0
    sync_concurrency: int = 32


class Hub:
    """Registry of connections and local fan-out of broker publications.

    Guarantees:
        - One broker subscription per channel per process while it has local subscribers.
        - Each subscriber receives a channel's events in offset order, each at most once; a gap (lost
          broker messages) is filled from history, or answered with a ``reload`` frame when history no longer
          reaches back.
        - A subscribe with ``since`` gets every event after ``since`` exactly once before live events, or
          ``reload=true``.
        - No client can block the hub: slow clients are closed with ``SLOW_CONSUMER``.
    """

    def __init__(
        self,
        broker: Broker,
        presence: PresenceManager | None = None,
        *,
        authorize: Authorize,
        settings: HubSettings | None = None,
        presence_enabled: PresencePolicy | None = None,
        describe: Describe | None = None,
        clock: Clock | None = None,
    ) -> None:
        """Args:
        broker: the broker (started and closed by the owner).
        presence: presence store; None disables presence everywhere.
        authorize: ``await authorize(principal, channel)`` decides each subscribe.
        settings: limits and policies.
        presence_enabled: which channels have presence (default: `HubSettings.presence_prefixes`).
        describe: builds a connection's presence entry (user id, name, role) from its principal.
        clock: time for the presence flush loop (tests drive a `channels.loops.ManualClock`).
        """
        self.settings = settings or HubSettings()
        self._broker = broker
        # Asked once: an isinstance check against a runtime-checkable Protocol inspects the broker's attributes on
        # every call (~20 us), and a task move publishes once.
        self._batches = isinstance(broker, BatchPublisher)
        self._authorize = authorize
        self._presence = (
            HubPresence(
                presence,
                broker,
                self.settings.presence_ttl_seconds,
                describe or default_describe,
                flush_seconds=self.settings.presence_flush_seconds,
                clock=clock,
            )
            if presence is not None
            else None
        )
        prefixes = self.settings.presence_prefixes
        self._connections: dict[str, Connection] = {}
        presence_on = presence_enabled or (lambda channel: channel.startswith(prefixes))
        self._registry = ChannelRegistry(
            broker,
            recovery_limit=self.settings.recovery_limit,
            sync_concurrency=self.settings.sync_concurrency,
            presence_enabled=lambda channel: self._presence is not None and presence_on(channel),
            on_presence=self._presence.changed if self._presence is not None else lambda ch: None,
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        # Idle timeouts and presence heartbeats; a failed sweep is logged and the next one runs on time.
        self.housekeeping = Loop(
            "tandem-hub-housekeeping", self._housekeep, interval=self.settings.housekeeping_interval_seconds
        )
        self._next_heartbeat: float | None = None
        metrics.SUBSCRIPTIONS.set_function(lambda: sum(len(c.subscriptions) for c in self._connections.values()))
        metrics.QUEUE_DEPTH_MAX.set_function(
            lambda: max((c.queued_messages for c in self._connections.values()), default=0)
        )
        self._closing = False

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Attach to the broker and start housekeeping (idle timeouts, presence heartbeats)."""
        self._broker.set_handler(self._registry.on_publication)
        self._broker.set_reconnect_handler(self._on_broker_reconnect)
        self.housekeeping.start()
        if self._presence is not None:
            self._presence.flusher.start()

    async def close(self) -> None:
        """Close every connection with ``GOING_AWAY``, remove their presence, stop background tasks.

        The broker itself is left to its owner.
        """
        self._closing = True
        self._broker.set_reconnect_handler(None)
        await self.housekeeping.stop()
        if self._presence is not None:
            await self._presence.flusher.stop()
        conns = list(self._connections.values())
        for conn in conns:
            conn.abort(CloseCode.GOING_AWAY, "server shutting down", flush=True)
        await asyncio.gather(*(self.disconnect(conn) for conn in conns), return_exceptions=True)
        async with asyncio.timeout(10):
            await asyncio.gather(*(conn.wait_closed() for conn in conns), return_exceptions=True)
        for task in self._tasks:
            task.cancel()
        async with asyncio.timeout(10):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._registry.close()

    # -- connections -------------------------------------------------------------------------------------

    def connect(self, conn: Connection) -> None:
        """Register ``conn`` and start its writer. Its subscriptions are cleaned up when it closes."""
        if self._closing:
            conn.abort(CloseCode.GOING_AWAY, "server shutting down")
            return
        self._connections[conn.id] = conn
        metrics.CONNECTIONS.inc()
        conn.start()
        conn.add_close_callback(self._on_connection_closed)

    async def disconnect(self, conn: Connection) -> None:
        """Unregister ``conn``: drop its subscriptions and presence, close it (``NORMAL``) if still open.

        Idempotent.
        """
        if self._connections.pop(conn.id, None) is None:
            return
        metrics.CONNECTIONS.dec()
        if not conn.closed:
            conn.abort(CloseCode.NORMAL, "")
        subs = list(conn.subscriptions.values())
        conn.subscriptions.clear()
        leaving = [(sub.channel, info) for sub in subs if (info := self._detach(conn, sub)) is not None]
        if self._presence is not None and leaving:
            presence = self._presence
            await asyncio.gather(*(presence.leave(channel, info) for channel, info in leaving))

    async def serve(self, conn: Connection, frames: AsyncIterable[str]) -> None:
        """Run one connection: register it, handle its frames until it ends, clean up.

        This is the one place a `ConnectionClosedError` (rate limit, oversized frame) becomes a close frame.
        Returns when the client disconnected or the connection was closed.
        """
        self.connect(conn)
        try:
            async for text in frames:
                await self.handle_frame(conn, text)
                if conn.closed:
                    break
        except ConnectionClosedError as exc:
            logger.info("closing connection %s: %s", conn.id, exc, exc_info=True)
            conn.abort(exc.code, exc.reason, flush=True)
        except Exception:
            logger.exception("connection %s failed", conn.id)
            conn.abort(CloseCode.INTERNAL, "internal error")
        finally:
            await self.disconnect(conn)

    @property
    def connections(self) -> list[Connection]:
        """Registered connections."""
        return list(self._connections.values())

    def local_subscribers(self, channel: str) -> int:
        """Number of live local subscribers of ``channel``."""
        ch = self._registry.get(channel)
        return len(ch.subscribers) if ch is not None else 0

    # -- frames --------------------------------------------------------------------------------------------

    async def handle_frame(self, conn: Connection, text: str) -> None:
        """Handle one client frame; replies are queued on ``conn``.

        Frames that cannot be served get an ``error`` frame and the connection stays open.

        Raises:
            ConnectionClosedError: the frame is too big (``MESSAGE_TOO_BIG``) or the client exceeds its frame
                rate (``RATE_LIMITED``); the caller must close the connection with the error's code
                (`serve` does).
        """
        if len(text) > conn.limits.max_frame_bytes:
            raise ConnectionClosedError(CloseCode.MESSAGE_TOO_BIG, "frame too big")
        if not conn.allow_frame():
            raise ConnectionClosedError(CloseCode.RATE_LIMITED, "too many frames")
        try:
            frame = parse_client_frame(text)
            match frame:
                case Ping():
                    conn.enqueue(encode_pong(frame.id))
                case Subscribe():
                    await self._subscribe(conn, frame)
                case Unsubscribe():
                    await self._unsubscribe(conn, frame)
                case SetPresence():
                    await self._set_presence(conn, frame)
                case PresenceList():
                    await self._presence_list(conn, frame)
        except ProtocolError as exc:
            conn.enqueue(encode_error(exc.frame_id, exc.code, exc.message))

    async def _subscribe(self, conn: Connection, frame: Subscribe) -> None:
        name = frame.channel
        if name in conn.subscriptions:
            raise ProtocolError(ErrorCode.ALREADY_SUBSCRIBED, "already subscribed", frame.id)
        if len(conn.subscriptions) >= conn.limits.max_subscriptions:
            raise ProtocolError(ErrorCode.TOO_MANY_SUBSCRIPTIONS, "too many subscriptions", frame.id)
        # Reserve first, so a kick during the awaits below finds and cancels this subscription.
        sub = conn.subscriptions[name] = Subscription(name)
        try:
            allowed = await self._authorize(conn.principal, name)
        except Exception:
            logger.exception("authorize(%r) failed", name)
            self._drop_reservation(conn, sub)
            raise ProtocolError(ErrorCode.INTERNAL, "authorization failed", frame.id) from None
        if not self._is_current(conn, sub):
            return
        if not allowed:
            self._drop_reservation(conn, sub)
            raise ProtocolError(ErrorCode.FORBIDDEN, "not allowed to subscribe", frame.id)
        try:
            ch = await self._registry.acquire(name)
        except BrokerUnavailable:
            self._drop_reservation(conn, sub)
            raise ProtocolError(ErrorCode.UNAVAILABLE, "channel temporarily unavailable", frame.id) from None
        if not self._is_current(conn, sub):
            self._registry.release(ch)
            return
        sub.local = ch
        ch.begin_recovery(conn)
        history: HistoryResult | None = None
        frames: Mapping[int, str] | None = None
        if frame.since is not None:
            try:
                history, frames = await self._read_missed(ch, frame.since)
            except BrokerUnavailable:
                if self._is_current(conn, sub):
                    self._drop_reservation(conn, sub)
                raise ProtocolError(ErrorCode.UNAVAILABLE, "history temporarily unavailable", frame.id) from None
        if not self._is_current(conn, sub):
            return
        if history is not None:
            (metrics.RECOVERED if history.recoverable else metrics.RELOADED).inc()
        for text in ch.finish_recovery(conn, frame.id, frame.since, history, frames):
            conn.enqueue(text)
        sub.live = True
        if ch.presence and self._presence is not None:
            try:
                await self._presence.ready(ch)  # this node's picture of the room, before the socket asks for it
            except BrokerUnavailable:
                logger.warning("presence of %s not loaded; loaded when next asked", name, exc_info=True)
            if self._is_current(conn, sub):
                await self._presence.join(conn, sub)

    async def _read_missed(
        self, ch: LocalChannel, since: StreamPosition
    ) -> tuple[HistoryResult, Mapping[int, str] | None]:
        """History after ``since`` for a subscriber that just began recovering on ``ch`` (no await in between), with
        its events encoded, by offset, when they come from a `Replay` shared with the others resuming meanwhile."""
        delivered = ch.position
        if since.epoch == delivered.epoch and since.offset <= delivered.offset:
            replay = ch.replay
            if replay is None or not replay.serves(since, delivered):
                read = self._broker.history(ch.name, since, self.settings.recovery_limit)
                replay = ch.replay = Replay(since, delivered, asyncio.ensure_future(read))
            history = await replay.history()
            if replay.covers(since):
                return history, replay.frames()
            if replay.since == since:
                return history, None
        history = await self._broker.history(ch.name, since, self.settings.recovery_limit)
        if history.recoverable and since.epoch == ch.epoch and since.offset > ch.offset:
            # The client saw more than this node delivered so far: wait for this node to catch up.
            self._registry.request_sync(ch)
            try:
                async with asyncio.timeout(self.settings.catch_up_timeout_seconds):
                    await ch.wait_for(since.offset)
            except TimeoutError:
                logger.warning("channel %s did not catch up to %d", ch.name, since.offset)
        return history, None

    async def _unsubscribe(self, conn: Connection, frame: Unsubscribe) -> None:
        sub = conn.subscriptions.get(frame.channel)
        if sub is None:
            raise ProtocolError(ErrorCode.NOT_SUBSCRIBED, "not subscribed", frame.id)
        del conn.subscriptions[frame.channel]
        info = self._detach(conn, sub)
        conn.enqueue(encode_unsubscribed(frame.id, frame.channel))
        if info is not None and self._presence is not None:
            await self._presence.leave(frame.channel, info)

    def _live_presence(self, conn: Connection, channel: str, frame_id: int | None) -> Subscription:
        sub = conn.subscriptions.get(channel)
        if sub is None or not sub.live:
            raise ProtocolError(ErrorCode.NOT_SUBSCRIBED, "not subscribed", frame_id)
        if sub.presence is None or self._presence is None:
            raise ProtocolError(ErrorCode.PRESENCE_DISABLED, "no presence on this channel", frame_id)
        return sub

    async def _set_presence(self, conn: Connection, frame: SetPresence) -> None:
        sub = self._live_presence(conn, frame.channel, frame.id)
        if len(json.dumps(frame.data, separators=(",", ":"))) > self.settings.max_presence_bytes:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "presence data too big", frame.id)
        assert self._presence is not None
        await self._presence.update(sub, frame.data)
        conn.enqueue(encode_ack(frame.id))

    async def _presence_list(self, conn: Connection, frame: PresenceList) -> None:
        sub = self._live_presence(conn, frame.channel, frame.id)
        ch = sub.local
        assert self._presence is not None and ch is not None
        try:
            room = await self._presence.ready(ch)
        except BrokerUnavailable:
            raise ProtocolError(ErrorCode.UNAVAILABLE, "presence temporarily unavailable", frame.id) from None
        if sub.local is not ch:
            raise ProtocolError(ErrorCode.NOT_SUBSCRIBED, "not subscribed", frame.id)
        # Read and queued with no await between: the diffs this socket gets next are the changes after this list.
        clients, truncated = room.listing(frame.limit)
        conn.enqueue(
            encode_presence_list(
                frame.id, frame.channel, clients, count=room.count, users=room.users, truncated=truncated
            )
        )

    # -- server-side actions ---------------------------------------------------------------------------

    async def publish(
        self,
        channel: str,
        payload: dict[str, Any] | bytes,
        *,
        history: HistoryOptions | None = None,
        idempotency_key: str | None = None,
    ) -> StreamPosition:
        """Publish ``payload`` (a JSON object, or its encoding) on ``channel`` to subscribers on every node.

        Args:
            channel: a valid channel name.
            payload: dict (encoded here, once) or JSON-object bytes.
            history: history bounds for this channel; default `HubSettings.history`.
            idempotency_key: the event's stable id: a second publish with it on ``channel`` (within the broker's
                idempotency window) publishes nothing and returns the first one's position (`Broker.publish`).

        Returns:
            The publication's position.

        Raises:
            ValueError: invalid channel name, non-object or oversized payload.
            BrokerUnavailable: the broker could not be reached; applied at most once.
        """
        if not is_valid_channel(channel):
            raise ValueError(f"invalid channel name {channel!r}")
        data = encode_payload(payload)
        if len(data) > self.settings.max_publication_bytes:
            raise ValueError("publication too big")
        position = await self._broker.publish(
            channel, data, history or self.settings.history, idempotency_key=idempotency_key
        )
        metrics.PUBLISHED.inc()
        return position

    async def publish_batch(
        self, items: Sequence[Publishing], *, history: HistoryOptions | None = None
    ) -> list[StreamPosition | None]:
        """Publish ``items`` in order, each as `publish` with its idempotency key; in one round trip when the broker
        can (`BatchPublisher`: Redis), so the batch reaches every node together and is joined per socket there.

        Per channel, the publications made are a prefix of that channel's items.

        Returns:
            Per item, its position, or None if it was not made (a retry of the rest keeps each channel's order).

        Raises:
            ValueError: an invalid channel name, non-object or oversized payload (nothing is published).
            BrokerUnavailable: the broker could not be reached (per channel, any prefix may have been made).
        """
        checked: list[Publishing] = []
        for item in items:
            if not is_valid_channel(item.channel):
                raise ValueError(f"invalid channel name {item.channel!r}")
            data = encode_payload(item.data)
            if len(data) > self.settings.max_publication_bytes:
                raise ValueError("publication too big")
            checked.append(item if data is item.data else Publishing(item.channel, data, item.idempotency_key))
        options = history or self.settings.history
        broker = self._broker
        positions: list[StreamPosition | None]
        if self._batches:
            positions = await cast(BatchPublisher, broker).publish_batch(checked, options)
        else:
            positions = await publish_one_by_one(broker, checked, options)
        metrics.PUBLISHED.inc(sum(p is not None for p in positions))
        return positions

    async def has_subscribers(self, channel: str) -> bool:
        """Whether a socket on any node is subscribed to ``channel`` (may answer True when none is).

        Raises:
            BrokerUnavailable: asking the other nodes failed.
        """
        if self._registry.get(channel) is not None:
            return True
        return await self._broker.has_subscribers(channel)

    async def kick(self, channel: str, predicate: Callable[[Connection], bool], reason: str = "forbidden") -> int:
        """Force-unsubscribe matching connections from ``channel`` (also subscriptions still being set up).

        Each gets ``{"type":"unsubscribed","channel":...,"reason":reason}``; no event published after this
        returns reaches them.

        Returns:
            How many subscriptions were removed.
        """
        targets = [
            (conn, sub)
            for conn in list(self._connections.values())
            if (sub := conn.subscriptions.get(channel)) is not None and predicate(conn)
        ]
        await self._force_unsubscribe(targets, reason)
        return len(targets)

    async def unsubscribe_where(
        self,
        principal_predicate: Callable[[object], bool],
        channel_predicate: Callable[[str], bool],
        reason: str = "forbidden",
    ) -> int:
        """Force-unsubscribe every subscription whose principal and channel both match (e.g. a removed member
        from ``project:12:*``). Same guarantees as `kick`.

        Returns:
            How many subscriptions were removed.
        """
        targets = [
            (conn, sub)
            for conn in list(self._connections.values())
            if principal_predicate(conn.principal)
            for sub in list(conn.subscriptions.values())
            if channel_predicate(sub.channel)
        ]
        await self._force_unsubscribe(targets, reason)
        return len(targets)

    async def _force_unsubscribe(self, targets: list[tuple[Connection, Subscription]], reason: str) -> None:
        leaving = []
        for conn, sub in targets:
            if conn.subscriptions.get(sub.channel) is not sub:
                continue
            del conn.subscriptions[sub.channel]
            info = self._detach(conn, sub)
            conn.enqueue(encode_unsubscribed(None, sub.channel, reason))
            if info is not None:
                leaving.append((sub.channel, info))
        if self._presence is not None and leaving:
            presence = self._presence
            await asyncio.gather(*(presence.leave(channel, info) for channel, info in leaving))

    # -- subscriptions and channel reference counting ----------------------------------------------------

    @staticmethod
    def _is_current(conn: Connection, sub: Subscription) -> bool:
        return not conn.closed and conn.subscriptions.get(sub.channel) is sub

    def _drop_reservation(self, conn: Connection, sub: Subscription) -> None:
        if conn.subscriptions.get(sub.channel) is sub:
            del conn.subscriptions[sub.channel]
        self._detach(conn, sub)

    def _detach(self, conn: Connection, sub: Subscription) -> PresenceInfo | None:
        """Stop delivering ``sub`` to ``conn`` and release its channel reference; return its presence entry."""
        ch, sub.local = sub.local, None
        sub.live = False
        if ch is not None:
            ch.remove(conn)
            self._registry.release(ch)
        info, sub.presence = sub.presence, None
        return info

    # -- housekeeping ------------------------------------------------------------------------------------

    async def _housekeep(self) -> None:
        settings = self.settings
        now = asyncio.get_running_loop().time()  # the clock of `Connection.last_frame_at`
        if self._next_heartbeat is None:
            self._next_heartbeat = now + settings.presence_ttl_seconds / 3
        if settings.idle_timeout_seconds is not None:
            self._close_idle(now - settings.idle_timeout_seconds)
        if self._presence is not None and now >= self._next_heartbeat:
            self._next_heartbeat = now + settings.presence_ttl_seconds / 3
            # Also says goodbye for the entries of nodes that died (each expired entry is claimed once).
            await self._presence.heartbeat(self.connections)

    def _close_idle(self, deadline: float) -> None:
        for conn in list(self._connections.values()):
            if conn.last_frame_at < deadline:
                conn.abort(CloseCode.TIMEOUT, "no frames from client")

    async def _on_broker_reconnect(self) -> None:
        metrics.BROKER_RECONNECTS.inc()
        await self._registry.on_broker_reconnect()
        if self._presence is not None:
            self._spawn(self._presence.heartbeat(self.connections))
            self._spawn(self._presence.reload(self._registry.channels()))

    def _on_connection_closed(self, conn: Connection) -> None:
        # Runs synchronously inside enqueue() during fan-out: never touch subscriber sets here.
        if conn.id in self._connections:
            self._spawn(self.disconnect(conn))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("hub background task failed", exc_info=exc)
