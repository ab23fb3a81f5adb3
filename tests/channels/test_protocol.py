"""The wire protocol: parsing client frames, encoding server frames."""

from __future__ import annotations

import json

import pytest

from channels.broker import Publication, StreamPosition
from channels.protocol import (
    CloseCode,
    ErrorCode,
    Ping,
    PresenceList,
    ProtocolError,
    SetPresence,
    Subscribe,
    Unsubscribe,
    encode_event,
    encode_payload,
    encode_subscribed,
    is_valid_channel,
    parse_client_frame,
)


def test_parses_every_client_frame() -> None:
    assert parse_client_frame(
        '{"type":"subscribe","id":1,"channel":"project:12:staff","since":{"offset":41,"epoch":"ab12"}}'
    ) == Subscribe(1, "project:12:staff", StreamPosition(41, "ab12"))
    assert parse_client_frame('{"type":"subscribe","channel":"user:7"}') == Subscribe(None, "user:7", None)
    assert parse_client_frame('{"type":"unsubscribe","id":2,"channel":"user:7"}') == Unsubscribe(2, "user:7")
    assert parse_client_frame('{"type":"ping","id":3}') == Ping(3)
    assert parse_client_frame('{"type":"presence","id":4,"channel":"task:40:shared","data":{"typing":true}}') == (
        SetPresence(4, "task:40:shared", {"typing": True})
    )
    assert parse_client_frame('{"type":"presence_list","id":5,"channel":"user:7"}') == PresenceList(5, "user:7")
    assert parse_client_frame('{"type":"presence_list","channel":"user:7","limit":100}') == PresenceList(
        None, "user:7", 100
    )


@pytest.mark.parametrize(
    ("text", "code", "frame_id"),
    [
        ("not json", ErrorCode.BAD_REQUEST, None),
        ("[1,2]", ErrorCode.BAD_REQUEST, None),
        ('{"id":1}', ErrorCode.BAD_REQUEST, 1),
        ('{"type":"dance","id":9}', ErrorCode.UNKNOWN_TYPE, 9),
        ('{"type":"ping","id":"x"}', ErrorCode.BAD_REQUEST, None),
        ('{"type":"ping","id":true}', ErrorCode.BAD_REQUEST, None),
        ('{"type":"subscribe","id":2}', ErrorCode.BAD_REQUEST, 2),
        ('{"type":"subscribe","id":2,"channel":"Project:1"}', ErrorCode.UNKNOWN_CHANNEL, 2),
        ('{"type":"subscribe","id":2,"channel":"project"}', ErrorCode.UNKNOWN_CHANNEL, 2),
        ('{"type":"subscribe","id":2,"channel":"a:b:c:d:e"}', ErrorCode.UNKNOWN_CHANNEL, 2),
        ('{"type":"subscribe","id":2,"channel":"a:b#presence"}', ErrorCode.UNKNOWN_CHANNEL, 2),
        ('{"type":"subscribe","id":2,"channel":"a:b","since":{"offset":-1,"epoch":"e"}}', ErrorCode.BAD_REQUEST, 2),
        ('{"type":"subscribe","id":2,"channel":"a:b","since":{"offset":1}}', ErrorCode.BAD_REQUEST, 2),
        ('{"type":"presence","id":3,"channel":"a:b","data":[1]}', ErrorCode.BAD_REQUEST, 3),
        ('{"type":"presence_list","id":4,"channel":"a:b","limit":0}', ErrorCode.BAD_REQUEST, 4),
        ('{"type":"presence_list","id":4,"channel":"a:b","limit":"10"}', ErrorCode.BAD_REQUEST, 4),
    ],
)
def test_bad_frames_raise_protocol_errors_carrying_the_id(text: str, code: ErrorCode, frame_id: int | None) -> None:
    with pytest.raises(ProtocolError) as raised:
        parse_client_frame(text)
    assert raised.value.code == code
    assert raised.value.frame_id == frame_id


