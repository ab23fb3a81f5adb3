"""The outbox relay: rows published right after their commit, exactly once per node, and retried on failure.

Runs against a real migrated SQLite database; the "broker" is a recording coroutine that can be made to fail.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlmodel import select

from channels.loops import ManualClock
from server import migrate
from server.db import Database, utcnow
from server.live.outbox import OutboxRelay
from server.models import OutboxEvent, OutboxNode


class Broker:
    """Records publishes; ``fail`` makes them raise."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.event_ids: list[str] = []
        self.fail = False
        self.fail_on: str | None = None  # fail publishes to this channel only

    async def publish(self, channel: str, data: bytes, event_id: str | None = None) -> None:
        assert event_id is not None, "the relay publishes every row with its event id"
        if self.fail or channel == self.fail_on:
            raise ConnectionError("broker away")
        self.sent.append((channel, data))
        self.event_ids.append(event_id)


class Wall:
    """A wall clock for row ages (grace, orphans, node stamps) that a test moves forward instead of sleeping: it
    stands still otherwise, so a slow machine cannot age a row past its grace (rows are stamped by this clock)."""

    def __init__(self) -> None:
        self.now = utcnow()
        self.offset = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return self.now + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += dt.timedelta(seconds=seconds)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite:///{tmp_path / 'outbox.db'}"
    migrate.upgrade(url)
    database = Database(url)
    yield database
    await database.close()


async def commit_events(db: Database, relay: OutboxRelay, *payloads: int) -> list[OutboxEvent]:
    async with db.session() as session:
        rows = [relay.record(session, ["project:1:shared"], {"n": n}) for n in payloads]
        await session.commit()
    return rows


async def stored(db: Database) -> list[OutboxEvent]:
    async with db.session() as session:
        return list((await session.exec(select(OutboxEvent))).all())


