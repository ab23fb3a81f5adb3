"""`Connection`: coalescing writer, bounded queue, slow-consumer close, rate limit."""

from __future__ import annotations

import asyncio

import pytest

from channels import connection, frames
from channels.connection import Connection, ConnectionLimits
from channels.protocol import CloseCode
from tests.channels.conftest import FakeTransport, wait_until


async def test_frames_queued_together_are_sent_as_one_newline_joined_message() -> None:
    transport = FakeTransport(blocked=True)
    conn = Connection(transport, "u1")
    conn.start()
    conn.enqueue('{"n":0}')
    await asyncio.sleep(0.01)  # the writer is now stuck sending the first frame
    for i in range(1, 5):
        conn.enqueue(f'{{"n":{i}}}')

    transport.unblock()
    await wait_until(lambda: len(transport.messages) == 2)

    assert transport.messages == ['{"n":0}', '{"n":1}\n{"n":2}\n{"n":3}\n{"n":4}']
    await conn.close(CloseCode.NORMAL, "")


async def test_a_flush_frames_each_distinct_message_once_and_every_connection_gets_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[bytes] = []

    def counting_frame(payload: bytes, opcode: int = frames.BINARY) -> bytes:
        built.append(payload)
        return frames.websocket_frame(payload, opcode)

    monkeypatch.setattr(connection, "websocket_frame", counting_frame)
    transports = [FakeTransport() for _ in range(4)]
    conns = [Connection(t, f"u{i}") for i, t in enumerate(transports)]
    for conn in conns:
        conn.start()
    board, thread = '{"type":"event","n":1}', '{"type":"event","n":2}'  # one object per publication, shared
    for conn in conns[:3]:
        conn.enqueue(board)
    for conn in conns[1:]:
        conn.enqueue(thread)
    await wait_until(lambda: all(t.messages for t in transports))

    assert [t.messages for t in transports] == [[board], [f"{board}\n{thread}"], [f"{board}\n{thread}"], [thread]]
    assert sorted(built) == sorted([board.encode(), f"{board}\n{thread}".encode(), thread.encode()])
    for conn in conns:
        await conn.close(CloseCode.NORMAL, "")


async def test_coalesced_messages_stop_at_max_message_bytes() -> None:
    transport = FakeTransport(blocked=True)
    conn = Connection(transport, "u1", limits=ConnectionLimits(max_message_bytes=20))
    conn.start()
    for i in range(6):
        conn.enqueue(f'{{"n":{i}}}')  # 7 chars each

    transport.unblock()
    await wait_until(lambda: sum(m.count("\n") + 1 for m in transport.messages) == 6)

    assert all(len(m) <= 20 for m in transport.messages)
    assert "\n".join(transport.messages).split("\n") == [f'{{"n":{i}}}' for i in range(6)]
    await conn.close(CloseCode.NORMAL, "")


async def test_overflowing_the_queue_closes_with_slow_consumer_and_drops_the_queue() -> None:
    transport = FakeTransport(blocked=True)
    closed: list[Connection] = []
    conn = Connection(transport, "u1", limits=ConnectionLimits(max_queue_messages=10))
    conn.add_close_callback(closed.append)
    conn.start()

    results = [conn.enqueue("{}") for _ in range(12)]

    assert results == [True] * 10 + [False, False]
    assert conn.close_code == CloseCode.SLOW_CONSUMER
    assert conn.queued_messages == 0
    assert closed == [conn]
    await conn.wait_closed()
    assert transport.closed is not None and transport.closed[0] == 4409


async def test_queue_byte_bound_also_counts() -> None:
    conn = Connection(FakeTransport(blocked=True), "u1", limits=ConnectionLimits(max_queue_bytes=100))
    conn.start()

    assert conn.enqueue("x" * 60)
    assert not conn.enqueue("x" * 60)
    assert conn.close_code == CloseCode.SLOW_CONSUMER
    await conn.wait_closed()


