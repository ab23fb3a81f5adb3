"""Writing prebuilt WebSocket frames straight to a socket that uvicorn serves.

Fan-out (the hub's events, the notes' updates) sends one message to many sockets. Through ASGI each send is framed
again, per socket, by the server's WebSocket protocol; that framing was the largest Python cost per delivery left
once the send itself ran without a task. uvicorn's default WebSocket protocol (``websockets-sansio``) writes
``conn.send_text``/``send_binary``'s output to its asyncio transport; for an uncompressed final frame that output
is fixed bytes (``channels.frames.websocket_frame``), so a frame built once can be written to every socket as it
is.

This reaches below ASGI, into uvicorn's protocol object (the owner of the bound ``send`` it hands the app), so it
is guarded: `RawSocket.behind` answers None unless ``send`` is exactly that protocol's ``send``, and `write`
declines (the caller then uses ``send``) unless the handshake is done, the connection is open, nothing has been
sent to close it, flow control has not paused writing, and no extension (compression) is in use. Order with ASGI
sends holds: both write to the same transport synchronously. ``tests/crdt/test_frames.py`` runs it against a
real uvicorn.
"""

from __future__ import annotations

from starlette.types import Send
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State


class RawSocket:
    __slots__ = ("_protocol",)

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol

    @classmethod
    def behind(cls, send: Send) -> RawSocket | None:
        """The socket behind ``send`` if it is uvicorn's ``websockets-sansio`` protocol's own, unwrapped."""
        owner = getattr(send, "__self__", None)
        if not isinstance(owner, WebSocketsSansIOProtocol):
            return None  # another server, another protocol, or a wrapped send: ASGI sends only
        return cls(owner) if send == owner.send else None

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
