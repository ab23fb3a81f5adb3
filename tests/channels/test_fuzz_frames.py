"""Property-based fuzzing of client frames against the hub: whatever arrives, the hub answers with well-formed
frames or closes with a documented code, never subscribes a socket to a channel the policy refused, and keeps
serving a well-behaved client afterwards.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.backends.memory import MemoryBroker
from channels.connection import ConnectionLimits
from channels.hub import Hub
from channels.presence import MemoryPresence
from channels.protocol import CloseCode, ConnectionClosedError
from tests.channels.hubkit import HubClient

ALLOWED = "project:1:shared"
DOCUMENTED_CLOSES = {int(code) for code in CloseCode}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
channels = st.sampled_from(
    [
        ALLOWED,
        "project:2:shared",
        "user:9",
        "room:project:1",
        "x",
        "",
        "a:" + "b" * 200,
        "project:1:shared\n",
        "PROJECT:1:shared",
    ]
) | st.text(max_size=40)
frames = st.fixed_dictionaries(
    {"type": st.sampled_from(["subscribe", "unsubscribe", "ping", "presence", "presence_list", "event", "bogus"])},
    optional={
        "id": st.integers(min_value=-5, max_value=2**60) | json_values,
        "channel": channels | json_values,
        "since": st.fixed_dictionaries(
            {"offset": st.integers(min_value=-3, max_value=2**64), "epoch": st.text(max_size=80)}
        )
        | json_values,
        "data": json_values,
    },
)
texts = (
    frames.map(json.dumps)
    | json_values.map(json.dumps)
    | st.text(max_size=200)
    | st.binary(max_size=200).map(lambda b: b.decode("utf-8", "replace"))
)


async def policy(principal: object, channel: str) -> bool:
    return channel.startswith("project:1:") or channel == "room:project:1"


async def scenario(inputs: list[str]) -> None:
    broker = MemoryBroker()
    await broker.start()
    hub = Hub(broker, MemoryPresence(), authorize=policy, presence_enabled=lambda c: c.startswith("room:"))
    await hub.start()
    try:
        fuzzer = HubClient(hub, limits=ConnectionLimits(max_subscriptions=3, frame_burst=10_000))
        for text in inputs:
            try:
                await hub.handle_frame(fuzzer.conn, text)
            except ConnectionClosedError as closed:
                assert int(closed.code) in DOCUMENTED_CLOSES
                break
        await asyncio.sleep(0)
        for frame in fuzzer.transport.frames():  # every line is a JSON object with a type
            assert isinstance(frame, dict) and isinstance(frame.get("type"), str)
            if frame["type"] == "subscribed":
                assert frame["channel"] in (ALLOWED, "project:1:staff", "room:project:1") or frame[
                    "channel"
                ].startswith("project:1:"), frame
        assert len(fuzzer.conn.subscriptions) <= 3
        # The hub still serves a well-behaved client.
        good = HubClient(hub, principal="u2")
        reply = await good.subscribe(ALLOWED)
        assert reply["type"] == "subscribed"
        await hub.publish(ALLOWED, {"n": 1})
        await good.transport.wait_for_frame(lambda f: f.get("type") == "event" and f.get("data") == {"n": 1})
    finally:
        await hub.close()
        await broker.close()


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(texts, max_size=25))
def test_arbitrary_frames_never_break_the_hub(inputs: list[str]) -> None:
    asyncio.run(asyncio.wait_for(scenario(inputs), timeout=20))


# Cases worth keeping whatever hypothesis explores: each once broke, or nearly broke, a hub somewhere.
REGRESSIONS: list[list[Any]] = [
    ['{"type":"subscribe","channel":"project:1:shared","since":{"offset":18446744073709551616,"epoch":"x"}}'],
    ['{"type":"subscribe","id":true,"channel":"project:1:shared"}'],
    ['{"type":"presence","channel":"room:project:1","data":{"a":' + "[" * 200 + "]" * 200 + "}}"],
    [
        '{"type":"subscribe","channel":"project:1:shared"}',
        '{"type":"subscribe","channel":"project:1:shared"}',
        '{"type":"unsubscribe","channel":"project:1:shared"}',
        '{"type":"unsubscribe","channel":"project:1:shared"}',
    ],
    ["[" * 100_000],
    ['{"type":"presence","channel":"room:project:1","data":{"x":"' + "y" * 10_000 + '"}}'],
    ["\ud800", "{}", "null", "1e999999"],
]


def test_regression_corpus() -> None:
    for inputs in REGRESSIONS:
        asyncio.run(asyncio.wait_for(scenario([str(i) for i in inputs]), timeout=20))
