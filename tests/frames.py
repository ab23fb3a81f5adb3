"""Reading a prebuilt WebSocket frame back with the ``websockets`` parser: what a client would read."""

from __future__ import annotations

from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader


def read_frame(frame: bytes) -> tuple[Opcode, bytes]:
    """The opcode and payload of ``frame``, one final unmasked frame and nothing after it."""
    reader = StreamReader()
    reader.feed_data(frame)
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        parsed: Frame = done.value
    else:
        raise AssertionError("incomplete frame")
    assert parsed.fin, "not a final frame"
    assert not reader.buffer, "bytes after the frame"
    return parsed.opcode, bytes(parsed.data)
