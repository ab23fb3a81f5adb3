"""The control bus's typed messages: encoded, decoded (older nodes' names too), delivered to every node through
Redis, and malformed ones dropped."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from channels.backends import make_broker
from server.live.control import (
    CONTROL_CHANNEL,
    AccessChanged,
    ControlBus,
    ControlMessage,
    Disconnect,
    Handler,
    Subject,
    decode_control,
    encode_control,
)
from tests.nodes import RedisServer

REDIS = "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(
    "message",
    [
        *(AccessChanged(subject, 7) for subject in Subject),
        Disconnect(3),
        Disconnect(3, "ab" * 32),
    ],
)
def test_every_message_survives_the_wire(message: ControlMessage) -> None:
    assert decode_control(json.loads(json.dumps(encode_control(message)))) == message


def test_names_older_nodes_send_are_read_as_access_changes() -> None:
    assert decode_control({"type": "recheck_task", "task_id": 4}) == AccessChanged(Subject.TASK, 4)
    assert decode_control({"type": "recheck_note", "note_id": 5}) == AccessChanged(Subject.NOTE, 5)
    assert decode_control({"type": "recheck_user", "user_id": 6}) == AccessChanged(Subject.USER, 6)
    assert decode_control({"type": "recheck_project", "project_id": 8}) == AccessChanged(Subject.PROJECT, 8)


@pytest.mark.parametrize(
    "raw",
    [
        None,
        [],
        {"type": "access_changed", "subject": "comment", "id": 1},
        {"type": "access_changed", "subject": "task", "id": "1"},
        {"type": "access_changed", "subject": "task", "id": True},
        {"type": "access_changed", "subject": "task"},
        {"type": "disconnect", "user_id": 1, "token_hash": 5},
        {"type": "recheck_task", "task_id": None},
        {"type": "reboot"},
    ],
)
def test_malformed_messages_are_none(raw: object) -> None:
    assert decode_control(raw) is None


async def test_one_access_change_reaches_every_node_through_redis_and_garbage_is_dropped() -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    received: list[list[ControlMessage]] = [[], []]
    arrived = asyncio.Event()

    def handler(inbox: list[ControlMessage]) -> Handler:
        async def handle(message: ControlMessage) -> None:
            inbox.append(message)
            arrived.set()

        return handle

    async def nothing() -> None:
        return None

    buses = [ControlBus(make_broker(REDIS, prefix), handler(inbox), nothing) for inbox in received]
    raw = make_broker(REDIS, prefix)
    for bus in buses:
        await bus.start()
    await raw.start()
    try:
        await raw.publish(CONTROL_CHANNEL, b"{not json", None)
        await raw.publish(CONTROL_CHANNEL, json.dumps({"type": "access_changed", "subject": "x"}).encode(), None)
        await buses[0].send(AccessChanged(Subject.TASK, 42))
        async with asyncio.timeout(5):
            while not all(received):
                arrived.clear()
                await arrived.wait()
        assert received == [[AccessChanged(Subject.TASK, 42)], [AccessChanged(Subject.TASK, 42)]]
    finally:
        await raw.close()
        for bus in buses:
            await bus.close()


async def test_a_message_the_broker_cannot_take_is_still_acted_on_by_the_node_that_sent_it(tmp_path: Path) -> None:
    """With Redis gone, the sending node re-checks its own sockets at once (others do when Redis comes back)."""
    received: list[ControlMessage] = []

    async def handle(message: ControlMessage) -> None:
        received.append(message)

    async def nothing() -> None:
        return None

    redis = RedisServer(tmp_path).start()
    bus = ControlBus(make_broker(redis.url, f"test:{uuid.uuid4().hex}:"), handle, nothing)
    await bus.start()
    try:
        redis.stop()
        async with asyncio.timeout(15):
            await bus.send(AccessChanged(Subject.USER, 5))
        assert received == [AccessChanged(Subject.USER, 5)]
    finally:
        redis.stop()
        await bus.close()
