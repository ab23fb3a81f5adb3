"""WebSocket frames built once for many sockets (RFC 6455 section 5.2).

A fan-out sends the same message to every subscriber. A server framework frames each send itself, in Python, per
socket; a transport that owns its socket can instead write a frame built once here (see
``server/live/uvicorn_socket.py``). Only what a server sends: final, unmasked, uncompressed frames.
"""

from __future__ import annotations

import struct

TEXT = 0x1
BINARY = 0x2


def websocket_frame(payload: bytes, opcode: int = BINARY) -> bytes:
    """``payload`` as one final, unmasked frame of ``opcode`` (`TEXT` payloads must be UTF-8)."""
    first = 0x80 | opcode
    size = len(payload)
    if size < 126:
        head = bytes((first, size))
    elif size < 1 << 16:
        head = struct.pack("!BBH", first, 126, size)
    else:
        head = struct.pack("!BBQ", first, 127, size)
    return head + payload
