"""One client's socket as the hub sees it: a bounded, coalescing send queue and an incoming-frame rate limit.

The hub never awaits a client. Fan-out calls `Connection.enqueue`, which is O(1): append to a deque and, the
first time in this event-loop turn, put the connection on its loop's `WriteBatcher`. At the start of the next
turn the batcher flushes every connection that received frames: what is queued goes out as one text message
(frames joined by ``"\\n"``, up to ``max_message_bytes``), so a burst costs one WebSocket message per turn rather
than one per frame, and a quiet channel costs one message per event with no task per subscriber. In a sustained
burst of large flushes the batcher waits a few milliseconds longer (`WriteBatcher`), so each message carries more.

The send is started *eagerly*: the transport's ``send_text`` coroutine is stepped in place, and for an ASGI
server whose socket buffer has room (uvicorn's ``send`` awaits nothing then) it completes right there, as
``websockets.broadcast`` writes without a task. Only a send that has to wait for the peer (back-pressure)
becomes a task, and the rest of the queue waits behind it, so order holds.

When the queue would exceed its bounds the client is too slow: the connection is closed with
`CloseCode.SLOW_CONSUMER` and its queue is dropped, so one slow reader neither blocks the hub nor grows memory.

Sizes are counted in ``str`` length, which equals UTF-8 bytes for the ASCII frames `channels.protocol` emits
(publication data containing non-ASCII text is counted per code point, i.e. up to 4x under).
"""

from __future__ import annotations

import asyncio
import secrets
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from channels import metrics
from channels.eager import start_eagerly
from channels.frames import TEXT, websocket_frame
from channels.protocol import CloseCode
from channels.send_queue import SendQueue
from channels.token_bucket import TokenBucket

if TYPE_CHECKING:
    from channels.channel import LocalChannel
    from channels.presence import PresenceInfo


class Transport(Protocol):
    """The socket under a `Connection` (a Starlette or ``websockets`` WebSocket, or a test fake)."""

    async def send_text(self, text: str) -> None:
        """Send one WebSocket text message. May wait for the peer (back-pressure); raises if the socket is gone.

        It should not suspend when the socket can take the message at once: the connection steps it eagerly.
        """

    def write_frame(self, frame: bytes) -> bool:
        """Write ``frame``, one complete text message (``channels.frames.websocket_frame``), to the socket as it is.

        A flush frames each distinct message once for every connection it goes to; a transport that owns its
        socket writes those bytes, skipping its own framing. Returns False when it cannot, or not now
        (back-pressure, closing, compression): the connection then uses `send_text`. Must not suspend.
        """

    async def close(self, code: int, reason: str) -> None:
        """Close the socket with ``code`` and ``reason``. Must return within a bounded time."""


Frames = dict[str | tuple[str, ...], bytes]  # one flush's frames, by message (its parts, when coalesced)


