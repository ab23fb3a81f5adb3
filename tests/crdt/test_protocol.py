"""The codec: every message round-trips; arbitrary bytes either decode or raise ProtocolError, nothing else."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdt import protocol as p

MESSAGES: list[p.Message] = [
    p.SyncStep1(b"\x01\x02\x03"),
    p.SyncStep2(b"\x00\x00"),
    p.SyncUpdate(b"\x01\x01\x02\x00"),
    p.Awareness((p.AwarenessEntry(123456789, 3, '{"user":{"name":"Ånna"}}'), p.AwarenessEntry(2**40, 9, "null"))),
    p.Auth(p.AuthType.PERMISSION_DENIED, "read-only"),
    p.QueryAwareness(),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(message: p.Message) -> None:
    assert p.decode(p.encode(message)) == message


def test_wire_bytes_match_y_protocols() -> None:
    assert p.encode_sync_step1(b"\x00") == b"\x00\x00\x01\x00"
    assert p.encode_update(b"\x00\x00") == b"\x00\x02\x02\x00\x00"
    assert p.encode_permission_denied("no") == b"\x02\x00\x02no"
    assert p.encode_query_awareness() == b"\x03"
    assert p.MessageType(1) is p.MessageType.AWARENESS


def test_envelope_round_trip() -> None:
    data = p.encode_envelope("node-1", p.encode_update(b"\x00\x00"))
    assert p.decode_envelope(data) == ("node-1", p.SyncUpdate(b"\x00\x00"))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        b"\x00\x00",
        b"\x00\x03\x00",
        b"\x00\x02\x05\x01",
        b"\x00\x02\xff\xff\xff\xff\xff\xff\xff\xff\x01",
        b"\x01\x03\x01\x01\x01",
        b"\x01\x06\x01\x01\x01\x02{x",
        b"\x02\x01\x00",
        b"\x02\x00\x02\xff\xfe",
        b"\x03\x00",
        b"\x07",
    ],
)
def test_malformed_messages_raise_protocol_error(data: bytes) -> None:
    with pytest.raises(p.ProtocolError):
        p.decode(data)


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_raise_protocol_error(data: bytes) -> None:
    try:
        message = p.decode(data)
    except p.ProtocolError:
        return
    assert p.decode(p.encode(message)) == message


@settings(max_examples=1000, deadline=None)
@given(st.sampled_from(MESSAGES), st.data())
def test_mutated_messages_decode_or_raise_protocol_error(message: p.Message, data: st.DataObject) -> None:
    raw = bytearray(p.encode(message))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    with contextlib.suppress(p.ProtocolError):
        p.decode(bytes(raw[:cut]))
