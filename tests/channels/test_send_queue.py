"""`SendQueue`, the one bounded send queue under the hub's `Connection` and the note rooms' `Peer`: the same
asserts run through both, and each keeps its own close default."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from channels.connection import Connection, ConnectionLimits
from channels.protocol import CloseCode
from channels.send_queue import SendQueue
from crdt.transport import Peer, PeerLimits
from tests.channels.conftest import wait_until


class GatedSocket:
    """Both transports (text for a `Connection`, binary for a `Peer`) in memory: records what it was sent, and
    can be blocked to play a client that stops reading, or broken to play one that is gone."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.closed: tuple[int, str] | None = None
        self.broken = False
        self.gate = asyncio.Event()

    async def _take(self, text: str) -> None:
        await self.gate.wait()
        self.sent.extend(text.split("\n"))  # a connection coalesces frames; count them one by one

    async def send_text(self, text: str) -> None:
        if self.broken:
            raise ConnectionError("gone")
        await self._take(text)

    def write(self, data: bytes) -> Awaitable[None] | None:
        if self.broken:
            raise ConnectionError("gone")
        if self.gate.is_set():
            self.sent.append(data.decode())
            return None
        return self._take(data.decode())

    def write_frame(self, frame: bytes) -> bool:
        return False  # no raw socket: every message takes the ordinary send

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


@dataclass
class Kind:
    """One subclass of `SendQueue` under test: how to make it and how to give it a message."""

    make: Callable[[GatedSocket, int], SendQueue[str] | SendQueue[bytes]]
    push: Callable[[SendQueue[str] | SendQueue[bytes], str], None]
    flushes_by_default: bool


def _connection(socket: GatedSocket, max_queue: int) -> Connection:
    conn = Connection(socket, "u1", limits=ConnectionLimits(max_queue_messages=max_queue))
    conn.start()
    return conn


def _push_text(queue: SendQueue[str] | SendQueue[bytes], message: str) -> None:
    assert isinstance(queue, Connection)
    queue.enqueue(message)


def _push_bytes(queue: SendQueue[str] | SendQueue[bytes], message: str) -> None:
    assert isinstance(queue, Peer)
    queue.send(message.encode())


KINDS = {
    "connection": Kind(_connection, _push_text, flushes_by_default=False),
    "peer": Kind(
        lambda socket, max_queue: Peer(socket, "u1", limits=PeerLimits(max_queue_messages=max_queue)),
        _push_bytes,
        flushes_by_default=True,
    ),
}


@pytest.fixture(params=list(KINDS))
def kind(request: pytest.FixtureRequest) -> Kind:
    return KINDS[request.param]


async def _stuck_with(kind: Kind, messages: list[str], max_queue: int = 16) -> tuple[GatedSocket, SendQueue]:  # type: ignore[type-arg]
    """A queue whose first message is in flight to a client that does not read, the rest queued behind it."""
    socket = GatedSocket()
    queue = kind.make(socket, max_queue)
    kind.push(queue, messages[0])
    await asyncio.sleep(0)  # a connection sends at the start of the next loop turn
    for message in messages[1:]:
        kind.push(queue, message)
    assert queue.queued_messages == len(messages) - 1
    return socket, queue


async def test_a_client_that_stops_reading_is_closed_as_a_slow_consumer_once(kind: Kind) -> None:
    socket, queue = await _stuck_with(kind, ["a", "b", "c", "d"], max_queue=3)
    closed: list[object] = []
    queue.add_close_callback(closed.append)

    kind.push(queue, "e")  # one past the bound

    assert queue.close_code == CloseCode.SLOW_CONSUMER and closed == [queue]
    kind.push(queue, "f")  # a closed queue takes nothing and closes nothing twice
    queue.abort(CloseCode.NORMAL, "again", flush=False)
    socket.gate.set()
    async with asyncio.timeout(5):
        await queue.wait_closed()
    assert closed == [queue] and socket.closed == (CloseCode.SLOW_CONSUMER, "slow consumer: send queue overflow")
    # What waited goes out first where closing flushes by default (a peer), never what came after the bound.
    assert socket.sent == (["a", "b", "c", "d"] if kind.flushes_by_default else [])


@pytest.mark.parametrize("flush", [None, True, False])
async def test_abort_flushes_or_drops_what_waits_as_asked_and_by_each_ones_default(
    kind: Kind, flush: bool | None
) -> None:
    socket, queue = await _stuck_with(kind, ["a", "b", "c"])

    if flush is None:
        queue.abort(CloseCode.FORBIDDEN, "revoked")  # type: ignore[call-arg]  # each subclass has its default
    else:
        queue.abort(CloseCode.FORBIDDEN, "revoked", flush=flush)
    socket.gate.set()
    async with asyncio.timeout(5):
        await queue.wait_closed()

    flushed = kind.flushes_by_default if flush is None else flush
    assert socket.sent == (["a", "b", "c"] if flushed else [])
    assert socket.closed == (CloseCode.FORBIDDEN, "revoked")


async def test_a_send_to_a_client_that_is_gone_closes_with_going_away(kind: Kind) -> None:
    socket = GatedSocket()
    socket.broken = True
    queue = kind.make(socket, 16)

    kind.push(queue, "a")
    await wait_until(lambda: queue.closed)

    assert queue.close_code == CloseCode.GOING_AWAY and queue.close_reason == "send failed: ConnectionError"
    await queue.wait_closed()
    assert socket.closed == (CloseCode.GOING_AWAY, "send failed: ConnectionError")
