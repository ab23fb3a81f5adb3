"""Everything of Tandem that reaches below ASGI: prebuilt WebSocket frames written straight to uvicorn's sockets.

Fan-out (the hub's events, the notes' updates) sends one message to many sockets. Through ASGI each send is framed
again, per socket, by the server's WebSocket protocol. uvicorn's ``websockets-sansio`` protocol writes
``conn.send_text``/``send_binary``'s output to its asyncio transport; for an uncompressed final frame that output
is fixed bytes (``channels.frames.websocket_frame``), so a frame built once can be written to every socket as it
is (the *fast path*).

This depends on uvicorn's and websockets' internals, so it is confined here and guarded:

- the versions it was written and tested against are pinned in pyproject.toml (`SUPPORTED`); `tandem serve`
  asks uvicorn for this protocol by name (`WS_PROTOCOL`), not for its ``auto`` choice;
- importing this module never fails: without the protocol class (another uvicorn) the fast path is off;
- `RawSocket.behind` answers None unless ``send`` is exactly that protocol's ``send``, and `write` declines (the
  caller then uses ``send``) unless the handshake is done, the connection is open, nothing has been sent to close
  it, flow control has not paused writing, and no extension (compression) is in use. Order with ASGI sends holds:
  both write to the same transport synchronously;
- whether it is on is never silent: `report` logs it once at startup, and the ``tandem_ws_fast_path`` gauge says
  1 or 0 (from the startup check, then from each socket accepted). ``tests/test_uvicorn_socket.py`` fails when a
  real ``tandem serve`` node's sockets do not get it.
"""

from __future__ import annotations

import logging
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


def _is_uvicorn(owner: object) -> bool:
    return owner is not None and type(owner).__module__.startswith("uvicorn.")