async def test_send_failure_closes_the_connection_once() -> None:
    transport = FakeTransport()
    transport.closed = (1006, "gone")  # sends now raise
    closed: list[Connection] = []
    conn = Connection(transport, "u1")
    conn.add_close_callback(closed.append)
    conn.start()

    conn.enqueue("{}")
    await wait_until(lambda: conn.closed)
    await conn.wait_closed()

    assert conn.close_code == CloseCode.GOING_AWAY
    assert closed == [conn]


async def test_token_bucket_allows_the_burst_then_the_rate() -> None:
    conn = Connection(FakeTransport(), "u1", limits=ConnectionLimits(frame_burst=5, frames_per_second=50))
    conn.start()

    assert [conn.allow_frame() for _ in range(6)] == [True] * 5 + [False]
    await asyncio.sleep(0.05)  # refills ~2.5 tokens
    assert conn.allow_frame()
    await conn.close(CloseCode.NORMAL, "")


class CountingTransport(FakeTransport):
    """Records which task each message was sent from, and can make one chosen send wait for the peer."""

    def __init__(self) -> None:
        super().__init__()
        self.senders: list[asyncio.Task[object] | None] = []
        self.stall_next = False
        self.stalled: asyncio.Event = asyncio.Event()
        self.fail_after_stall = False

    def write_frame(self, frame: bytes) -> bool:
        return False  # every message through send_text, whose calling task is recorded

    async def send_text(self, text: str) -> None:
        self.senders.append(asyncio.current_task())
        if self.stall_next:
            self.stall_next = False
            await self.stalled.wait()
            if self.fail_after_stall:
                raise ConnectionResetError
        self.messages.append(text)


async def test_a_free_socket_is_written_in_place_once_per_turn_with_what_the_turn_queued() -> None:
    transport = CountingTransport()
    conn = Connection(transport, "u1")
    conn.start()

    conn.enqueue("1")
    conn.enqueue("2")  # same turn: shares the message
    assert transport.messages == []  # nothing is written inside the fan-out loop itself
    await asyncio.sleep(0)
    assert transport.messages == ["1\n2"]
    assert transport.senders == [None]  # stepped by the batcher's callback: no task per socket

    conn.enqueue("3")
    await asyncio.sleep(0)
    assert transport.messages == ["1\n2", "3"]
    await conn.close(CloseCode.NORMAL, "")


def write_all(conns: list[Connection], text: str) -> None:
    for conn in conns:
        conn.enqueue(text)


async def test_in_a_burst_a_flush_waits_out_the_window_and_takes_what_came_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(connection.WriteBatcher, "window", 0.5)  # long: nothing here runs that slowly
    monkeypatch.setattr(connection.WriteBatcher, "large", 3)
    transports = [CountingTransport() for _ in range(3)]
    conns = [Connection(t, f"u{i}") for i, t in enumerate(transports)]
    for conn in conns:
        conn.start()

    write_all(conns, "a")
    await asyncio.sleep(0)
    assert [t.messages for t in transports] == [["a"]] * 3  # a lone large flush: at once, as a paced event
    write_all(conns, "b")
    await asyncio.sleep(0)
    assert [t.messages for t in transports] == [["a", "b"]] * 3  # a second, close behind: a burst begins
    write_all(conns, "c")
    await asyncio.sleep(0)
    assert [t.messages for t in transports] == [["a", "b"]] * 3  # held for the window...
    write_all(conns, "d")
    conns[0].enqueue("e")

    await wait_until(lambda: all(len(t.messages) == 3 for t in transports), within=5)
    # ... and what came meanwhile leaves with it, one message per socket.
    assert [t.messages[2] for t in transports] == ["c\nd\ne", "c\nd", "c\nd"]
    for conn in conns:
        await conn.close(CloseCode.NORMAL, "")


