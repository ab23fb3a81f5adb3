"""`Connection`: coalescing writer, bounded queue, slow-consumer close, rate limit."""

from __future__ import annotations

import asyncio

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


class NowaitFake(FakeTransport):
    """A transport with a synchronous write path whose buffer can be 'full'."""

    def __init__(self) -> None:
        super().__init__()
        self.buffer_full = False
        self.nowait_writes = 0

    def send_text_nowait(self, text: str) -> bool:
        if self.buffer_full:
            return False
        self.nowait_writes += 1
        self.messages.append(text)
        return True


async def test_idle_connections_write_through_the_nowait_path_and_keep_order_under_backpressure() -> None:
    transport = NowaitFake()
    conn = Connection(transport, "u1")
    conn.start()
    await asyncio.sleep(0)  # the writer is now idle

    conn.enqueue("1")
    conn.enqueue("2")
    transport.buffer_full = True
    conn.enqueue("3")  # queued for the writer
    transport.buffer_full = False
    conn.enqueue("4")  # must queue behind "3", not overtake it
    await wait_until(lambda: "\n".join(transport.messages).split("\n") == ["1", "2", "3", "4"])
    conn.enqueue("5")

    assert transport.nowait_writes == 3
    assert "\n".join(transport.messages).split("\n") == ["1", "2", "3", "4", "5"]
    await conn.close(CloseCode.NORMAL, "")


async def test_a_nowait_write_failure_closes_the_connection() -> None:
    class Broken(NowaitFake):
        def send_text_nowait(self, text: str) -> bool:
            raise ConnectionResetError

    conn = Connection(Broken(), "u1")
    conn.start()
    await asyncio.sleep(0)

    assert conn.enqueue("1") is False
    assert conn.close_code == CloseCode.GOING_AWAY
    await conn.wait_closed()
