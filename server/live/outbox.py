"""The transactional outbox: events are stored with the change they describe and published after it commits.

A request handler calls :meth:`OutboxRelay.record` inside its transaction; the rows commit or roll back with the
change. Right after the commit the request hands its rows to the relay (:meth:`OutboxRelay.hand_over`), which
publishes them from memory in its next turn: no read back, so an event reaches sockets a database round trip
sooner, and what several requests committed while the loop was busy is published in one turn (the hub then
coalesces it per socket). The relay deletes published rows together, in one statement, at most ``delete_delay``
seconds after the first of them was published (a steady stream of changes would otherwise cost one write
transaction per change, as much CPU as the change's own statements). The rows are the safety net:
every ``poll_interval`` seconds the relay also reads the table and publishes this node's rows older than ``grace``
seconds (never handed over, or their publish failed) and the rows of dead nodes. The poll runs on the clock, however
busy the node is. If the broker is unreachable, rows stay and are retried with backoff.

Who is dead: each relay stamps its node in ``outbox_nodes`` (`OutboxNode`) at every poll and deletes the stamp when
it stops. Rows older than ``orphan_after`` seconds whose node has not stamped for ``node_ttl`` seconds are adopted.
An overloaded node that is still publishing its own rows, however late, keeps them: adopting by age alone
published them twice, and each duplicate went to every subscriber, which loaded the node further.

Guarantees: every committed event is published at least once, and reaches subscribers once. Each row carries an
``event_id`` (a uuid written with it) that the relay passes as the broker's idempotency key on every channel, so a
row published twice is dropped by the broker (no second offset, nothing sent) as long as the repeat comes within
the broker's idempotency window (5 minutes; `channels.broker.IDEMPOTENCY_TTL_SECONDS`). That covers the ways a
row goes out twice: a node killed between publishing a row and deleting it (another node adopts the row after
``node_ttl``), a node whose stamps stopped for ``node_ttl`` (its event loop stalled that long, or its database
connection failed) publishing after all, a dead node's row adopted by two nodes (SQLite has no ``SKIP LOCKED``),
and a publish whose reply was lost and is retried. One task publishes, and it remembers the rows it published
(until deleted, then the last 10,000 ids), so a node does not even ask twice. A node that reaches the database but
not its broker keeps stamping, so its rows wait for its own broker to come back. Per node, events are published in
the order their requests handed them over; after a failed publish the relay publishes from the table only, in id
order, until it is drained, so nothing committed later overtakes what was waiting. An event adopted from a dead node
may still arrive after younger events of another node; events are snapshots carrying a version, so clients drop
versions they have already seen.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import delete, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.loops import Clock, Loop
from server.db import Database, insert_at_commit, utcnow
from server.models import OutboxEvent, OutboxNode
from server.observability import OUTBOX_FAILURES, OUTBOX_LAG, OUTBOX_PUBLISHED

log = logging.getLogger(__name__)

OUTBOX_EVENTS = OutboxEvent.__table__  # type: ignore[attr-defined]


@dataclass(slots=True)
class RecordedEvent:
    """An event a request recorded (`OutboxRelay.record`): a row of ``outbox_events`` once its transaction commits,
    handed to the relay as it is, without reading it back. The table's `OutboxEvent` rows have the same fields."""

    channels: str
    payload: str
    node_id: str
    event_id: str
    created_at: dt.datetime
    id: int | None = field(default=None, init=False)

    def columns(self) -> dict[str, Any]:
        """What is inserted: every column but the id, which the database gives (`inserted`)."""
        return {
            "channels": self.channels,
            "payload": self.payload,
            "node_id": self.node_id,
            "event_id": self.event_id,
            "created_at": self.created_at,
        }

    def inserted(self, row_id: int) -> None:
        self.id = row_id


OutboxRow = OutboxEvent | RecordedEvent  # what the relay publishes: handed over, or read from the table


class Publish(Protocol):
    """Publishes ``data`` on ``channel``; with ``event_id``, the broker publishes that id once per channel (its
    idempotency key), so the relay's repeats are dropped. Others (live KPIs) publish through it without one."""

    def __call__(self, channel: str, data: bytes, event_id: str | None = None, /) -> Awaitable[object]: ...


