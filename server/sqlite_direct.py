"""Short SQLAlchemy Core transactions on a SQLite file without the async driver (`server.db.Database.write` and
`read`).

The async driver crosses to a thread and back for every statement, cursor operation and commit, so a transaction
of a few statements costs several round trips through the event loop. Here a whole transaction is one step:

- `SqliteThread`: on a thread of its own, one crossing. A writer waits for the write lock (``busy_timeout``)
  without holding up the event loop; a reader (``commit=False``) never takes it, and in WAL mode runs beside the
  writer.
- `SqliteInline`: on the event loop's own thread, for a transaction of a few small statements, when the write lock
  is free at once. A thread is a hand-over, and on a busy node the hand-over is most of the time: the thread waits
  for a core and then for the interpreter's lock at every statement, while the transaction itself takes ~30 µs
  (in WAL mode with ``synchronous=NORMAL`` a commit writes to the log and does not sync). When another connection
  holds the write lock it gives up at once (``busy_timeout=0``) and the caller goes to the writer thread, so the
  loop never waits for a lock. It never checkpoints the log itself (a checkpoint syncs the file): after
  `CHECKPOINT_EVERY` commits `server.db.Database` has the writer thread do it (PASSIVE: it never blocks a writer).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.exc import OperationalError

T = TypeVar("T")

# Commits on the loop's thread between two checkpoints of the write-ahead log. A note update's commit adds a page or
# two; SQLite's own connections checkpoint at 1,000 pages.
CHECKPOINT_EVERY = 500


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run while a writer commits; foreign keys are off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL still survives any crash of the process (a SIGKILL loses no committed transaction); only
    # an OS crash or power cut can undo the last commits before a checkpoint. FULL fsyncs every commit, and every
    # note update and board change waits for a commit before it is relayed (docs/RELIABILITY.md has the figures).
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class SqliteThread:
    """Transactions on a SQLite file (``url``: a synchronous SQLAlchemy URL), each run whole on one thread of its
    own; with ``commit=False`` rolled back (a reader)."""

    def __init__(self, url: str, *, commit: bool = True) -> None:
        self.engine = create_engine(url, pool_size=1, max_overflow=0)
        event.listen(self.engine, "connect", sqlite_pragmas)
        self._commit = commit
        name = "sqlite-writer" if commit else "sqlite-reader"
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    def _transact(self, work: Callable[[Connection], T]) -> T:
        if not self._commit:
            with self.engine.connect() as conn:  # rolled back on leaving: a read holds no lock afterwards
                return work(conn)
        with self.engine.begin() as conn:
            return work(conn)

    async def run(self, work: Callable[[Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._transact, work)

    async def checkpoint(self) -> None:
        """Copy what the write-ahead log holds into the database file, as far as readers allow (``PASSIVE``)."""

        def passive(conn: Connection) -> None:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

        await self.run(passive)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self.engine.dispose)
        self._thread.shutdown(wait=True)


class NotNow(Exception):
    """A write cannot run here and now: another connection holds SQLite's write lock, or the database is not a
    SQLite file. Nothing was run."""


class SqliteInline:
    """Write transactions on a SQLite file run on the calling (event loop's) thread, only when the write lock is
    free at once (``url``: a synchronous SQLAlchemy URL). See the module's docstring."""

    def __init__(self, url: str) -> None:
        # One connection, used by one thread at a time (the loop's); made on whichever thread runs first.
        self.engine = create_engine(url, pool_size=1, max_overflow=0, connect_args={"check_same_thread": False})
        event.listen(self.engine, "connect", self._pragmas)
        event.listen(self.engine, "begin", self._begin_immediate)
        self.commits = 0

    @staticmethod
    def _pragmas(dbapi_connection: Any, record: Any) -> None:
        sqlite_pragmas(dbapi_connection, record)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=0")  # never wait on the loop's thread
        cursor.execute("PRAGMA wal_autocheckpoint=0")  # a checkpoint syncs the file: the writer thread does it
        cursor.close()
        # The transaction is begun explicitly (_begin_immediate), not by the driver before the first statement.
        dbapi_connection.isolation_level = None

    @staticmethod
    def _begin_immediate(conn: Connection) -> None:
        # IMMEDIATE takes the write lock now or fails at once, so no statement inside can meet a taken lock.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    def run(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one transaction and commit it, here and now.

        Raises:
            NotNow: another connection holds the write lock; nothing was run.
        """
        with self.engine.connect() as conn:
            try:
                transaction = conn.begin()
            except OperationalError as error:
                orig = error.orig
                if isinstance(orig, sqlite3.OperationalError) and orig.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
                    raise NotNow from error
                raise
            with transaction:  # committed on leaving, rolled back if ``work`` raises
                result = work(conn)
        self.commits += 1
        return result

    def close(self) -> None:
        self.engine.dispose()
