"""The outgoing half of a socket, shared by the hub's `channels.connection.Connection` and the note rooms'
`crdt.transport.Peer`: a bounded queue of messages, at most one send in flight, and a close that never waits.

Subclasses own their hot path (`Connection.enqueue` coalesces text frames and flushes once per event-loop turn;
`Peer.send` hands binary messages to the socket at once when it can) and append to ``_queue`` themselves, checking
``_max_queue_messages`` and ``_max_queue_bytes`` inline: a call per message into this class would cost the fan-out.
This class holds what they share and what must behave the same for both: the bounds, the drain behind a send that
had to wait, `abort` (first code wins, queue dropped or flushed, close callbacks once), and the bounded close.

Each subclass states its default for ``abort(flush=...)``: the hub drops what a closing client has not taken
(``flush=False``: a slow consumer's backlog is worthless), a note peer sends it first (``flush=True``: a
permission-denied message must reach the client before its close).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, Self, TypeVar, cast

from channels.protocol import CloseCode

log = logging.getLogger(__name__)

_CLOSE_TIMEOUT_SECONDS = 5.0

M = TypeVar("M", str, bytes)


class SendQueue(Generic[M]):
    """A bounded, ordered, never-blocking send path over one socket (see the module docstring).

    Guarantees:
        - Messages leave in the order they were queued, each at most once.
        - The queue never holds more than ``max_queue_messages`` messages or ``max_queue_bytes`` bytes (the
          subclass closes the socket as a slow consumer instead).
        - Close callbacks run exactly once, synchronously, when the socket becomes closed for any reason.
        - Closing the socket finishes within a bounded time (a flush and the close each get 5 s).
    """

    # Thousands live per node for hours: slots instead of a __dict__ save about a kilobyte each.
    __slots__ = (
        "__weakref__",
        "_close_callbacks",
        "_closer",
        "_max_queue_bytes",
        "_max_queue_messages",
        "_queue",
        "_queued_bytes",
        "_sending",
        "close_code",
        "close_reason",
    )

    _task_prefix = "tandem-send"

    def __init__(self, max_queue_messages: int, max_queue_bytes: int) -> None:
        self.close_code: int | None = None
        self.close_reason = ""
        self._queue: deque[M] = deque()
        self._queued_bytes = 0
        self._max_queue_messages = max_queue_messages
        self._max_queue_bytes = max_queue_bytes
        self._sending: asyncio.Task[None] | None = None  # a send waiting for the peer, then the rest of the queue
        self._closer: asyncio.Task[None] | None = None
        self._close_callbacks: list[Callable[[Self], None]] = []

    @property
    def closed(self) -> bool:
        """True once the socket is closing or closed; it then accepts no more messages."""
        return self.close_code is not None

    @property
    def queued_messages(self) -> int:
        """Messages waiting to be sent."""
        return len(self._queue)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name()}>"

    def add_close_callback(self, callback: Callable[[Self], None]) -> None:
        """Call ``callback(self)`` when the socket closes (immediately if it already has)."""
        if self.close_code is not None:
            callback(self)
        else:
            self._close_callbacks.append(callback)

    def abort(self, code: int, reason: str, *, flush: bool) -> None:
        """Close without waiting: accept nothing more, then close the socket in the background.

        Args:
            code: the close code (the first call's code wins; later calls do nothing).
            reason: the close reason.
            flush: send what is queued, and let a send in flight finish, first (bounded by a deadline);
                otherwise drop it.
        """
        if self.close_code is not None:
            return
        self.close_code = code
        self.close_reason = reason
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            log.debug("%r aborted without a running loop", self)
            loop = None
        if flush and loop is not None and self._may_flush():
            if self._queue and self._sending is None:
                self._sending = loop.create_task(self._drain(), name=f"{self._task_prefix}-flush-{self._name()}")
        else:
            self._queue.clear()
            self._queued_bytes = 0
            sending = self._sending
            if sending is not None and sending is not asyncio.current_task():
                sending.cancel()
        if loop is not None:
            self._closer = loop.create_task(
                self._close_transport(code, reason), name=f"{self._task_prefix}-close-{self._name()}"
            )
        callbacks, self._close_callbacks = self._close_callbacks, []
        for callback in callbacks:
            callback(cast(Self, self))  # abort is not typed with Self, so mypy sees the base class here

    async def wait_closed(self) -> None:
        """Wait until pending sends have stopped and the socket's close has finished (if closing)."""
        for task in (self._sending, self._closer):
            if task is not None and task is not asyncio.current_task():
                await asyncio.gather(task, return_exceptions=True)

    # -- for subclasses ----------------------------------------------------------------------------------

    def _name(self) -> str:
        """How logs and task names tell this socket apart."""
        raise NotImplementedError

    def _may_flush(self) -> bool:
        """Whether a flush on close can run now (a connection that never started has nothing to flush into)."""
        return True

    async def _send_next(self) -> None:
        """Take the next message off the queue and send it, waiting for the socket if it must."""
        raise NotImplementedError

    async def _close_socket(self, code: int, reason: str) -> None:
        raise NotImplementedError

    def _start_drain(self, pending: Awaitable[None]) -> None:
        """Send nothing more until ``pending`` (a send that had to wait) completes, then send the queue."""
        self._sending = asyncio.get_running_loop().create_task(
            self._drain(pending), name=f"{self._task_prefix}-send-{self._name()}"
        )

    def _send_failed(self, exc: Exception) -> None:
        log.debug("send to %r failed", self, exc_info=True)
        self.abort(CloseCode.GOING_AWAY, f"send failed: {type(exc).__name__}", flush=False)

    # -- internals -----------------------------------------------------------------------------------------

    async def _drain(self, pending: Awaitable[None] | None = None) -> None:
        """Finish a send that had to wait, then send the rest of the queue (also used to flush on close)."""
        try:
            if pending is not None:
                await pending
            while self._queue:
                await self._send_next()
        except asyncio.CancelledError:
            if self.close_code is None:
                raise
        except Exception as exc:  # a send failure means the peer is gone
            self._send_failed(exc)
        finally:
            if self._sending is asyncio.current_task():
                self._sending = None

    async def _close_transport(self, code: int, reason: str) -> None:
        sending = self._sending
        if sending is not None and sending is not asyncio.current_task():
            # asyncio.wait, not await: a send cancelled before it ever ran (aborted in the turn it was started)
            # must not cancel the close with it. The drain logs its own failures.
            done, _ = await asyncio.wait({sending}, timeout=_CLOSE_TIMEOUT_SECONDS)
            if not done:
                sending.cancel()
                log.info("%r did not take its last messages before closing", self)
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT_SECONDS):
                await self._close_socket(code, reason)
        except Exception:  # the peer may already be gone; closing is best effort
            log.debug("closing %r failed", self, exc_info=True)