class WriteBatcher:
    """Flushes, once per event-loop turn, every connection that was given frames during the previous turn.

    One per event loop (`for_running_loop`): a publication fanned out to N sockets schedules one callback, not
    N task wake-ups, and publications arriving in the same turn share each socket's message.

    In a burst it waits a little longer, as centrifuge's writers join what queued while they wrote. A burst is
    frames arriving for a large flush (``large`` connections or more) less than ``window`` seconds after the large
    flush before it ended; then the next frames to arrive that soon wait until ``window`` after that flush ended,
    so the publications of the window leave as one message per socket instead of one each (a write per socket is
    most of a delivery's cost). Frames arriving later than the window, as paced publications do (20 a second, each
    flush over in a few milliseconds), turn the burst off and go out at the next turn: they are never held.
    """

    _by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, WriteBatcher] = weakref.WeakKeyDictionary()
    window = 0.020
    large = 100

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._dirty: list[Connection] = []
        # When the last large flush ended, by time.monotonic (uvloop's loop.time stands still within a turn).
        self._large_ended = -float("inf")
        self._marked_at = -float("inf")  # when the frames of the coming flush began to arrive
        self._bursting = False  # the last large flush's frames arrived within the window after the one before

    @classmethod
    def for_running_loop(cls) -> WriteBatcher:
        """The running loop's batcher (created on first use)."""
        loop = asyncio.get_running_loop()
        batcher = cls._by_loop.get(loop)
        if batcher is None:
            batcher = cls._by_loop[loop] = cls(loop)
        return batcher

    def mark(self, conn: Connection) -> None:
        """Flush ``conn`` at the start of the next turn or, in a burst, once the window after the last large flush
        has passed (the caller marks each connection once per flush)."""
        if not self._dirty:
            self._marked_at = now = time.monotonic()
            wait = self._large_ended + self.window - now if self._bursting else 0.0
            if wait > 0:
                self._loop.call_later(wait, self._flush)
            else:
                self._loop.call_soon(self._flush)
        self._dirty.append(conn)

    def _flush(self) -> None:
        dirty, self._dirty = self._dirty, []
        large = len(dirty) >= self.large
        if large:
            self._bursting = self._marked_at - self._large_ended < self.window
        # A publication's frame text is one object shared by its subscribers' queues, so connections that were
        # given the same frames this turn send the same message: it is framed once, here, for all of them. The
        # keys hold the texts, so no key can be confused with another while the flush runs.
        frames: Frames = {}
        for conn in dirty:
            conn._flush(frames)  # the batcher is the connection's other half
        if large:
            self._large_ended = time.monotonic()  # the window counts from here: the writes take most of a window


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Per-connection bounds.

    Attributes:
        max_queue_messages: frames waiting to be sent before the client counts as a slow consumer.
        max_queue_bytes: total size of waiting frames before the client counts as a slow consumer.
        max_message_bytes: a coalesced outgoing message stops growing at this size (one larger frame is sent
            alone).
        max_frame_bytes: largest incoming frame accepted (larger closes with ``MESSAGE_TOO_BIG``).
        max_subscriptions: channels one connection may subscribe to (more gets ``too_many_subscriptions``).
        frames_per_second: sustained incoming frame rate (token bucket refill).
        frame_burst: incoming frames allowed in a burst (token bucket size); exceeding closes with
            ``RATE_LIMITED``.
    """

    max_queue_messages: int = 4096
    max_queue_bytes: int = 4 * 1024 * 1024
    max_message_bytes: int = 256 * 1024
    max_frame_bytes: int = 64 * 1024
    max_subscriptions: int = 512
    frames_per_second: float = 50.0
    frame_burst: int = 100


@dataclass(eq=False, slots=True)
class Subscription:
    """One connection's subscription to one channel, as the hub tracks it.

    Identity matters: a subscription replaced by unsubscribe + subscribe is a different object, which is how a
    subscribe still in progress notices it was cancelled.

    Attributes:
        channel: the channel name.
        live: True once the ``subscribed`` reply was queued and events flow.
        presence: this connection's presence entry on the channel, if presence is enabled there.
        local: the hub's channel state this subscription holds a reference on (None until acquired).
    """

    channel: str
    live: bool = False
    presence: PresenceInfo | None = None
    local: LocalChannel | None = None


class Connection(SendQueue[str]):
    """A client connection: identity, outgoing queue, send path and rate limit.

    Guarantees (besides those of `channels.send_queue.SendQueue`):
        - `enqueue` never blocks and never lets the queue exceed `ConnectionLimits`; overflow closes the
          connection with ``SLOW_CONSUMER``.
        - `abort` drops what is queued unless asked to flush (``flush=False``): a closing client's backlog is
          worthless, and a slow consumer's is what closed it.
    """

    __slots__ = (
        "_batcher",
        "_frames",
        "_marked",
        "_transport",
        "id",
        "last_frame_at",
        "limits",
        "principal",
        "subscriptions",
    )

    _task_prefix = "tandem-conn"

    def __init__(
        self,
        transport: Transport,
        principal: object,
        *,
        limits: ConnectionLimits | None = None,
        connection_id: str | None = None,
    ) -> None:
        """Args:
        transport: the socket.
        principal: who is connected (opaque to the hub; passed to the authorize callback).
        limits: queue, size and rate bounds.
        connection_id: unique id (also the presence ``client_id``); random when omitted.
        """
        self.limits = limits or ConnectionLimits()
        super().__init__(self.limits.max_queue_messages, self.limits.max_queue_bytes)
        self.id = connection_id or secrets.token_hex(8)
        self.principal = principal
        # Hub-managed: this connection's subscriptions by channel (including ones still being set up).
        self.subscriptions: dict[str, Subscription] = {}
        self._transport = transport
        self._batcher: WriteBatcher | None = None
        self._marked = False  # on the batcher for this turn
        self._frames = TokenBucket(self.limits.frames_per_second, self.limits.frame_burst)
        self.last_frame_at = 0.0

    def start(self) -> None:
        """Attach to the running loop's `WriteBatcher`. Called by the hub when the connection is registered."""
        if self._batcher is None and not self.closed:
            self._batcher = WriteBatcher.for_running_loop()
            self.last_frame_at = asyncio.get_running_loop().time()
            if self._queue:
                self._mark()

    def enqueue(self, text: str) -> bool:
        """Queue one frame for sending without waiting. O(1).

        Returns:
            False if the connection is closed or this frame overflowed the queue (the connection is then closed
            with ``SLOW_CONSUMER``); True otherwise.
        """
        # The fan-out hot path: called once per subscriber per publication, so kept to plain attribute access.
        if self.close_code is not None:
            return False
        queue = self._queue
        size = len(text)
        if len(queue) >= self._max_queue_messages or self._queued_bytes + size > self._max_queue_bytes:
            self.abort(CloseCode.SLOW_CONSUMER, "slow consumer: send queue overflow")
            return False
        queue.append(text)
        self._queued_bytes += size
        if not self._marked:
            self._mark()
        return True

    def allow_frame(self) -> bool:
        """Take one token from the incoming-frame bucket; False when the client exceeds its rate."""
        now = asyncio.get_running_loop().time()
        self.last_frame_at = now
        return self._frames.take(now)

    def abort(self, code: int, reason: str, *, flush: bool = False) -> None:
        """Close without waiting (`channels.send_queue.SendQueue.abort`); by default what is queued is dropped."""
        if self.close_code is None:
            metrics.CLOSES.labels(code=str(int(code))).inc()
        super().abort(code, reason, flush=flush)

    async def close(self, code: CloseCode, reason: str, *, flush: bool = False) -> None:
        """Close the connection (see `abort`) and wait, bounded, until the transport is closed."""
        self.abort(code, reason, flush=flush)
        await self.wait_closed()

    def _name(self) -> str:
        return self.id

    def _may_flush(self) -> bool:
        return self._batcher is not None  # never started: nothing was ever sent, so nothing is owed

    def _mark(self) -> None:
        if not self._marked and self._batcher is not None:
            self._marked = True
            self._batcher.mark(self)

    def _next_parts(self) -> list[str]:
        """Take the frames of the next message off the queue (as many as fit `max_message_bytes`)."""
        queue = self._queue
        parts = [queue.popleft()]
        size = len(parts[0])
        max_message = self.limits.max_message_bytes
        while queue and size + 1 + len(queue[0]) <= max_message:
            text = queue.popleft()
            size += 1 + len(text)
            parts.append(text)
        self._queued_bytes -= size - (len(parts) - 1)
        return parts

    def _next_message(self) -> str:
        parts = self._next_parts()
        return parts[0] if len(parts) == 1 else "\n".join(parts)

    def _flush(self, frames: Frames) -> None:
        """Send what is queued, eagerly (see the module docstring); called by the batcher with its frames."""
        self._marked = False
        if self._sending is not None or self.close_code is not None:
            return  # the pending send drains the queue after itself; a closed connection dropped its queue
        transport = self._transport
        while self._queue:
            parts = self._next_parts()
            key: str | tuple[str, ...] = parts[0] if len(parts) == 1 else tuple(parts)
            frame = frames.get(key)
            if frame is None:
                message = parts[0] if len(parts) == 1 else "\n".join(parts)
                frame = frames[key] = websocket_frame(message.encode(), TEXT)
            if transport.write_frame(frame):
                continue
            message = parts[0] if len(parts) == 1 else "\n".join(parts)
            try:
                rest = start_eagerly(transport.send_text(message))
            except Exception as exc:  # a send failure means the peer is gone
                self._send_failed(exc)
                return
            if rest is not None:
                self._start_drain(rest)
                return

    async def _send_next(self) -> None:
        await self._transport.send_text(self._next_message())

    async def _close_socket(self, code: int, reason: str) -> None:
        await self._transport.close(code, reason)
