"""The y-websocket wire protocol, sans-I/O: bytes in, typed messages out; typed values in, bytes out.

Every WebSocket message is one binary frame holding one message, encoded with lib0's variable-length integers::

    message        = varuint(MessageType) payload
    SYNC           = varuint(SyncType) varbytes          (STEP1: a state vector; STEP2 and UPDATE: a v1 update)
    AWARENESS      = varbytes(awareness update)
    AUTH           = varuint(AuthType) varstring(reason) (PERMISSION_DENIED is the only kind y-protocols defines)
    QUERY_AWARENESS = (nothing)

    awareness update = varuint(count) { varuint(client_id) varuint(clock) varstring(JSON state, "null" = gone) }

The same codec frames the messages nodes relay to each other through Redis (`encode_envelope`), so a relayed
update is byte-for-byte what a client sent after the room integrated it.

Decoding never trusts a length: every length is checked against the bytes that remain, integers are capped at
2**53 (what JavaScript clients can represent), and any malformed input raises `ProtocolError` (never
``IndexError`` or ``UnicodeDecodeError``). CRDT payloads (updates, state vectors) are passed through as bytes;
their validity is pycrdt's business (`crdt.room`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum

MAX_VARUINT = 2**53
MAX_AWARENESS_STATE_BYTES = 16 * 1024
MAX_AWARENESS_ENTRIES = 10_000


class MessageType(IntEnum):
    SYNC = 0
    AWARENESS = 1
    AUTH = 2
    QUERY_AWARENESS = 3


class SyncType(IntEnum):
    STEP1 = 0
    STEP2 = 1
    UPDATE = 2


class AuthType(IntEnum):
    PERMISSION_DENIED = 0


class ProtocolError(ValueError):
    """Bytes that are not a well-formed y-websocket message."""


@dataclass(frozen=True, slots=True)
class SyncStep1:
    """The sender's state vector: "send me what I lack"."""

    state_vector: bytes


@dataclass(frozen=True, slots=True)
class SyncStep2:
    """The answer to a `SyncStep1`: an update holding what the asker lacked."""

    update: bytes


@dataclass(frozen=True, slots=True)
class SyncUpdate:
    """An incremental document update."""

    update: bytes


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    """One client's awareness state. ``state`` is the JSON text; ``"null"`` means the client left."""

    client_id: int
    clock: int
    state: str

    @property
    def removed(self) -> bool:
        return self.state == "null"


@dataclass(frozen=True, slots=True)
class Awareness:
    entries: tuple[AwarenessEntry, ...]


@dataclass(frozen=True, slots=True)
class Auth:
    kind: AuthType
    reason: str


@dataclass(frozen=True, slots=True)
class QueryAwareness:
    pass


Message = SyncStep1 | SyncStep2 | SyncUpdate | Awareness | Auth | QueryAwareness


