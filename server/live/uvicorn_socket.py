"""Everything of Tandem that reaches below ASGI: prebuilt WebSocket frames written straight to uvicorn's sockets,
and messages handed from them straight to their handler.

Fan-out (the hub's events, the notes' updates) sends one message to many sockets. Through ASGI each send is framed
again, per socket, by the server's WebSocket protocol. uvicorn's ``websockets-sansio`` protocol writes
``conn.send_text``/``send_binary``'s output to its asyncio transport; for an uncompressed final frame that output
is fixed bytes (``channels.frames.websocket_frame``), so a frame built once can be written to every socket as it
is (the *fast path*).

Receiving is the mirror image. Through ASGI, uvicorn's protocol puts each message on a queue, pauses reading the
socket until the app takes it, and the app's ``receive`` (a chain of three coroutines, a future and an async
generator's step per message, all new objects that live until the next message) runs a loop turn later.
`RawSocket.pump` instead has the protocol hand each message, as it is parsed, to a plain function: no queue, no
pause, no turn, nothing allocated per socket between messages (with a thousand busy sockets, those waiting chains
were most of what the garbage collector's young generation walked: bench/README.md, notes, session 19).

This depends on uvicorn's and websockets' internals, so it is confined here and guarded:

- the versions it was written and tested against are pinned in pyproject.toml (`SUPPORTED`); `tandem serve`
  asks uvicorn for this protocol by name (`WS_PROTOCOL`), not for its ``auto`` choice;
- importing this module never fails: without the protocol class (another uvicorn) the fast path is off;
- `RawSocket.behind` answers None unless ``send`` is exactly that protocol's ``send``, and `write` declines (the
  caller then uses ``send``) unless the handshake is done, the connection is open, nothing has been sent to close
  it, flow control has not paused writing, and no extension (compression) is in use. Order with ASGI sends holds:
  both write to the same transport synchronously;
- `RawSocket.pump` takes what ASGI queued before it first, in order; text messages, the disconnect and whatever
  arrives after it stops keep uvicorn's own path (the queue), so ordering and closing are uvicorn's;
- whether it is on is never silent: `report` logs it once at startup, and the ``tandem_ws_fast_path`` gauge says
  1 or 0 (from the startup check, then from each socket accepted). ``tests/test_uvicorn_socket.py`` fails when a
  real ``tandem serve`` node's sockets do not get it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

from starlette.types import Send
from websockets.protocol import State

from server.observability import WS_FAST_PATH

if TYPE_CHECKING:
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

log = logging.getLogger(__name__)

# The distributions whose internals the fast path reads, and the versions pyproject.toml pins for it.
SUPPORTED = {"uvicorn": "0.55", "websockets": "17"}
WS_PROTOCOL = "websockets-sansio"  # the uvicorn ``ws`` option that serves sockets through the protocol below

try:
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol as _Protocol
except ImportError:  # an uvicorn without it: sockets work, through ASGI only
    _Protocol = None  # type: ignore[assignment,misc]


def fast_path_available() -> tuple[bool, str]:
    """Whether this process can use the fast path, and why not when it cannot."""
    if _Protocol is None:
        return False, f"uvicorn {version('uvicorn')} has no websockets-sansio protocol"
    for name, supported in SUPPORTED.items():
        installed = version(name)
        if installed != supported and not installed.startswith(supported + "."):
            return False, f"{name} {installed} is not the supported {supported}.x"
    return True, f"uvicorn {version('uvicorn')}, websockets {version('websockets')}"


def report() -> bool:
    """Log whether the fast path is on and set the gauge (at startup, in each worker)."""
    on, why = fast_path_available()
    WS_FAST_PATH.set(1 if on else 0)
    if on:
        log.info("websocket fast path on: prebuilt frames go straight to uvicorn's sockets (%s)", why)
    else:
        log.warning("websocket fast path OFF: every frame is sent through ASGI (%s)", why)
    return on


OnMessage = Callable[[bytes | str], bool]
"""A socket's message handler (`RawSocket.pump`): True to go on, False to stop."""


