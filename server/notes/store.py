"""The notes' CRDT state in the application database: `SqlNoteStore`, the `crdt.storage.NoteStore` of a node.

An append-only update log per note (table ``note_updates``) compacted into one snapshot (``note_snapshots``), shared
by every node; the guarantees are the Protocol's (``crdt/storage.py``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

import pycrdt
from sqlalchemy import BigInteger, Connection, Row, Table, any_, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError

from crdt.storage import StoredNote
from server.db import Database, utcnow
from server.models import NoteSnapshot, NoteUpdate
from server.sqlite_direct import NotNow

_MERGE_SLICE = 64  # log rows merged per turn of the event loop while compacting


async def _merged(snapshot: list[bytes], rows: list[bytes]) -> bytes:
    """The snapshot (if any) and the log rows as one update. A merge runs on the loop's thread (pycrdt holds the
    interpreter throughout), and one of a whole log was a stall every edit of every note waited behind, so the rows
    are merged a slice per turn and the snapshot last: no edit waits behind more than one slice."""
    if len(rows) > _MERGE_SLICE:
        slices = []
        for start in range(0, len(rows), _MERGE_SLICE):
            slices.append(pycrdt.merge_updates(*rows[start : start + _MERGE_SLICE]))
            await asyncio.sleep(0)
        rows = slices
    parts = snapshot + rows
    return pycrdt.merge_updates(*parts) if len(parts) > 1 else parts[0]


# Deleting the folded rows by id, as one parameter: SQLAlchemy's IN expands to one bound parameter per id, which
# cost three times the deletion itself (bench/README.md, notes, session 19). Each statement is built once.
_Drop = Callable[[Connection, list[int]], None]


def _dropper(updates: Table, dialect: str) -> _Drop:
    """Deletes the log rows whose ids are given, in one statement with one parameter."""
    if dialect == "sqlite":
        listed = func.json_each(bindparam("ids")).table_valued("value")
        sqlite_drop = delete(updates).where(updates.c.id.in_(select(listed.c.value)))

        def drop_sqlite(conn: Connection, ids: list[int]) -> None:
            conn.execute(sqlite_drop, {"ids": json.dumps(ids)})

        return drop_sqlite
    postgresql_drop = delete(updates).where(updates.c.id == any_(bindparam("ids", type_=ARRAY(BigInteger))))

    def drop_postgresql(conn: Connection, ids: list[int]) -> None:
        conn.execute(postgresql_drop, {"ids": ids})

    return drop_postgresql


def _settle(rows: list[tuple[int, bytes, asyncio.Future[None]]], error: Exception | None) -> None:
    for _, _, done in rows:
        if done.done():
            continue
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)


class SqlNoteStore:
    """A `NoteStore` in the application database (SQLite or PostgreSQL), through SQLAlchemy Core.

    Appends are group-committed: every room's append that arrives while a write is in flight joins the next
    transaction (one multi-row INSERT of at most ``max_batch_rows`` rows), so a hundred busy notes cost one commit
    per round trip rather than a hundred, and each `append` still returns only once its row is committed.
    """

    def __init__(self, db: Database, *, max_batch_rows: int = 500) -> None:
        self.db = db
        self._updates = NoteUpdate.__table__  # type: ignore[attr-defined]
        self._snapshots = NoteSnapshot.__table__  # type: ignore[attr-defined]
        self._drop_rows = _dropper(self._updates, db.dialect)
        self._max_batch_rows = max_batch_rows
        self._waiting: list[tuple[int, bytes, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def load(self, note_id: int) -> StoredNote:
        updates, snapshots = self._updates, self._snapshots
        # The log first, then the snapshot: two statements may see two states of the database (SQLite runs each
        # SELECT on its own; PostgreSQL's READ COMMITTED takes a snapshot per statement). A compaction committing in
        # between folds the rows just read into the snapshot read next: they arrive twice, which merging makes
        # harmless. The other order could read the old snapshot and then a log the compaction emptied: content lost.
        async with self.db.engine.connect() as conn:
            rows = (
                (await conn.execute(select(updates.c.data).where(updates.c.note_id == note_id).order_by(updates.c.id)))
                .scalars()
                .all()
            )
            snapshot = (
                await conn.execute(select(snapshots.c.data).where(snapshots.c.note_id == note_id))
            ).scalar_one_or_none()
        stored = ([bytes(snapshot)] if snapshot is not None else []) + [bytes(r) for r in rows]
        return StoredNote(stored, len(rows))

    async def append(self, note_id: int, update: bytes) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._waiting.append((note_id, update, done))
        if self._writer is None:
            self._writer = loop.create_task(self._write_batches(), name="note-log-writer")
        await asyncio.shield(done)  # a cancelled caller must not cancel the other rooms' rows in the same batch

    @property
    def appends_now(self) -> bool:
        return self.db.writes_now

    def append_now(self, rows: Sequence[tuple[int, bytes]]) -> bool:
        if self._waiting or self._writer is not None:
            return False  # appends are on their way: these rows go after them
        if not rows:
            return True
        try:
            self.db.write_now(self._log_rows(rows))
        except NotNow:
            return False
        return True

    async def _write_batches(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self._max_batch_rows]
                del self._waiting[: len(batch)]
                try:
                    await self._insert(batch)
                except Exception as exc:
                    if len(batch) == 1:
                        _settle(batch, exc)
                        continue
                    # One bad row (its note deleted meanwhile) must not fail the other rooms: each on its own.
                    for row in batch:
                        try:
                            await self._insert([row])
                        except Exception as row_exc:
                            _settle([row], row_exc)
                        else:
                            _settle([row], None)
                    continue
                _settle(batch, None)
        finally:
            self._writer = None

    async def _insert(self, rows: list[tuple[int, bytes, asyncio.Future[None]]]) -> None:
        await self.db.write(self._log_rows([(note_id, data) for note_id, data, _ in rows]), brief=True)

    def _log_rows(self, rows: Sequence[tuple[int, bytes]]) -> Callable[[Connection], object]:
        """The write that appends ``rows`` (a note, an update) to the log, as one multi-row INSERT."""
        now = utcnow()
        values = [{"note_id": note_id, "data": data, "created_at": now} for note_id, data in rows]
        statement = insert(self._updates)
        return lambda conn: conn.execute(statement, values)

    async def compact(self, note_id: int) -> bool:
        updates, snapshots = self._updates, self._snapshots

        def read(conn: Connection) -> tuple[Row[Any] | None, list[Row[Any]]]:
            current = conn.execute(
                select(snapshots.c.data, snapshots.c.version).where(snapshots.c.note_id == note_id)
            ).one_or_none()
            rows = conn.execute(
                select(updates.c.id, updates.c.data).where(updates.c.note_id == note_id).order_by(updates.c.id)
            ).all()
            return current, list(rows)

        current, rows = await self.db.read(read)
        if not rows:
            return False
        merged = await _merged(([bytes(current.data)] if current is not None else []), [bytes(r.data) for r in rows])
        ids = [r.id for r in rows]
        drop = self._drop_rows

        # One short transaction on the same path as the appends (``brief``: on SQLite, on the loop's thread when the
        # write lock is free), never a transaction held open across awaits, which made appends wait in SQLite's busy
        # handler. The snapshot's version is the guard between the read above and this write: if another node
        # compacted meanwhile, nothing is written and its snapshot stands.
        def fold(conn: Connection) -> bool:
            now = utcnow()
            if current is None:
                conn.execute(insert(snapshots).values(note_id=note_id, data=merged, version=1, updated_at=now))
            else:
                result = conn.execute(
                    update(snapshots)
                    .where(snapshots.c.note_id == note_id, snapshots.c.version == current.version)
                    .values(data=merged, version=current.version + 1, updated_at=now)
                )
                if result.rowcount != 1:
                    return False  # nothing was written: committing is a no-op
            # Exactly the rows folded in: a row committed meanwhile stays in the log.
            drop(conn, ids)
            return True

        try:
            return await self.db.write(fold, brief=True)
        except IntegrityError:  # another node created the first snapshot at the same time (rolled back)
            return False

    async def log_rows(self, note_id: int) -> int:
        async with self.db.engine.connect() as conn:
            count = (await conn.execute(select(func.count()).where(self._updates.c.note_id == note_id))).scalar_one()
        return int(count)
