"""The transactional outbox: events are stored with the change they describe and published after it commits.

A request handler calls :meth:`OutboxRelay.record` inside its transaction; the rows commit or roll back with the
change. After the commit the handler kicks the relay, which publishes pending rows in id order and deletes them.
If the broker is unreachable the rows stay and are retried with backoff; if the node dies first, another node
adopts rows older than ``orphan_after`` seconds.

Guarantees: every committed event is published at least once. Per node, events are published in commit order;
events are snapshots carrying a version, so a duplicate (publish succeeded, delete did not) or an event adopted
late from a dead node is harmless to clients that drop versions they have already seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import delete, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.db import Database, utcnow
from server.models import OutboxEvent
from server.observability import OUTBOX_FAILURES, OUTBOX_LAG, OUTBOX_PUBLISHED

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], Awaitable[object]]


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        publish: Publish,
        *,
        node_id: str | None = None,
        batch_size: int = 200,
        poll_interval: float = 1.0,
        orphan_after: float = 5.0,
        max_backoff: float = 5.0,
    ) -> None:
        self.db = db
        self.publish = publish
        self.node_id = node_id or uuid.uuid4().hex
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.orphan_after = orphan_after
        self.max_backoff = max_backoff
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.published = 0

    def record(self, session: AsyncSession, channel: str, payload: dict[str, Any]) -> None:
        """Store an event for ``channel`` in ``session``'s transaction."""
        session.add(
            OutboxEvent(channel=channel, payload=json.dumps(payload, separators=(",", ":")), node_id=self.node_id)
        )

    def kick(self) -> None:
        """Publish pending events now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Stop the loop after one last attempt to publish what this node recorded."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await asyncio.wait_for(self.flush(), timeout=5)
        except Exception:
            log.warning("outbox: events left unpublished at shutdown; another node adopts them", exc_info=True)

    async def _run(self) -> None:
        failures = 0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)
            self._wake.clear()
            try:
                await self.flush()
                failures = 0
            except Exception:
                OUTBOX_FAILURES.inc()
                failures += 1
                delay = min(self.max_backoff, 0.1 * 2**failures) * (0.5 + random.random() / 2)
                log.warning(
                    "outbox: publishing failed (%d in a row); retrying in %.2fs", failures, delay, exc_info=True
                )
                await asyncio.sleep(delay)

    async def flush(self) -> int:
        """Publish every pending event this node owns or adopts.

        Returns:
            How many events were published.

        Raises:
            Exception: whatever the broker or database raised; unpublished rows stay for the next attempt.
        """
        total = 0
        while True:
            count = await self._flush_batch()
            total += count
            if count < self.batch_size:
                return total

    async def _flush_batch(self) -> int:
        orphaned = utcnow() - dt.timedelta(seconds=self.orphan_after)
        async with self.db.session() as session:
            stmt = (
                select(OutboxEvent)
                .where(or_(col(OutboxEvent.node_id) == self.node_id, col(OutboxEvent.created_at) < orphaned))
                .order_by(col(OutboxEvent.id))
                .limit(self.batch_size)
            )
            if self.db.dialect == "postgresql":
                # Several nodes may adopt the same orphans: each row goes to exactly one of them.
                stmt = stmt.with_for_update(skip_locked=True)
            rows = (await session.exec(stmt)).all()
            done: list[int] = []
            try:
                for row in rows:
                    await self.publish(row.channel, row.payload.encode())
                    assert row.id is not None
                    done.append(row.id)
            finally:
                if done:
                    await session.exec(delete(OutboxEvent).where(col(OutboxEvent.id).in_(done)))
                await session.commit()
            self.published += len(done)
            if done:
                OUTBOX_PUBLISHED.inc(len(done))
                OUTBOX_LAG.set((utcnow() - rows[0].created_at).total_seconds())
            return len(done)