class RawSocket:
    __slots__ = ("_protocol",)

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol

    @classmethod
    def behind(cls, send: Send) -> RawSocket | None:
        """The socket behind ``send`` if it is uvicorn's ``websockets-sansio`` protocol's own, unwrapped."""
        owner: Any = getattr(send, "__self__", None)
        if _Protocol is None or not isinstance(owner, _Protocol) or send != owner.send:
            # Another server, another protocol, or a wrapped send: ASGI sends only. A real uvicorn socket that
            # ends up here turns the gauge to 0, so the fast path never goes off silently.
            if _is_uvicorn(owner):
                WS_FAST_PATH.set(0)
            return None
        WS_FAST_PATH.set(1)
        return cls(owner)

    def write(self, frame: bytes) -> bool:
        """Write ``frame`` now if the socket can take it as it is; False (nothing written) otherwise."""
        protocol = self._protocol
        if (
            protocol.close_sent
            or not protocol.handshake_complete
            or not protocol.writable.is_set()
            or protocol.transport.is_closing()
        ):
            return False
        conn = protocol.conn
        if conn.state is not State.OPEN or conn.extensions:
            return False
        protocol.transport.write(frame)
        return True

    async def pump(self, on_message: OnMessage) -> None:
        """Hand each message the socket receives to ``on_message``, in order, until the client disconnects or
        ``on_message`` returns False; then ASGI's ``receive`` takes the socket's messages again.

        A binary message is handed over from within uvicorn's ``data_received``, as soon as it is parsed: its
        handler must not suspend, and an exception it raises stops the pump and is raised here. Messages ASGI
        queued before the pump started come first; text messages keep uvicorn's path (checked UTF-8) through the
        queue, which the pump reads too.
        """
        protocol = self._protocol
        queue = protocol.queue
        stopped: list[BaseException | None] = []  # once the handler said stop: what it raised, if it raised

        def hand_over() -> None:  # replaces uvicorn's ``send_receive_event_to_app`` on this one protocol
            if protocol.curr_msg_data_type == "text" or protocol.close_sent or stopped or not queue.empty():
                # Queued (or, past close, dropped) as ever, behind anything queued already.
                type(protocol).send_receive_event_to_app(protocol)
                return
            frames = protocol.frames
            data = frames[0] if len(frames) == 1 else b"".join(frames)
            protocol.frames = []
            try:
                going = on_message(data)
            except BaseException as exc:  # raised from `pump`, never into uvicorn's protocol
                stopped.append(exc)
            else:
                if going:
                    return
                stopped.append(None)
            # Wake the pump through the queue, ahead of whatever this chunk holds next (which queues behind it).
            queue.put_nowait(_STOP)

        try:
            while True:
                if queue.empty():
                    if protocol.read_paused:  # uvicorn paused reading when it queued the last message
                        protocol.read_paused = False
                        protocol.transport.resume_reading()
                    protocol.send_receive_event_to_app = hand_over  # type: ignore[method-assign]
                    event = await queue.get()
                else:
                    event = queue.get_nowait()
                if event is _STOP:
                    if stopped[0] is not None:
                        raise stopped[0]
                    return
                message = received(event)
                if message is None or not on_message(message):
                    return  # the disconnect, or the handler's stop
        finally:
            protocol.__dict__.pop("send_receive_event_to_app", None)  # uvicorn's own method again


_STOP: Any = {"type": "tandem.pump.stop"}  # queued by the handler's stop, read by `RawSocket.pump` only


def received(event: Any) -> bytes | str | None:
    """The message an ASGI ``websocket.receive`` event carries; None for any other event (the disconnect)."""
    if event["type"] != "websocket.receive":
        return None
    message: bytes | str | None = event.get("bytes")
    return event.get("text") or "" if message is None else message


def _is_uvicorn(owner: object) -> bool:
    return owner is not None and type(owner).__module__.startswith("uvicorn.")
