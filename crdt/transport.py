"""One client socket as a room sees it: the `Transport` Protocol a web framework adapts, and `Peer`, which gives
it an ordered, bounded, never-blocking send path.

Rooms fan an update out to every peer with `Peer.send`, which hands the frame to the socket at once when the socket
can take it (no task, no queue: the common case) and otherwise queues it behind the send in flight. A peer whose
queue overflows is a slow consumer and is closed (`CloseCode.SLOW_CONSUMER`); it resynchronizes on reconnect, so
nothing is lost for it and nobody else waits for it. The queue, its bounds, the drain and the bounded close are
`channels.send_queue.SendQueue`, shared with the hub's connections.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from channels.protocol import CloseCode
from channels.send_queue import SendQueue
from channels.token_bucket import TokenBucket

_ids = itertools.count(1)


class Transport(Protocol):
    """A binary WebSocket (Starlette's, ``websockets``', or a test fake)."""

    def write(self, data: bytes) -> Awaitable[None] | None:
        """Start sending one binary message.

        Returns:
            None when the message was handed to the socket already; otherwise an awaitable that completes when
            it has been (the socket applies back-pressure). The caller sends nothing else until then.

        Raises:
            Exception: the socket is gone.
        """

    def write_frame(self, frame: bytes) -> bool:
        """Write ``frame``, one complete binary WebSocket message (``channels.frames.websocket_frame``), as it is.

        Fan-out frames a message once for every peer; a transport that owns its socket writes those bytes as they
        are, skipping its own framing. Returns False when it cannot, or not now (back-pressure, closing, an
        extension such as compression in use): the caller then uses `write`. Must not suspend.
        """

    async def close(self, code: int, reason: str) -> None:
        """Close the socket with ``code`` and ``reason``; returns within a bounded time."""


Pump = Callable[[Callable[[bytes], bool]], Awaitable[None]]
"""How a room reads one socket: ``await pump(handle)`` hands each binary message the client sends to ``handle``, in
order, until the socket ends or ``handle`` returns False. ``handle`` never suspends, so a web framework that owns
its sockets may call it as each message is parsed (``server/live/uvicorn_socket.py``); `pump_from` adapts an async
iterator of messages."""


def pump_from(messages: AsyncIterator[bytes]) -> Pump:
    """A `Pump` over ``messages`` (a test's socket, or any framework's receive loop)."""

    async def pump(handle: Callable[[bytes], bool]) -> None:
        async for data in messages:
            if not handle(data):
                return

    return pump


@dataclass(frozen=True, slots=True)
class PeerLimits:
    """Bounds of one peer.

    Attributes:
        max_queue_messages, max_queue_bytes: its send queue; past either, the peer is closed as a slow consumer.
        messages_per_second, message_burst: how fast it may send (a token bucket); faster closes it with 4429.
            Editors send an update per keystroke and an awareness message per cursor move, far below this.
    """

    max_queue_messages: int = 1024
    max_queue_bytes: int = 16 * 1024 * 1024
    messages_per_second: float = 100.0
    message_burst: int = 300


class Peer(SendQueue[bytes]):
    """A connected client of one room.

    Guarantees (besides those of `channels.send_queue.SendQueue`):
        - `send` never blocks; past `PeerLimits`' queue bounds the peer is closed as a slow consumer.
        - `abort` sends what is queued first unless told not to (``flush=True``): the permission-denied message
          a room sends before closing a peer must reach the client.

    Attributes:
        principal: who is connected (opaque to the room; handed to the access check).
        readonly: the peer may read and show presence but not edit.
        awareness_ids: the awareness client ids this peer announced and owns (removed when it leaves).
        identity: who the peer is, as the server authenticated it; when set, the ``user`` field of every awareness
            state the peer announces is replaced by it (`crdt.awareness.bind_identity`), so nobody can appear as
            someone else. None leaves states as sent (tests, tools).
    """

    # A thousand editors of one note fan out through these: slots keep `send`'s attribute reads as cheap as the
    # base class's.
    __slots__ = (
        "_incoming",
        "_limits",
        "_transport",
        "awareness_ids",
        "id",
        "identity",
        "principal",
        "readonly",
        "synced",
    )

    _task_prefix = "tandem-peer"

    def __init__(
        self,
        transport: Transport,
        principal: object,
        *,
        readonly: bool = False,
        limits: PeerLimits | None = None,
        identity: Mapping[str, object] | None = None,
    ) -> None:
        self._limits = limits or PeerLimits()
        super().__init__(self._limits.max_queue_messages, self._limits.max_queue_bytes)
        self.id = next(_ids)
        self.principal = principal
        self.readonly = readonly
        self.identity = identity
        self.awareness_ids: set[int] = set()
        self.synced = False  # the room answered its sync step 1: updates may flow to it
        self._transport = transport
        self._incoming = TokenBucket(self._limits.messages_per_second, self._limits.message_burst)

    def __repr__(self) -> str:
        return f"<Peer {self.id} {self.principal}>"

    def allow_message(self) -> bool:
        """Count one incoming message against the peer's rate; False (and the peer closed with 4429) once over."""
        if self._incoming.take(asyncio.get_running_loop().time()):
            return True
        self.abort(CloseCode.RATE_LIMITED, "too many messages")
        return False

    def send(self, data: bytes, frame: bytes | None = None) -> None:
        """Send one message, in order after those sent before; O(1), never waits.

        ``frame`` is ``data`` already framed (``channels.frames.websocket_frame``), shared by every peer of a fan-out.
        """
        if self.close_code is not None:
            return
        if self._sending is not None or self._queue:
            if len(self._queue) >= self._max_queue_messages or self._queued_bytes + len(data) > self._max_queue_bytes:
                self.abort(CloseCode.SLOW_CONSUMER, "slow consumer: send queue overflow")
                return
            self._queue.append(data)
            self._queued_bytes += len(data)
            return
        if frame is not None and self._transport.write_frame(frame):
            return
        try:
            pending = self._transport.write(data)
        except Exception as exc:  # the socket is gone
            self._send_failed(exc)
            return
        if pending is not None:
            self._start_drain(pending)

    def abort(self, code: int, reason: str, *, flush: bool = True) -> None:
        """Close without waiting (`channels.send_queue.SendQueue.abort`); by default what is queued is sent first."""
        super().abort(code, reason, flush=flush)

    def _name(self) -> str:
        return str(self.id)

    async def _send_next(self) -> None:
        data = self._queue.popleft()
        self._queued_bytes -= len(data)
        more = self._transport.write(data)
        if more is not None:
            await more

    async def _close_socket(self, code: int, reason: str) -> None:
        await self._transport.close(code, reason)
