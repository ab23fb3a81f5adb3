"""One client's socket as the hub sees it: a bounded, coalescing send queue and an incoming-frame rate limit.

The hub never awaits a client. Fan-out calls `Connection.enqueue`, which is O(1): append to a deque and wake the
connection's single writer task. The writer drains everything queued and sends it as one text message (frames
joined by ``"\\n"``, up to ``max_message_bytes``), so a burst costs one WebSocket message per drain rather than
one per frame. When the queue would exceed its bounds the client is too slow: the connection is closed with
`CloseCode.SLOW_CONSUMER` and its queue is dropped, so one slow reader neither blocks the hub nor grows memory.

Sizes are counted in ``str`` length, which equals UTF-8 bytes for the ASCII frames `channels.protocol` emits
(publication data containing non-ASCII text is counted per code point, i.e. up to 4x under).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from channels import metrics
from channels.protocol import CloseCode
from channels.token_bucket import TokenBucket

if TYPE_CHECKING:
    from channels.channel import LocalChannel
    from channels.presence import PresenceInfo

logger = logging.getLogger(__name__)

_CLOSE_TIMEOUT_SECONDS = 5.0


class Transport(Protocol):
    """The socket under a `Connection` (a Starlette or ``websockets`` WebSocket, or a test fake)."""

    async def send_text(self, text: str) -> None:
        """Send one WebSocket text message. May wait for the peer (back-pressure); raises if the socket is gone."""

    async def close(self, code: int, reason: str) -> None:
        """Close the socket with ``code`` and ``reason``. Must return within a bounded time."""


@runtime_checkable
class NowaitTransport(Transport, Protocol):
    """A `Transport` that can also write without awaiting (e.g. ``websockets``, whose ``broadcast`` does this).

    When the connection has nothing queued and no send in flight, `Connection.enqueue` writes through
    `send_text_nowait` directly: no queue, no writer wake-up, no task step per subscriber per event.
    """

    def send_text_nowait(self, text: str) -> bool:
        """Write ``text`` now if the socket can take it without waiting.

        Returns:
            False (nothing written) when the socket's write buffer is above its high-water mark or a send is
            in progress; the frame is then queued for the writer instead.

        Raises:
            Exception: the socket is gone (the connection is then closed).
        """


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


CloseCallback = Callable[["Connection"], None]


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


class Connection:
    """A client connection: identity, outgoing queue, writer task and rate limit.

    Guarantees:
        - Frames passed to `enqueue` are sent in order, each at most once.
        - `enqueue` never blocks and never lets the queue exceed `ConnectionLimits`; overflow closes the
          connection with ``SLOW_CONSUMER``.
        - Close callbacks run exactly once, synchronously, when the connection becomes closed for any reason.
    """

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
        self.id = connection_id or secrets.token_hex(8)
        self.principal = principal
        self.limits = limits or ConnectionLimits()
        # Hub-managed: this connection's subscriptions by channel (including ones still being set up).
        self.subscriptions: dict[str, Subscription] = {}
        self.close_code: CloseCode | None = None
        self.close_reason = ""
        self._transport = transport
        self._send_nowait = transport.send_text_nowait if isinstance(transport, NowaitTransport) else None
        self._queue: deque[str] = deque()
        self._queued_bytes = 0
        self._max_queue_messages = self.limits.max_queue_messages
        self._max_queue_bytes = self.limits.max_queue_bytes
        self._waiter: asyncio.Future[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._close_callbacks: list[CloseCallback] = []
        self._frames = TokenBucket(self.limits.frames_per_second, self.limits.frame_burst)
        self.last_frame_at = 0.0

    @property
    def closed(self) -> bool:
        """True once the connection is closing or closed; it then accepts no more frames."""
        return self.close_code is not None

    def start(self) -> None:
        """Start the writer task. Called by the hub when the connection is registered."""
        if self._writer is None and not self.closed:
            loop = asyncio.get_running_loop()
            self.last_frame_at = loop.time()
            self._writer = loop.create_task(self._write_loop(), name=f"tandem-conn-writer-{self.id}")

    def add_close_callback(self, callback: CloseCallback) -> None:
        """Call ``callback(connection)`` when the connection closes (immediately if it already has)."""
        if self.closed:
            callback(self)
        else:
            self._close_callbacks.append(callback)

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
        waiter = self._waiter
        writer_idle = waiter is not None and not waiter.done()
        if self._send_nowait is not None and writer_idle and not queue:
            try:
                if self._send_nowait(text):
                    return True
            except Exception as exc:  # the socket is gone
                self.abort(CloseCode.GOING_AWAY, f"send failed: {type(exc).__name__}")
                return False
        size = len(text)
        if len(queue) >= self._max_queue_messages or self._queued_bytes + size > self._max_queue_bytes:
            self.abort(CloseCode.SLOW_CONSUMER, "slow consumer: send queue overflow")
            return False
        queue.append(text)
        self._queued_bytes += size
        if writer_idle and waiter is not None:
            waiter.set_result(None)
        return True

    def _wake_writer(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @property
    def queued_messages(self) -> int:
        """Frames waiting to be sent."""
        return len(self._queue)

    def allow_frame(self) -> bool:
        """Take one token from the incoming-frame bucket; False when the client exceeds its rate."""
        now = asyncio.get_running_loop().time()
        self.last_frame_at = now
        return self._frames.take(now)

    def abort(self, code: CloseCode, reason: str, *, flush: bool = False) -> None:
        """Close without waiting: stop accepting frames and close the transport in the background.

        Args:
            code: the close code (the first call's code wins; later calls do nothing).
            reason: the close reason.
            flush: send what is already queued first (bounded by a deadline); otherwise drop it.
        """
        if self.close_code is not None:
            return
        self.close_code = code
        self.close_reason = reason
        metrics.CLOSES.labels(code=str(int(code))).inc()
        writer = self._writer
        flush = flush and bool(self._queue) and writer is not None and not writer.done()
        if flush:
            self._wake_writer()
        else:
            self._queue.clear()
            self._queued_bytes = 0
            if writer is not None and writer is not asyncio.current_task():
                writer.cancel()
        try:
            self._closer = asyncio.get_running_loop().create_task(
                self._close_transport(code, reason, flush), name=f"tandem-conn-close-{self.id}"
            )
        except RuntimeError:
            logger.debug("connection %s aborted without a running loop", self.id)
        callbacks, self._close_callbacks = self._close_callbacks, []
        for callback in callbacks:
            callback(self)

    async def close(self, code: CloseCode, reason: str, *, flush: bool = False) -> None:
        """Close the connection (see `abort`) and wait, bounded, until the transport is closed."""
        self.abort(code, reason, flush=flush)
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until the writer has stopped and the transport close has finished (if the connection is closed)."""
        for task in (self._writer, self._closer):
            if task is not None and task is not asyncio.current_task():
                await asyncio.gather(task, return_exceptions=True)

    async def _close_transport(self, code: CloseCode, reason: str, flush: bool) -> None:
        writer = self._writer
        if flush and writer is not None:
            try:
                async with asyncio.timeout(_CLOSE_TIMEOUT_SECONDS):
                    await writer  # cancelled by the timeout if the peer does not read
            except TimeoutError:
                logger.info("connection %s did not take its last frames before closing", self.id)
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT_SECONDS):
                await self._transport.close(int(code), reason)
        except Exception:  # the peer may already be gone; closing is best effort
            logger.debug("closing connection %s failed", self.id, exc_info=True)

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        queue = self._queue
        max_message = self.limits.max_message_bytes
        try:
            while True:
                if not queue:
                    if self.close_code is not None:
                        return  # closed, and flushed if asked to
                    self._waiter = loop.create_future()
                    await self._waiter
                    self._waiter = None
                    continue
                parts = [queue.popleft()]
                size = len(parts[0])
                while queue and size + 1 + len(queue[0]) <= max_message:
                    text = queue.popleft()
                    size += 1 + len(text)
                    parts.append(text)
                self._queued_bytes -= size - (len(parts) - 1)
                await self._transport.send_text(parts[0] if len(parts) == 1 else "\n".join(parts))
        except asyncio.CancelledError:
            if self.close_code is None:
                raise
        except Exception as exc:  # a send failure means the peer is gone
            logger.debug("send to connection %s failed", self.id, exc_info=True)
            self.abort(CloseCode.GOING_AWAY, f"send failed: {type(exc).__name__}")