async def test_frames_arriving_after_the_window_go_out_at_once_and_end_the_burst(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(connection.WriteBatcher, "window", 0.05)
    monkeypatch.setattr(connection.WriteBatcher, "large", 3)
    transports = [CountingTransport() for _ in range(3)]
    conns = [Connection(t, f"u{i}") for i, t in enumerate(transports)]
    for conn in conns:
        conn.start()
    for text in ("a", "b"):  # a burst begins
        write_all(conns, text)
        await asyncio.sleep(0)

    await asyncio.sleep(0.06)  # the next publication comes later than the window: the paced case
    write_all(conns, "c")
    await asyncio.sleep(0)
    assert [t.messages for t in transports] == [["a", "b", "c"]] * 3  # not held
    write_all(conns, "d")  # close behind it, but the burst is over: a new one begins with this flush
    await asyncio.sleep(0)
    assert [t.messages for t in transports] == [["a", "b", "c", "d"]] * 3
    for conn in conns:
        await conn.close(CloseCode.NORMAL, "")


async def test_small_flushes_never_start_a_burst(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connection.WriteBatcher, "window", 0.5)
    monkeypatch.setattr(connection.WriteBatcher, "large", 3)
    transports = [CountingTransport() for _ in range(2)]  # fewer than a large flush: a quiet project's sockets
    conns = [Connection(t, f"u{i}") for i, t in enumerate(transports)]
    for conn in conns:
        conn.start()

    for n in range(5):  # back to back, each goes out in the next turn
        write_all(conns, str(n))
        await asyncio.sleep(0)
        assert [len(t.messages) for t in transports] == [n + 1] * 2
    for conn in conns:
        await conn.close(CloseCode.NORMAL, "")


async def test_a_send_that_waits_for_the_peer_keeps_later_frames_behind_it() -> None:
    transport = CountingTransport()
    conn = Connection(transport, "u1")
    conn.start()
    transport.stall_next = True
    conn.enqueue("1")
    await asyncio.sleep(0)  # "1" is now in flight, waiting for the peer
    conn.enqueue("2")
    await asyncio.sleep(0)
    conn.enqueue("3")
    await asyncio.sleep(0)
    assert transport.messages == []

    transport.stalled.set()
    await wait_until(lambda: "\n".join(transport.messages).split("\n") == ["1", "2", "3"])
    assert transport.messages == ["1", "2\n3"]
    conn.enqueue("4")
    await wait_until(lambda: transport.messages[-1:] == ["4"])
    await conn.close(CloseCode.NORMAL, "")


async def test_a_send_failing_after_it_waited_closes_the_connection() -> None:
    transport = CountingTransport()
    transport.stall_next = transport.fail_after_stall = True
    conn = Connection(transport, "u1")
    conn.start()
    conn.enqueue("1")
    await asyncio.sleep(0)
    transport.stalled.set()
    await wait_until(lambda: conn.closed)
    await conn.wait_closed()

    assert conn.close_code == CloseCode.GOING_AWAY
    assert conn.enqueue("2") is False


async def test_closing_with_flush_sends_what_is_queued_first() -> None:
    transport = CountingTransport()
    conn = Connection(transport, "u1")
    conn.start()
    conn.enqueue("1")
    conn.enqueue("2")
    await conn.close(CloseCode.GOING_AWAY, "bye", flush=True)

    assert transport.messages == ["1\n2"]
    assert transport.closed == (int(CloseCode.GOING_AWAY), "bye")


async def test_closing_without_flush_drops_the_queue_and_cancels_a_waiting_send() -> None:
    transport = CountingTransport()
    transport.stall_next = True
    conn = Connection(transport, "u1")
    conn.start()
    conn.enqueue("1")
    await asyncio.sleep(0)
    conn.enqueue("2")
    async with asyncio.timeout(5):
        await conn.close(CloseCode.NORMAL, "")

    assert transport.messages == []
    assert conn.queued_messages == 0