def test_channel_names() -> None:
    assert is_valid_channel("project:12:staff")
    assert is_valid_channel("task:40:shared")
    assert is_valid_channel("user:7")
    assert is_valid_channel("a:B_c-9:x:y")
    assert not is_valid_channel("user")
    assert not is_valid_channel("user:")
    assert not is_valid_channel("user:7\n")
    assert not is_valid_channel("p:" + "x" * 127)


def test_event_frame_splices_the_data_bytes_and_is_one_json_line() -> None:
    pub = Publication("project:12:staff", 42, "ab12", '{"text":"héllo","n":[1,2]}'.encode(), 1764921600123)

    text = encode_event(pub)

    assert "\n" not in text
    assert json.loads(text) == {
        "type": "event",
        "channel": "project:12:staff",
        "offset": 42,
        "epoch": "ab12",
        "ts": 1764921600123,
        "data": {"text": "héllo", "n": [1, 2]},
    }


@pytest.mark.parametrize("epoch", ["", "ab12cd34", 'quote"and\\slash', "é\u2028"])
@pytest.mark.parametrize("ts", [0, 1764921600123])
def test_event_frame_is_the_compact_json_of_the_frame(epoch: str, ts: int) -> None:
    pub = Publication("project:12:shared", 7, epoch, b'{"a":[1,"\\u00e9"]}', ts)
    frame: dict[str, object] = {"type": "event", "channel": pub.channel, "offset": 7, "epoch": epoch}
    if ts:
        frame["ts"] = ts
    frame["data"] = {"a": [1, "é"]}

    assert encode_event(pub) == json.dumps(frame, separators=(",", ":"))


def test_an_ephemeral_event_frame_has_no_time() -> None:
    assert "ts" not in json.loads(encode_event(Publication("project:12:staff", 0, "", b"{}")))


def test_subscribed_frame() -> None:
    text = encode_subscribed(1, "user:7", StreamPosition(3, "e"), recovered=True, reload=False)

    assert json.loads(text) == {
        "type": "subscribed",
        "id": 1,
        "channel": "user:7",
        "position": {"offset": 3, "epoch": "e"},
        "recovered": True,
        "reload": False,
    }


@pytest.mark.parametrize("frame_id", [None, 0, 7, 2**53])
@pytest.mark.parametrize(("recovered", "reload"), [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("epoch", ["", "ab12cd34", 'quote"and\\slash', "é\u2028"])
def test_subscribed_frame_is_the_compact_json_of_the_frame(
    frame_id: int | None, recovered: bool, reload: bool, epoch: str
) -> None:
    frame: dict[str, object] = {
        "type": "subscribed",
        "channel": "project:12:shared",
        "position": {"offset": 41, "epoch": epoch},
        "recovered": recovered,
        "reload": reload,
    }
    if frame_id is not None:
        frame["id"] = frame_id

    text = encode_subscribed(
        frame_id, "project:12:shared", StreamPosition(41, epoch), recovered=recovered, reload=reload
    )

    assert text == json.dumps(frame, separators=(",", ":"))


def test_payloads_are_compact_json_objects() -> None:
    assert encode_payload({"a": 1}) == b'{"a":1}'
    assert encode_payload(b'{"a": 1}') == b'{"a": 1}'
    assert encode_payload(b'{\n  "a": 1\n}') == b'{"a":1}'
    with pytest.raises(ValueError, match="object"):
        encode_payload(b"[1]")


def test_close_codes_are_documented_values() -> None:
    assert {c.name: int(c) for c in CloseCode} == {
        "NORMAL": 1000,
        "GOING_AWAY": 1001,
        "MESSAGE_TOO_BIG": 1009,
        "INTERNAL": 1011,
        "SERVICE_RESTART": 1012,
        "TRY_AGAIN_LATER": 1013,
        "BAD_FRAME": 4400,
        "UNAUTHORIZED": 4401,
        "FORBIDDEN": 4403,
        "TIMEOUT": 4408,
        "SLOW_CONSUMER": 4409,
        "RATE_LIMITED": 4429,
        "TOO_MANY_SOCKETS": 4430,
    }
