"""Where notes' CRDT state lives: an append-only update log per note, compacted into one snapshot.

`NoteStore` is the Protocol rooms use and `MemoryNoteStore` keeps notes in a dict (one process; tests). The
application's store, `server.notes.store.SqlNoteStore`, keeps the log and the snapshot in its database: this package
imports no database.

Guarantees of both:
    - `append` returns only once the update is durable (committed).
    - `load` returns everything appended or compacted so far; applying it in any order gives the same document
      (CRDT updates commute and are idempotent).
    - `compact` is atomic: the merged snapshot is written and exactly the rows it folded in are deleted in one
      transaction, so a crash at any point loses nothing. Concurrent compactions (two nodes) cannot lose rows:
      the snapshot carries a version and only the compaction that read the current version may replace it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pycrdt


@dataclass
class StoredNote:
    """What a store holds for one note.

    Attributes:
        updates: the snapshot (if any) first, then the log rows in append order.
        log_rows: how many log rows are not yet compacted.
    """

    updates: list[bytes] = field(default_factory=list)
    log_rows: int = 0

    def merged(self) -> bytes:
        """The whole note as one update (an empty document's update when nothing is stored)."""
        if not self.updates:
            return b"\x00\x00"
        if len(self.updates) == 1:
            return self.updates[0]
        return pycrdt.merge_updates(*self.updates)


class NoteStore(Protocol):
    """Durable CRDT state of notes."""

    async def load(self, note_id: int) -> StoredNote:
        """Everything stored for ``note_id`` (empty for a note never edited)."""

    async def append(self, note_id: int, update: bytes) -> None:
        """Append one update to the note's log; returns once it is durable.

        Raises:
            Exception: the update was not stored (the caller must not tell anyone about it).
        """

    @property
    def appends_now(self) -> bool:
        """Whether `append_now` can ever succeed (a store that can commit without waiting)."""

    def append_now(self, rows: Sequence[tuple[int, bytes]]) -> bool:
        """Append ``rows`` (a note, an update) in one transaction here and now, without waiting, if the store can.

        Returns:
            True once every row is durable; False if the store cannot write now (nothing was stored: use `append`).
            Rows are durable in the order appended across both methods: while an `append` is unfinished, False.

        Raises:
            Exception: the rows were not stored, none of them.
        """

    async def compact(self, note_id: int) -> bool:
        """Fold the note's log into its snapshot, atomically.

        Returns:
            True if rows were folded in; False if there was nothing to do or another compaction won the race.
        """


class MemoryNoteStore:
    """A `NoteStore` in memory (one process; for tests). With ``appends_now`` it also stores here and now
    (`append_now`), as a SQLite file does."""

    def __init__(self, *, appends_now: bool = False) -> None:
        self.snapshots: dict[int, bytes] = {}
        self.logs: dict[int, list[bytes]] = {}
        self.fail_appends = False
        self._appends_now = appends_now
        self.refuse_now = False  # `append_now` answers False, as a database whose write lock is taken does

    async def load(self, note_id: int) -> StoredNote:
        log = list(self.logs.get(note_id, []))
        snapshot = self.snapshots.get(note_id)
        return StoredNote(([snapshot] if snapshot is not None else []) + log, len(log))

    async def append(self, note_id: int, update: bytes) -> None:
        if self.fail_appends:
            raise OSError("store unavailable")
        await asyncio.sleep(0)
        self.logs.setdefault(note_id, []).append(update)

    @property
    def appends_now(self) -> bool:
        return self._appends_now

    def append_now(self, rows: Sequence[tuple[int, bytes]]) -> bool:
        if not self._appends_now or self.refuse_now:
            return False
        if self.fail_appends:
            raise OSError("store unavailable")
        for note_id, update in rows:
            self.logs.setdefault(note_id, []).append(update)
        return True

    async def compact(self, note_id: int) -> bool:
        log = self.logs.get(note_id)
        if not log:
            return False
        stored = await self.load(note_id)
        self.snapshots[note_id] = stored.merged()
        del log[: stored.log_rows]
        return True