class Decoder:
    """A cursor over ``data`` reading lib0 encodings; raises `ProtocolError` on anything malformed."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def varuint(self) -> int:
        data, pos = self.data, self.pos
        value = 0
        shift = 0
        while True:
            if pos >= len(data):
                raise ProtocolError("truncated integer")
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if value > MAX_VARUINT:
                raise ProtocolError("integer too large")
            if byte < 0x80:
                self.pos = pos
                return value
            shift += 7

    def varbytes(self) -> bytes:
        length = self.varuint()
        if length > self.remaining:
            raise ProtocolError(f"length {length} exceeds the {self.remaining} bytes left")
        start = self.pos
        self.pos += length
        return self.data[start : self.pos]

    def varstring(self) -> str:
        raw = self.varbytes()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("string is not UTF-8") from None

    def end(self) -> None:
        if self.remaining:
            raise ProtocolError(f"{self.remaining} unexpected trailing bytes")


def write_varuint(out: bytearray, value: int) -> None:
    if value < 0:
        raise ValueError("varuint must be non-negative")
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)


def write_varbytes(out: bytearray, data: bytes) -> None:
    write_varuint(out, len(data))
    out += data


def write_varstring(out: bytearray, text: str) -> None:
    write_varbytes(out, text.encode("utf-8"))


def decode(data: bytes) -> Message:
    """Parse one message.

    Raises:
        ProtocolError: ``data`` is truncated, has lying lengths or unknown types, or trailing bytes.
    """
    decoder = Decoder(data)
    kind = decoder.varuint()
    message: Message
    if kind == MessageType.SYNC:
        sync = decoder.varuint()
        payload = decoder.varbytes()
        if sync == SyncType.STEP1:
            message = SyncStep1(payload)
        elif sync == SyncType.STEP2:
            message = SyncStep2(payload)
        elif sync == SyncType.UPDATE:
            message = SyncUpdate(payload)
        else:
            raise ProtocolError(f"unknown sync message type {sync}")
    elif kind == MessageType.AWARENESS:
        message = Awareness(decode_awareness(decoder.varbytes()))
    elif kind == MessageType.AUTH:
        auth = decoder.varuint()
        if auth != AuthType.PERMISSION_DENIED:
            raise ProtocolError(f"unknown auth message type {auth}")
        message = Auth(AuthType.PERMISSION_DENIED, decoder.varstring())
    elif kind == MessageType.QUERY_AWARENESS:
        message = QueryAwareness()
    else:
        raise ProtocolError(f"unknown message type {kind}")
    decoder.end()
    return message


def decode_awareness(payload: bytes) -> tuple[AwarenessEntry, ...]:
    """Parse an awareness update; every state must be JSON (clients ``JSON.parse`` what we relay).

    Raises:
        ProtocolError: malformed, too many entries, a state over `MAX_AWARENESS_STATE_BYTES` or not JSON.
    """
    decoder = Decoder(payload)
    count = decoder.varuint()
    if count > MAX_AWARENESS_ENTRIES:
        raise ProtocolError("too many awareness entries")
    entries = []
    for _ in range(count):
        client_id = decoder.varuint()
        clock = decoder.varuint()
        state = decoder.varstring()
        if len(state) > MAX_AWARENESS_STATE_BYTES:
            raise ProtocolError("awareness state too large")
        if state != "null":
            try:
                json.loads(state)
            except (ValueError, RecursionError):
                raise ProtocolError("awareness state is not JSON") from None
        entries.append(AwarenessEntry(client_id, clock, state))
    decoder.end()
    return tuple(entries)


def _sync(kind: SyncType, payload: bytes) -> bytes:
    out = bytearray((MessageType.SYNC, kind))
    write_varbytes(out, payload)
    return bytes(out)


def encode_sync_step1(state_vector: bytes) -> bytes:
    return _sync(SyncType.STEP1, state_vector)


def encode_sync_step2(update: bytes) -> bytes:
    return _sync(SyncType.STEP2, update)


def encode_update(update: bytes) -> bytes:
    return _sync(SyncType.UPDATE, update)


def encode_awareness_update(entries: list[AwarenessEntry] | tuple[AwarenessEntry, ...]) -> bytes:
    """The awareness update payload (without the message header) for ``entries``."""
    out = bytearray()
    write_varuint(out, len(entries))
    for entry in entries:
        write_varuint(out, entry.client_id)
        write_varuint(out, entry.clock)
        write_varstring(out, entry.state)
    return bytes(out)


def encode_awareness(entries: list[AwarenessEntry] | tuple[AwarenessEntry, ...]) -> bytes:
    out = bytearray((MessageType.AWARENESS,))
    write_varbytes(out, encode_awareness_update(entries))
    return bytes(out)


def encode_query_awareness() -> bytes:
    return bytes((MessageType.QUERY_AWARENESS,))


def encode_permission_denied(reason: str) -> bytes:
    out = bytearray((MessageType.AUTH, AuthType.PERMISSION_DENIED))
    write_varstring(out, reason)
    return bytes(out)


def encode(message: Message) -> bytes:
    """Encode any `Message` (the inverse of `decode`)."""
    match message:
        case SyncStep1(state_vector):
            return encode_sync_step1(state_vector)
        case SyncStep2(update):
            return encode_sync_step2(update)
        case SyncUpdate(update):
            return encode_update(update)
        case Awareness(entries):
            return encode_awareness(entries)
        case Auth(_, reason):
            return encode_permission_denied(reason)
        case QueryAwareness():
            return encode_query_awareness()
    raise TypeError(f"not a message: {message!r}")


# Between nodes: which node sent it, then one message. A node drops its own envelopes (pub/sub echoes them).


def encode_envelope(origin: str, message: bytes) -> bytes:
    out = bytearray()
    write_varstring(out, origin)
    out += message
    return bytes(out)


def decode_envelope(data: bytes) -> tuple[str, Message]:
    """Split a relayed envelope into its origin node and message.

    Raises:
        ProtocolError: malformed.
    """
    decoder = Decoder(data)
    origin = decoder.varstring()
    return origin, decode(data[decoder.pos :])