async def eventually(check: object, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():  # type: ignore[operator]
            await asyncio.sleep(0.01)


async def test_rows_handed_over_are_published_in_order_and_deleted(db: Database) -> None:
    broker = Broker()
    relay = OutboxRelay(db, broker.publish, poll_interval=30)  # no poll: only the hand-over can publish
    relay.start()
    try:
        relay.hand_over(await commit_events(db, relay, 1, 2, 3))
        await eventually(lambda: len(broker.sent) == 3)
        assert [data for _, data in broker.sent] == [b'{"n":1}', b'{"n":2}', b'{"n":3}']
        await eventually(lambda: not relay._published)
        assert await stored(db) == []
    finally:
        await relay.stop()
    assert len(broker.sent) == 3  # stopping reads the table: nothing was left to publish again


async def test_what_several_requests_hand_over_in_one_turn_is_published_in_one_turn(db: Database) -> None:
    broker = Broker()
    relay = OutboxRelay(db, broker.publish, poll_interval=30)
    first = await commit_events(db, relay, 1)
    second = await commit_events(db, relay, 2)
    relay.start()
    turn = 0
    loop = asyncio.get_running_loop()

    def count_turns() -> None:
        nonlocal turn
        turn += 1
        ticker[0] = loop.call_soon(count_turns)

    ticker = [loop.call_soon(count_turns)]
    published_in: list[int] = []
    publish = broker.publish

    async def recording(channel: str, data: bytes, event_id: str | None = None) -> None:
        published_in.append(turn)
        await publish(channel, data, event_id)

    relay.publish = recording
    try:
        relay.hand_over(first)
        relay.hand_over(second)
        await eventually(lambda: len(broker.sent) == 2)
        # Both went out before the loop ran anything else: the hub sees them in one turn and coalesces them.
        assert len(published_in) == 2 and published_in[0] == published_in[1]
        assert [data for _, data in broker.sent] == [b'{"n":1}', b'{"n":2}']
    finally:
        ticker[0].cancel()
        await relay.stop()


async def test_fresh_rows_are_left_to_their_request_and_adopted_after_the_grace(db: Database) -> None:
    broker = Broker()
    wall = Wall()
    relay = OutboxRelay(db, broker.publish, poll_interval=30, grace=0.3, wall_clock=wall)
    await commit_events(db, relay, 1, 2)
    assert await relay.flush() == 0  # the request that committed them hands them over itself
    assert broker.sent == []
    wall.advance(0.35)  # ... but it never did (its hook did not run): the relay takes over
    assert await relay.flush() == 2
    assert [data for _, data in broker.sent] == [b'{"n":1}', b'{"n":2}']
    assert await stored(db) == []


async def test_a_row_published_but_not_yet_deleted_is_not_published_again(db: Database) -> None:
    broker = Broker()
    relay = OutboxRelay(db, broker.publish, poll_interval=30, grace=0.0)
    relay.hand_over(await commit_events(db, relay, 1))
    await relay._publish_ready()  # published; its delete is the relay's next turn
    assert await relay.flush() == 0  # reads the row back: it must not go out twice
    assert len(broker.sent) == 1
    assert await stored(db) == []


async def test_a_failed_publish_leaves_the_rows_for_the_relay_to_retry(db: Database) -> None:
    broker = Broker()
    relay = OutboxRelay(db, broker.publish, poll_interval=0.05, grace=0.1, max_backoff=0.05)
    relay.start()
    try:
        broker.fail = True
        relay.hand_over(await commit_events(db, relay, 1, 2))
        await eventually(lambda: relay.loop.failures >= 3)  # the relay retries while the broker is away, and fails
        assert broker.sent == []
        assert len(await stored(db)) == 2
        broker.fail = False
        await eventually(lambda: len(broker.sent) == 2)
        await eventually(lambda: not relay._published)
        assert [data for _, data in broker.sent] == [b'{"n":1}', b'{"n":2}']
        assert await stored(db) == []
    finally:
        await relay.stop()


async def test_one_row_goes_to_each_of_its_channels_and_a_retry_resumes_at_the_one_that_failed(
    db: Database,
) -> None:
    broker = Broker()
    relay = OutboxRelay(db, broker.publish, poll_interval=30, max_backoff=0.05)
    relay.start()
    try:
        async with db.session() as session:
            row = relay.record(session, ["project:1:staff", "project:1:shared", "user:4"], {"n": 1})
            await session.commit()
        assert [r.channels for r in await stored(db)] == ["project:1:staff project:1:shared user:4"]
        broker.fail_on = "project:1:shared"
        relay.hand_over([row])
        await eventually(lambda: relay.loop.failures >= 3)  # the relay retries the row while that channel fails
        assert broker.sent == [("project:1:staff", b'{"n":1}')]
        broker.fail_on = None
        await eventually(lambda: len(broker.sent) == 3)
        await eventually(lambda: not relay._published)
        # Each channel got the event once, in the row's order; the channel that had it was not sent it again.
        assert [channel for channel, _ in broker.sent] == ["project:1:staff", "project:1:shared", "user:4"]
        assert await stored(db) == []
    finally:
        await relay.stop()
    with pytest.raises(ValueError):
        relay.record(None, ["project:1:staff", "has space"], {})  # type: ignore[arg-type]


async def test_after_a_failed_publish_nothing_overtakes_what_was_waiting(db: Database) -> None:
    broker = Broker()
    relay = OutboxRelay(db, broker.publish, poll_interval=30, grace=5.0, max_backoff=0.05)
    relay.start()
    try:
        broker.fail = True
        relay.hand_over(await commit_events(db, relay, 1))
        await eventually(lambda: relay.loop.failures >= 1)  # row 1 waits in the table (younger than the grace)
        broker.fail = False
        relay.hand_over(await commit_events(db, relay, 2))  # handed over later, committed later
        await eventually(lambda: len(broker.sent) == 2)
        assert [data for _, data in broker.sent] == [b'{"n":1}', b'{"n":2}']
        await eventually(lambda: not relay._published)
        assert await stored(db) == []
        # Back to publishing from memory. The table is empty, so SQLite gives row 3 the id row 1 had: it is
        # still a new row, not one of the rows remembered as published.
        relay.hand_over(await commit_events(db, relay, 3))
        await eventually(lambda: len(broker.sent) == 3)
    finally:
        await relay.stop()
    assert [data for _, data in broker.sent] == [b'{"n":1}', b'{"n":2}', b'{"n":3}']


async def test_a_late_hand_over_of_rows_the_relay_already_took_is_not_published_again(db: Database) -> None:
    broker = Broker()
    relay = OutboxRelay(db, broker.publish, poll_interval=30, grace=0.0)
    rows = await commit_events(db, relay, 1)
    assert await relay.flush() == 1  # published and deleted before the request handed the row over
    relay.hand_over(rows)
    await relay._publish_ready()
    assert len(broker.sent) == 1


async def stamps(db: Database) -> list[str]:
    async with db.session() as session:
        return [node.node_id for node in (await session.exec(select(OutboxNode))).all()]


async def test_a_live_nodes_rows_are_left_to_it_and_a_dead_nodes_rows_are_adopted(db: Database) -> None:
    broker, wall = Broker(), Wall()
    busy = OutboxRelay(db, Broker().publish, node_id="busy", poll_interval=30, node_ttl=0.5, wall_clock=wall)
    neighbour = OutboxRelay(
        db, broker.publish, node_id="neighbour", poll_interval=30, orphan_after=0.1, node_ttl=0.5, wall_clock=wall
    )
    await busy.flush()  # busy's relay is running: it stamps itself
    await commit_events(db, busy, 1, 2)  # committed on busy, which is too loaded to have published them yet
    wall.advance(0.2)  # older than orphan_after
    assert await neighbour.flush() == 0  # busy is alive and publishes its own rows: adopting them would duplicate
    assert broker.sent == []
    wall.advance(0.4)  # busy has not stamped for node_ttl: it died
    assert await neighbour.flush() == 2
    assert [data for _, data in broker.sent] == [b'{"n":1}', b'{"n":2}']
    assert await stored(db) == []
    assert sorted(await stamps(db)) == ["busy", "neighbour"]


async def test_a_node_that_stops_removes_its_stamp(db: Database) -> None:
    relay = OutboxRelay(db, Broker().publish, node_id="leaving", poll_interval=30)
    relay.start()
    await eventually_async(lambda: stamps(db), ["leaving"])
    await relay.stop()
    assert await stamps(db) == []  # what it could not publish is adopted without waiting for node_ttl


async def test_a_node_busy_handing_rows_over_still_polls_the_table(db: Database) -> None:
    broker, clock, wall = Broker(), ManualClock(), Wall()
    relay = OutboxRelay(db, broker.publish, node_id="busy", poll_interval=0.2, grace=0.1, clock=clock, wall_clock=wall)
    await commit_events(db, relay, 0)  # committed, but its request never handed it over (its hook did not run)
    relay.start()
    try:
        async with asyncio.timeout(10):
            await relay.loop.wait_passes(1)  # the first turn reads the table: row 0 is younger than the grace
            assert broker.sent == []
            for n in range(1, 40):  # a hand-over every 25 ms: the relay never waits a whole poll interval
                passes = relay.loop.passes
                relay.hand_over(await commit_events(db, relay, n))
                await relay.loop.wait_passes(passes + 1)
                clock.advance(0.025)
                wall.advance(0.025)
        # Only a poll reads the table, and the clock says one was due 0.2 s in: it found row 0.
        await eventually(lambda: b'{"n":0}' in [data for _, data in broker.sent])
        assert "busy" in await stamps(db)
    finally:
        await relay.stop()


async def test_rows_published_one_by_one_are_deleted_together_within_the_delete_delay(db: Database) -> None:
    """A stream of changes, each handed over in a turn of its own, costs one DELETE per ``delete_delay``, not one
    per change; a published row is never published again while it waits, and none waits longer."""
    broker, clock = Broker(), ManualClock()
    relay = OutboxRelay(db, broker.publish, poll_interval=30, delete_delay=0.2, clock=clock)
    deletes: list[str] = []
    for engine in db.write_engines:
        event.listen(
            engine,
            "before_cursor_execute",
            lambda _conn, _cursor, text, *_: deletes.append(text) if text.startswith("DELETE") else None,
        )
    relay.start()
    try:
        async with asyncio.timeout(10):
            await relay.loop.wait_passes(1)  # the first turn, a poll: nothing to publish yet
            for n in range(1, 6):  # a change every 30 ms
                relay.hand_over(await commit_events(db, relay, n))
                await eventually(lambda n=n: len(broker.sent) == n)
                clock.advance(0.03)
            assert deletes == [] and len(await stored(db)) == 5  # published, kept for one DELETE
            clock.advance(0.1)  # the first was published 0.2 s ago
            await eventually(lambda: not relay._published)
        assert len(deletes) == 1 and await stored(db) == []
        assert [data for _, data in broker.sent] == [b'{"n":%d}' % n for n in range(1, 6)]
    finally:
        await relay.stop()
    assert len(broker.sent) == 5


async def eventually_async(read: object, expected: object, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while await read() != expected:  # type: ignore[operator]
            await asyncio.sleep(0.01)


async def test_rows_of_a_rolled_back_transaction_are_never_published(db: Database) -> None:
    broker = Broker()
    relay = OutboxRelay(db, broker.publish, poll_interval=30, grace=0.0)
    with pytest.raises(RuntimeError):
        async with db.session() as session:
            relay.record(session, ["project:1:shared"], {"n": 1})
            await session.flush()
            raise RuntimeError("the handler failed")
    assert await relay.flush() == 0
    assert broker.sent == []
    assert await stored(db) == []


async def test_a_row_published_by_a_node_that_died_before_deleting_it_is_not_published_again(db: Database) -> None:
    from channels.backends.memory import MemoryBroker
    from channels.broker import HistoryOptions

    broker = MemoryBroker()
    await broker.subscribe("project:1:shared")
    delivered: list[tuple[int, bytes]] = []
    broker.set_handler(lambda pub: delivered.append((pub.offset, pub.data)))
    history = HistoryOptions(size=100, ttl_seconds=60)

    async def publish(channel: str, data: bytes, event_id: str | None = None) -> None:
        await broker.publish(channel, data, history, idempotency_key=event_id)

    wall = Wall()
    dying = OutboxRelay(db, publish, node_id="dying", poll_interval=30, node_ttl=0.3, wall_clock=wall)
    adopter = OutboxRelay(
        db, publish, node_id="adopter", poll_interval=30, orphan_after=0.1, node_ttl=0.3, wall_clock=wall
    )
    await dying.flush()  # stamped: alive
    dying.hand_over(await commit_events(db, dying, 1))
    await dying._publish_ready()  # published; the node dies before its next turn would delete the row
    assert len(await stored(db)) == 1
    await eventually(lambda: len(delivered) == 1)
    wall.advance(0.4)  # no stamp for node_ttl: the row is adopted
    assert await adopter.flush() == 1  # the adopter did publish it again...
    assert await stored(db) == []
    adopter.hand_over(await commit_events(db, adopter, 2))
    await adopter._publish_ready()
    await eventually(lambda: len(delivered) == 2)  # the channel is ordered: a repeat would have come before 2
    # ... but the broker knew its event id: once, at offset 1, and no offset was spent on the repeat.
    assert delivered == [(1, b'{"n":1}'), (2, b'{"n":2}')]


async def test_every_channel_of_a_row_gets_the_rows_event_id(db: Database) -> None:
    broker = Broker()
    relay = OutboxRelay(db, broker.publish, poll_interval=30, grace=0.0)
    async with db.session() as session:
        row = relay.record(session, ["project:1:staff", "project:1:shared"], {"n": 1})
        other = relay.record(session, ["project:1:staff"], {"n": 2})
        await session.commit()
    assert await relay.flush() == 2
    assert broker.event_ids == [row.event_id, row.event_id, other.event_id]
    assert row.event_id != other.event_id


class BatchBroker(Broker):
    """Also publishes batches, as `Hub.publish_batch` does: ``refuse`` names (channel, payload) items it does not
    make; on their channel, what follows them is not made either (the made items are a prefix per channel).
    ``fail`` and ``fail_on`` apply to single publishes (the relay's retries from the table) only."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[tuple[str, bytes]]] = []
        self.refuse: set[tuple[str, bytes]] = set()

    async def publish_batch(self, items: Sequence[tuple[str, bytes, str]]) -> list[object | None]:
        self.batches.append([(channel, data) for channel, data, _ in items])
        stopped: set[str] = set()
        made: list[object | None] = []
        for channel, data, event_id in items:
            if channel in stopped or (channel, data) in self.refuse:
                stopped.add(channel)
                made.append(None)
                continue
            self.sent.append((channel, data))
            self.event_ids.append(event_id)
            made.append(len(self.sent))
        return made


async def test_rows_handed_over_together_are_published_as_one_batch_in_order(db: Database) -> None:
    broker = BatchBroker()
    relay = OutboxRelay(db, broker.publish, publish_batch=broker.publish_batch, poll_interval=30)
    async with db.session() as session:
        first = relay.record(session, ["project:1:shared", "project:1:staff"], {"n": 1})
        second = relay.record(session, ["project:1:shared", "project:1:staff"], {"n": 2})
        await session.commit()
    relay.start()
    try:
        relay.hand_over([first])
        relay.hand_over([second])
        await eventually(lambda: len(broker.sent) == 4)
        assert broker.batches == [
            [
                ("project:1:shared", b'{"n":1}'),
                ("project:1:staff", b'{"n":1}'),
                ("project:1:shared", b'{"n":2}'),
                ("project:1:staff", b'{"n":2}'),
            ]
        ]
        assert broker.event_ids == [first.event_id, first.event_id, second.event_id, second.event_id]
        await eventually(lambda: not relay._published)
        assert await stored(db) == []
    finally:
        await relay.stop()
    assert len(broker.sent) == 4


async def test_rows_a_batch_did_not_make_are_published_from_the_table_in_order(db: Database) -> None:
    broker = BatchBroker()
    relay = OutboxRelay(
        db, broker.publish, publish_batch=broker.publish_batch, poll_interval=30, grace=5.0, max_backoff=0.05
    )
    relay.start()
    try:
        broker.refuse = {("project:1:shared", b'{"n":2}')}
        broker.fail_on = "project:1:shared"  # the retries from the table fail too, until the broker is back
        relay.hand_over(await commit_events(db, relay, 1, 2, 3))
        await eventually(lambda: relay.loop.failures >= 2)
        assert broker.sent == [("project:1:shared", b'{"n":1}')]  # 3 did not overtake 2
        broker.refuse, broker.fail_on = set(), None
        relay.hand_over(await commit_events(db, relay, 4))  # handed over later: after what was waiting
        await eventually(lambda: len(broker.sent) == 4)
        assert [data for _, data in broker.sent] == [b'{"n":1}', b'{"n":2}', b'{"n":3}', b'{"n":4}']
        await eventually(lambda: not relay._published)
        assert await stored(db) == []
    finally:
        await relay.stop()
    assert len(broker.sent) == 4  # row 1, made by the batch, was not published again
