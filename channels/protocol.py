"""Tandem's real-time wire protocol, sans-I/O: text in, typed frames out; typed values in, text out.

Client -> server frames are JSON objects with a ``type`` and an optional integer ``id`` echoed in the reply::

    {"type":"subscribe","id":1,"channel":"project:12:staff","since":{"offset":41,"epoch":"ab12"}}
    {"type":"unsubscribe","id":2,"channel":"project:12:staff"}
    {"type":"ping","id":3}
    {"type":"presence","id":4,"channel":"project:12:staff","data":{"viewing":"task:40"}}
    {"type":"presence_list","id":5,"channel":"project:12:staff","limit":100}

Server -> client frames (``subscribed``, ``event``, ``unsubscribed``, ``reload``, ``pong``, ``presence_diff``,
``presence_list``, ``error``) are compact JSON objects. Several may be coalesced into one WebSocket text message,
separated by ``"\\n"``; every frame this module encodes is ASCII and newline-free, and publication data is
required to be compact JSON, so splitting a message on ``"\\n"`` always yields whole frames.

An event frame is built once per publication by splicing the publication's already-encoded JSON bytes into a
fixed template (`encode_event`): no per-subscriber and no re-parsing work.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

from channels.broker import Publication, StreamPosition

CHANNEL_MAX_LENGTH = 128
_CHANNEL_RE = re.compile(r"[a-z]+(:[A-Za-z0-9_-]+){1,3}")
_EPOCH_MAX_LENGTH = 64
_MAX_ID = 2**53

JSONObject = dict[str, Any]


class CloseCode(IntEnum):
    """WebSocket close codes Tandem uses.

    Application codes are 4000 + the nearest HTTP status, so they read like the HTTP API's errors.
    ``SLOW_CONSUMER`` is 4409: the client's read rate *conflicts* with the channel's publish rate and its bounded
    send queue overflowed (HTTP 409 Conflict: "the request conflicts with the current state of the target
    resource"). It does not reuse 4413 (that is about a too-large frame *from* the client, which is
    ``MESSAGE_TOO_BIG``) nor 4429 (that is the client sending too fast, ``RATE_LIMITED``); a client seeing 4409
    should reconnect and recover from history, not back off its own sending.
    """

    NORMAL = 1000
    GOING_AWAY = 1001
    MESSAGE_TOO_BIG = 1009
    INTERNAL = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_FRAME = 4400
    UNAUTHORIZED = 4401
    FORBIDDEN = 4403
    TIMEOUT = 4408
    SLOW_CONSUMER = 4409
    RATE_LIMITED = 4429
    # Too many sockets open for this user or IP address on the node (server/admission.py). Not 4429: the client
    # is not sending too fast; it should retry with backoff, and succeeds once another of its sockets closes.
    TOO_MANY_SOCKETS = 4430


class ErrorCode(StrEnum):
    """The ``code`` of an ``error`` frame; the connection stays open."""

    BAD_REQUEST = "bad_request"
    UNKNOWN_TYPE = "unknown_type"
    UNKNOWN_CHANNEL = "unknown_channel"
    FORBIDDEN = "forbidden"
    ALREADY_SUBSCRIBED = "already_subscribed"
    NOT_SUBSCRIBED = "not_subscribed"
    TOO_MANY_SUBSCRIPTIONS = "too_many_subscriptions"
    PRESENCE_DISABLED = "presence_disabled"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


class ProtocolError(Exception):
    """A client frame that cannot be served; becomes an ``error`` frame (the connection stays open)."""

    def __init__(self, code: ErrorCode, message: str, frame_id: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.frame_id = frame_id


class ConnectionClosedError(Exception):
    """The connection must be closed with ``code``; raised where the decision is made, turned into a close
    frame in exactly one place (`channels.hub.Hub.serve`)."""

    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(f"{int(code)} {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Subscribe:
    id: int | None
    channel: str
    since: StreamPosition | None


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    id: int | None
    channel: str


@dataclass(frozen=True, slots=True)
class Ping:
    id: int | None


@dataclass(frozen=True, slots=True)
class SetPresence:
    id: int | None
    channel: str
    data: JSONObject


@dataclass(frozen=True, slots=True)
class PresenceList:
    id: int | None
    channel: str
    limit: int | None = None  # past this many entries, the reply is a sample (with the counts)


ClientFrame = Subscribe | Unsubscribe | Ping | SetPresence | PresenceList


def is_valid_channel(name: str) -> bool:
    """True if ``name`` is a well-formed channel name (``^[a-z]+(:[A-Za-z0-9_-]+){1,3}$``, at most 128 chars)."""
    return len(name) <= CHANNEL_MAX_LENGTH and _CHANNEL_RE.fullmatch(name) is not None


def parse_client_frame(text: str) -> ClientFrame:
    """Parse one client frame.

    Returns:
        The typed frame.

    Raises:
        ProtocolError: the text is not a JSON object, lacks or mistypes a field, names an invalid channel
            (``unknown_channel``) or has an unknown ``type`` (``unknown_type``). ``frame_id`` carries the
            frame's ``id`` when it could be read, so the error reply can echo it.
    """
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "frame is not valid JSON") from exc
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "frame must be a JSON object")
    frame_id = _read_id(obj)
    kind = obj.get("type")
    if kind == "ping":
        return Ping(frame_id)
    if kind == "subscribe":
        return Subscribe(frame_id, _read_channel(obj, frame_id), _read_since(obj, frame_id))
    if kind == "unsubscribe":
        return Unsubscribe(frame_id, _read_channel(obj, frame_id))
    if kind == "presence":
        data = obj.get("data")
        if not isinstance(data, dict):
            raise ProtocolError(ErrorCode.BAD_REQUEST, "presence data must be an object", frame_id)
        return SetPresence(frame_id, _read_channel(obj, frame_id), data)
    if kind == "presence_list":
        limit = obj.get("limit")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= _MAX_ID):
            raise ProtocolError(ErrorCode.BAD_REQUEST, "'limit' must be a positive integer", frame_id)
        return PresenceList(frame_id, _read_channel(obj, frame_id), limit)
    if not isinstance(kind, str):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "frame needs a string 'type'", frame_id)
    raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown frame type {kind[:32]!r}", frame_id)


def _read_id(obj: JSONObject) -> int | None:
    value = obj.get("id")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_ID:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "'id' must be a non-negative integer")
    return value


def _read_channel(obj: JSONObject, frame_id: int | None) -> str:
    channel = obj.get("channel")
    if not isinstance(channel, str):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "frame needs a string 'channel'", frame_id)
    if not is_valid_channel(channel):
        raise ProtocolError(ErrorCode.UNKNOWN_CHANNEL, "invalid channel name", frame_id)
    return channel


def _read_since(obj: JSONObject, frame_id: int | None) -> StreamPosition | None:
    since = obj.get("since")
    if since is None:
        return None
    if not isinstance(since, dict):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "'since' must be an object", frame_id)
    offset, epoch = since.get("offset"), since.get("epoch")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "'since.offset' must be a non-negative integer", frame_id)
    if not isinstance(epoch, str) or len(epoch) > _EPOCH_MAX_LENGTH:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "'since.epoch' must be a short string", frame_id)
    return StreamPosition(offset, epoch)


_JSON_BOOL = {True: "true", False: "false"}


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


# A string as `_dumps` encodes it (ASCII, escaped), without building an encoder per call: what the spliced frames
# (an event, a ``subscribed`` reply: three per socket that opens a project) use for their channel and epoch.
_json_string = json.encoder.encode_basestring_ascii


def _with_id(frame: JSONObject, frame_id: int | None) -> JSONObject:
    if frame_id is not None:
        frame["id"] = frame_id
    return frame


def encode_payload(payload: dict[str, Any] | bytes) -> bytes:
    """Encode a publication payload as compact UTF-8 JSON (once, at the publisher).

    Bytes are taken as already-encoded JSON and only re-encoded if they contain a newline (frames are
    newline-delimited on the wire).

    Raises:
        ValueError: the payload is not a JSON object.
    """
    if isinstance(payload, dict):
        return json.dumps(payload, separators=(",", ":")).encode()
    data = payload.strip()
    if not data.startswith(b"{"):
        raise ValueError("publication data must be a JSON object")
    if b"\n" in data or b"\r" in data:
        obj = json.loads(data)
        if not isinstance(obj, dict):
            raise ValueError("publication data must be a JSON object")
        return json.dumps(obj, separators=(",", ":")).encode()
    return data


def encode_event(pub: Publication) -> str:
    """Encode a publication as an ``event`` frame by splicing its JSON bytes (no parsing). Call once per
    publication and share the result between subscribers."""
    ts = f'"ts":{pub.ts},' if pub.ts else ""
    return (
        f'{{"type":"event","channel":{_json_string(pub.channel)},"offset":{pub.offset},'
        f'"epoch":{_json_string(pub.epoch)},{ts}"data":{pub.data.decode()}}}'
    )


def encode_subscribed(
    frame_id: int | None, channel: str, position: StreamPosition, *, recovered: bool, reload: bool
) -> str:
    """Encode the reply to ``subscribe``; missed events (if recovered) follow it in order.

    Spliced into a template, as `encode_event` is (three per socket that opens a project): the text is what
    ``json.dumps`` gives for the same frame, at about half its cost.
    """
    tail = "}" if frame_id is None else f',"id":{frame_id}}}'
    return (
        f'{{"type":"subscribed","channel":{_json_string(channel)},'
        f'"position":{{"offset":{position.offset},"epoch":{_json_string(position.epoch)}}},'
        f'"recovered":{_JSON_BOOL[recovered]},"reload":{_JSON_BOOL[reload]}{tail}'
    )


def encode_unsubscribed(frame_id: int | None, channel: str, reason: str | None = None) -> str:
    """Encode an ``unsubscribed`` frame: a reply to ``unsubscribe`` or, with a ``reason``, a forced one."""
    frame: JSONObject = {"type": "unsubscribed", "channel": channel}
    if reason is not None:
        frame["reason"] = reason
    return _dumps(_with_id(frame, frame_id))


def encode_reload(channel: str, position: StreamPosition) -> str:
    """Encode a ``reload`` frame: events were lost; refetch the channel's state, then continue from
    ``position``."""
    return _dumps(
        {"type": "reload", "channel": channel, "position": {"offset": position.offset, "epoch": position.epoch}}
    )


def encode_pong(frame_id: int | None) -> str:
    """Encode the reply to ``ping``."""
    return _dumps(_with_id({"type": "pong"}, frame_id))


def encode_ack(frame_id: int | None) -> str:
    """Encode the reply to a frame that needs no other answer (``presence``)."""
    return _dumps(_with_id({"type": "ack"}, frame_id))


def encode_error(frame_id: int | None, code: ErrorCode, message: str) -> str:
    """Encode an ``error`` frame."""
    return _dumps(_with_id({"type": "error", "code": str(code), "message": message}, frame_id))


def encode_presence_event(channel: str, kind: str, info: JSONObject) -> str:
    """Encode one presence change (``kind`` is ``joined``, ``left`` or ``updated``) as nodes publish it on the
    broker channel ``<channel>#presence`` (protocol 1 sent this very frame to clients; protocol 2 sends
    `encode_presence_diff` instead)."""
    return _dumps({"type": "presence", "channel": channel, kind: info})


def encode_presence_diff(
    channel: str,
    joined: list[JSONObject],
    updated: list[JSONObject],
    left: list[JSONObject],
    *,
    count: int,
    users: int,
) -> str:
    """Encode a ``presence_diff`` frame: a room's changes over one flush window, and its size after them."""
    return _dumps(
        {
            "type": "presence_diff",
            "channel": channel,
            "joined": joined,
            "updated": updated,
            "left": left,
            "count": count,
            "users": users,
        }
    )


def encode_presence_list(
    frame_id: int | None, channel: str, clients: list[JSONObject], *, count: int, users: int, truncated: bool
) -> str:
    """Encode the reply to ``presence_list``: the entries (a sample when ``truncated``) and the room's size."""
    frame = {
        "type": "presence_list",
        "channel": channel,
        "clients": clients,
        "count": count,
        "users": users,
        "truncated": truncated,
    }
    return _dumps(_with_id(frame, frame_id))