class PublishBatch(Protocol):
    """Publishes ``(channel, data, event_id)`` items in order, in one round trip where the broker can (Redis), so
    they reach every node together; per item its position, or None if it was not made. Per channel, the items made
    are a prefix of that channel's items (`channels.hub.Hub.publish_batch`)."""

    def __call__(self, items: Sequence[tuple[str, bytes, str]], /) -> Awaitable[Sequence[object | None]]: ...


class PublishIncomplete(Exception):
    """Some of a batch's publications were not made; their rows are published from the table, in order."""


RowKey = tuple[int, dt.datetime]
_RECENT = 10_000  # ids of deleted rows remembered against late hand-overs (a few minutes of heavy writing)


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        publish: Publish,
        *,
        publish_batch: PublishBatch | None = None,
        node_id: str | None = None,
        batch_size: int = 200,
        poll_interval: float = 1.0,
        delete_delay: float = 0.2,
        grace: float = 1.0,
        orphan_after: float = 5.0,
        node_ttl: float = 15.0,
        max_backoff: float = 5.0,
        clock: Clock | None = None,
        wall_clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.db = db
        self.publish = publish
        # Rows handed over together are published in one batch when given (one Redis round trip), so they reach
        # every node in one read and sockets get them in one message; otherwise one publish after another.
        self.publish_batch = publish_batch
        self.node_id = node_id or uuid.uuid4().hex
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.delete_delay = delete_delay
        self.grace = grace
        self.orphan_after = orphan_after
        self.node_ttl = node_ttl
        self.max_backoff = max_backoff
        # Turns run when rows are handed over or kicked, and every poll; after a failure, 0.2 s doubling up to
        # max_backoff (a hand-over does not cut it short: the broker or database just failed).
        self.loop = Loop(
            "outbox-relay",
            self._pass,
            interval=poll_interval,
            first_delay=0,
            backoff_base=0.2,
            backoff_max=max_backoff,
            clock=clock,
            on_failure=self._failed,
        )
        self._next_poll: float | None = None  # clock time of the next full turn (read the table, stamp this node)
        self._now = wall_clock  # what row ages (grace, orphans, node stamps) are measured against
        self._full = False  # the next turn reads the table (a poll, a kick), not only deletes what was published
        self._ready: list[OutboxRow] = []  # committed, handed over, not yet published
        # After a failed publish the table holds rows older than those handed over since: until it is drained,
        # the relay publishes from the table only (in id order) so that no event overtakes an earlier one.
        self._backlog = False
        # Rows are known by (id, created_at): SQLite reuses the id of a deleted last row, the pair is not reused.
        self._published: dict[RowKey, int] = {}  # published, delete not yet committed
        # Clock time by which what is in ``_published`` is deleted (a published row waits at most ``delete_delay``).
        self._delete_at: float | None = None
        # Deleted lately: a hand-over arriving after the relay took its rows from the table is not published again.
        self._recent: OrderedDict[RowKey, None] = OrderedDict()
        # Rows whose publish failed after some of their channels: how many channels have the event.
        self._partial: dict[RowKey, int] = {}
        self.published = 0

    def record(self, session: AsyncSession, channels: Sequence[str], payload: dict[str, Any]) -> RecordedEvent:
        """Store an event for ``channels`` (published to each, in order) in ``session``'s transaction; `hand_over`
        the row after the commit (its id is known by then)."""
        if not channels or any(not c or " " in c for c in channels):
            raise ValueError(f"outbox: bad channel list {channels!r}")
        row = RecordedEvent(
            channels=" ".join(channels),
            payload=json.dumps(payload, separators=(",", ":")),
            node_id=self.node_id,
            event_id=uuid.uuid4().hex,
            created_at=self._now(),  # ages (grace, orphans) are measured against this same clock
        )
        insert_at_commit(session, OUTBOX_EVENTS, row.columns(), row.inserted)
        return row

    def hand_over(self, rows: Sequence[OutboxRow]) -> None:
        """Publish ``rows``, whose transaction has committed, in the relay's next turn, in this order."""
        self._ready.extend(rows)
        self.loop.wake()

    def kick(self) -> None:
        """Read the table and publish whatever is pending now rather than at the next poll."""
        self._full = True
        self.loop.wake()

    async def _publish_ready(self) -> None:
        """Publish the rows handed over, including those handed over while this runs.

        Raises:
            Exception: what the broker raised; the rows not yet published stay in the table for `flush`.
        """
        while self._ready:
            rows, self._ready = self._ready, []
            try:
                if self.publish_batch is None:
                    for row in rows:
                        await self._publish_row(row)
                else:
                    await self._publish_rows(rows, self.publish_batch)
            except Exception:
                self._ready.clear()
                raise

    async def _publish_rows(self, rows: list[OutboxRow], publish_batch: PublishBatch) -> None:
        """Publish ``rows`` as one batch, in order; a row counts as published once all its channels have it.

        Raises:
            PublishIncomplete: some publications were not made (or what the batch raised); the relay then publishes
                from the table in id order, so on each channel nothing overtakes what was not made, and what was
                made is dropped by its idempotency key.
        """
        todo: list[tuple[RowKey, OutboxRow, int]] = []  # row, and how many items it has in the batch
        items: list[tuple[str, bytes, str]] = []
        for row in rows:
            assert row.id is not None, "rows are published after their commit"
            key = (row.id, row.created_at)
            if key in self._published or key in self._recent:
                continue
            data = row.payload.encode()
            channels = row.channels.split()[self._partial.pop(key, 0) :]
            items.extend((channel, data, row.event_id) for channel in channels)
            todo.append((key, row, len(channels)))
        if not items:
            return
        positions = await publish_batch(items)
        start, missing = 0, 0
        for key, row, count in todo:
            made = positions[start : start + count]
            start += count
            if all(p is not None for p in made):
                assert row.id is not None
                self._published[key] = row.id
                self.published += 1
                OUTBOX_PUBLISHED.inc()
            else:
                missing += 1
        if missing:
            raise PublishIncomplete(f"{missing} of {len(todo)} events not published")

    async def _publish_row(self, row: OutboxRow) -> None:
        assert row.id is not None, "rows are published after their commit"
        key = (row.id, row.created_at)
        if key in self._published or key in self._recent:
            return
        data = row.payload.encode()
        channels = row.channels.split()
        # After a failed publish, the retry starts at the channel that failed: the ones before it have the event.
        start = self._partial.pop(key, 0)
        for index in range(start, len(channels)):
            try:
                await self.publish(channels[index], data, row.event_id)
            except BaseException:
                if index:
                    self._partial[key] = index
                raise
        self._published[key] = row.id
        self.published += 1
        OUTBOX_PUBLISHED.inc()

    def start(self) -> None:
        self.loop.start()

    async def stop(self) -> None:
        """Stop the loop after one last attempt to publish what this node recorded."""
        await self.loop.stop()
        self._ready.clear()  # committed: the table has them, in order
        try:
            await asyncio.wait_for(self.flush(grace=0.0), timeout=5)
        except Exception:
            log.warning("outbox: events left unpublished at shutdown; another node adopts them", exc_info=True)
        try:
            async with self.db.session() as session:  # what is left is another node's to publish, now
                await session.exec(delete(OutboxNode).where(col(OutboxNode.node_id) == self.node_id))
                await session.commit()
        except Exception:
            log.warning("outbox: could not remove this node's stamp; its rows wait %.0fs", self.node_ttl, exc_info=True)

    async def _turn(self, full: bool) -> None:
        if self._backlog:
            self._ready.clear()  # committed: the table has them, behind the older rows
            await self.flush(grace=0.0)
            self._backlog = False
            return
        await self._publish_ready()
        if full:
            await self.flush()
            return
        now = self.loop.clock.now()
        if self._published and self._delete_at is None:
            self._delete_at = now + self.delete_delay
        if self._delete_at is not None and now >= self._delete_at:
            await self._delete_published()

    async def _pass(self) -> float:
        now = self.loop.clock.now()
        if self._next_poll is None or now >= self._next_poll:
            # On the clock, not only when idle: a node handing rows over all the time still stamps itself
            # and still finds rows that were never handed over.
            self._full = True
            self._next_poll = now + self.poll_interval
        full, self._full = self._full, False
        await self._turn(full)
        wake_at = self._next_poll if self._delete_at is None else min(self._next_poll, self._delete_at)
        return max(0.0, wake_at - self.loop.clock.now())

    def _failed(self, failures: int) -> None:
        OUTBOX_FAILURES.inc()
        # Rows handed over since are published after the table's older ones (see ``_backlog``).
        self._backlog = True

    async def flush(self, grace: float | None = None) -> int:
        """Publish this node's rows older than ``grace`` (default: the relay's) and adopted orphans.

        Returns:
            How many events were published.

        Raises:
            Exception: whatever the broker or database raised; unpublished rows stay for the next attempt.
        """
        await self._delete_published()
        await self._stamp()
        total = 0
        while True:
            count, complete = await self._flush_batch(self.grace if grace is None else grace)
            total += count
            if not complete:
                return total

    async def _delete_published(self) -> None:
        """Delete the rows published after their commit (one statement for every request since the last delete)."""
        self._delete_at = None
        if not self._published:
            return
        done = list(self._published)
        ids = [self._published[k] for k in done]
        # A small hot write: on a SQLite file one hop to the writer thread for the statement and its commit.
        await self.db.write(lambda conn: conn.execute(delete(OutboxEvent).where(col(OutboxEvent.id).in_(ids))))
        self._forget(done)

    async def _stamp(self) -> None:
        """Record that this node's relay is alive (its rows are its own to publish); forget nodes gone for a day."""
        now = self._now()
        async with self.db.session() as session:
            updated = await session.exec(
                update(OutboxNode).where(col(OutboxNode.node_id) == self.node_id).values(seen_at=now)
            )
            if not updated.rowcount:
                session.add(OutboxNode(node_id=self.node_id, seen_at=now))
                await session.exec(delete(OutboxNode).where(col(OutboxNode.seen_at) < now - dt.timedelta(days=1)))
            await session.commit()

    def _forget(self, deleted: list[RowKey]) -> None:
        for key in deleted:
            self._published.pop(key, None)
            self._partial.pop(key, None)
            self._recent[key] = None
        while len(self._recent) > _RECENT:
            self._recent.popitem(last=False)

    async def _flush_batch(self, grace: float) -> tuple[int, bool]:
        """One batch: (rows published now, whether it was a full batch that may have more behind it)."""
        now = self._now()
        mine = (col(OutboxEvent.node_id) == self.node_id) & (
            col(OutboxEvent.created_at) <= now - dt.timedelta(seconds=grace)
        )
        alive = select(OutboxNode.node_id).where(col(OutboxNode.seen_at) >= now - dt.timedelta(seconds=self.node_ttl))
        orphaned = (col(OutboxEvent.created_at) < now - dt.timedelta(seconds=self.orphan_after)) & col(
            OutboxEvent.node_id
        ).not_in(alive)
        async with self.db.session() as session:
            stmt = select(OutboxEvent).where(or_(mine, orphaned)).order_by(col(OutboxEvent.id)).limit(self.batch_size)
            if self.db.dialect == "postgresql":
                # Several nodes may adopt the same orphans: each row goes to exactly one of them.
                stmt = stmt.with_for_update(skip_locked=True)
            rows = (await session.exec(stmt)).all()
            done: list[RowKey] = []
            before = self.published
            try:
                for row in rows:
                    await self._publish_row(row)
                    assert row.id is not None
                    done.append((row.id, row.created_at))
            finally:
                if done:
                    await session.exec(delete(OutboxEvent).where(col(OutboxEvent.id).in_(k[0] for k in done)))
                await session.commit()
                self._forget(done)
            if done:
                OUTBOX_LAG.set((self._now() - rows[0].created_at).total_seconds())
            return self.published - before, len(rows) == self.batch_size
