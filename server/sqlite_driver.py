"""The async SQLite connection the app's engine uses: one thread hop per statement, not four.

SQLAlchemy's async SQLite dialect drives its driver one DBAPI call at a time: open a cursor, execute, fetch the
rows, close the cursor, each awaited. With aiosqlite each of those is a hop to its thread and back through the
event loop (a queue put, a thread wake-up, ``call_soon_threadsafe`` and the loop's self-pipe), and every hop
suspends the request's coroutine, so the whole stack of middleware frames is resumed again. A task move (four
statements and a commit) made ~17 hops.

`SqliteConnection` is the driver-level asyncio connection SQLAlchemy's dialect asks for (its
``AsyncIODBAPIConnection`` protocol; handed over through ``create_async_engine(async_creator=...)``, a public
parameter): a `sqlite3.Connection` owned by one thread of its own, where a cursor's ``execute`` runs the whole
statement (execute, description, every row, rowcount, lastrowid) in one hop and keeps the results. Fetching from
and closing the cursor then need no hop. Commit and rollback are one hop each. Nothing streams: Tandem never reads
a SQLite result lazily, and SQLAlchemy's adapter fetches every row after ``execute`` anyway.

Rows a transaction only writes (a change's feed row and outbox event: `server.db.insert_at_commit`) are handed to
the connection before the commit (`SqliteConnection.before_commit`) and inserted in the commit's own hop, with
plain ``sqlite3`` calls: a task move is three hops (its read, its UPDATE, the commit) instead of five.

The few attributes SQLAlchemy's aiosqlite dialect reads beyond that protocol (``_connection``, ``stop``,
``create_function``, ``isolation_level``) are here too; `tests/test_sqlite_driver.py` pins what it needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable, Sequence
from queue import SimpleQueue
from typing import Any, TypeVar

T = TypeVar("T")

Outcome = tuple[Any, list[Any], int, int | None]  # description, rows, rowcount, lastrowid

_STOP = None  # the item that ends a connection's thread


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.cancelled():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _statement(conn: sqlite3.Connection, many: bool, operation: str, parameters: Any) -> Outcome:
    """On the connection's thread: the whole statement, rows included."""
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


def _work_then_commit(conn: sqlite3.Connection, works: list[Callable[[sqlite3.Connection], Any]]) -> list[Any]:
    """On the connection's thread: ``works`` in order, then the COMMIT (which they may have begun)."""
    results = [work(conn) for work in works]
    conn.commit()
    return results


class SqliteConnection:
    """A `sqlite3.Connection` on a thread of its own, awaited one call at a time (see the module's docstring)."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._calls: SimpleQueue[tuple[asyncio.Future[Any], Callable[..., Any], tuple[Any, ...]] | None] = SimpleQueue()
        self._connection: sqlite3.Connection | None = None  # SQLAlchemy's dialect reads it: set while open
        self._at_commit: list[tuple[Callable[[sqlite3.Connection], Any], Callable[[Any], None]]] = []
        self._thread = threading.Thread(target=self._serve, args=(connect,), name="sqlite-session", daemon=True)
        self._thread.start()

    @classmethod
    async def open(cls, connect: Callable[[], sqlite3.Connection]) -> SqliteConnection:
        self = cls(connect)
        self._connection = await self._call(lambda conn: conn)
        return self

    def _serve(self, connect: Callable[[], sqlite3.Connection]) -> None:
        try:
            conn = connect()
        except BaseException as error:  # the first call (`open`) reports it
            conn, failure = None, error
        while (item := self._calls.get()) is not _STOP:
            future, work, args = item
            try:
                if conn is None:
                    raise failure
                result, ok = work(conn, *args), True
            except BaseException as error:
                result, ok = error, False
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                future.get_loop().call_soon_threadsafe(_settle, future, ok, result)
        if conn is not None:
            conn.close()

    def _call(self, work: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        # On the loop of the caller, not of whoever opened the connection: a pooled connection may serve several
        # loops one after another (Starlette's test client runs each request in a loop of its own).
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._calls.put_nowait((future, work, args))
        return future

    def cursor(self) -> SqliteCursor:
        return SqliteCursor(self)

    def before_commit(self, work: Callable[[sqlite3.Connection], T], then: Callable[[T], None]) -> None:
        """Run ``work`` on the connection's thread as part of the next `commit`, in its hop, just before the
        COMMIT; then hand what it returned to ``then``, on the caller's loop, before `commit` returns. Dropped by a
        `rollback`. If ``work`` raises, nothing is committed and `commit` raises it (the transaction stays open,
        for the caller's rollback)."""
        self._at_commit.append((work, then))

    # Outside a transaction sqlite3's commit and rollback do nothing, so they make no hop: SQLAlchemy rolls back
    # every connection it takes back into its pool, and commits read-only requests. ``in_transaction`` is SQLite's
    # autocommit flag, read without the thread: the connection is idle between awaited calls.
    async def commit(self) -> None:
        if self._at_commit:
            staged, self._at_commit = self._at_commit, []
            results = await self._call(_work_then_commit, [work for work, _ in staged])
            for (_, then), result in zip(staged, results, strict=True):
                then(result)
        elif self.in_transaction:
            await self._call(sqlite3.Connection.commit)

    async def rollback(self) -> None:
        self._at_commit.clear()
        if self.in_transaction:
            await self._call(sqlite3.Connection.rollback)

    async def create_function(self, *args: Any, **kw: Any) -> None:
        await self._call(lambda conn: conn.create_function(*args, **kw))

    @property
    def isolation_level(self) -> str | None:
        assert self._connection is not None
        return self._connection.isolation_level  # a plain attribute read: no statement runs

    @property
    def in_transaction(self) -> bool:
        """Whether SQLite has a transaction open on this connection (no statement runs)."""
        return self._connection is not None and self._connection.in_transaction

    async def close(self) -> None:
        if self._connection is None:
            return
        self._connection = None
        done = self._call(lambda conn: None)
        self._calls.put_nowait(_STOP)
        await done

    def stop(self) -> None:
        """End the thread without waiting (SQLAlchemy's terminate, when a graceful close is not possible)."""
        self._connection = None
        self._calls.put_nowait(_STOP)


class SqliteCursor:
    """A cursor whose ``execute`` is one hop to the connection's thread; the results stay here."""

    arraysize = 1

    def __init__(self, connection: SqliteConnection) -> None:
        self._connection = connection
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: list[Any] = []
        self._next = 0

    async def __aenter__(self) -> SqliteCursor:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def _keep(self, outcome: Outcome) -> SqliteCursor:
        self.description, self._rows, self.rowcount, self.lastrowid = outcome
        self._next = 0
        return self

    async def execute(self, operation: str, parameters: Any = None) -> SqliteCursor:
        return self._keep(await self._connection._call(_statement, False, operation, parameters))

    async def executemany(self, operation: str, seq_of_parameters: Sequence[Any]) -> SqliteCursor:
        return self._keep(await self._connection._call(_statement, True, operation, seq_of_parameters))

    async def fetchone(self) -> Any:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        end = self._next + (size or self.arraysize)
        rows, self._next = self._rows[self._next : end], min(end, len(self._rows))
        return rows

    async def fetchall(self) -> list[Any]:
        rows, self._rows, self._next = self._rows[self._next :], [], 0
        return rows

    async def close(self) -> None:
        self._rows = []

    async def nextset(self) -> None:
        return None

    async def setinputsizes(self, *sizes: Any) -> None:
        return None

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        return None
