"""SQLAlchemy's aiosqlite dialect with one thread crossing per statement instead of four.

SQLAlchemy's async SQLite adapter drives aiosqlite one DBAPI call at a time: open a cursor, execute, fetch all
rows, close the cursor, each a hop to aiosqlite's thread and back through the event loop (a queue put, a thread
wake-up, ``call_soon_threadsafe`` and the loop's self-pipe). On this machine that made an ORM statement cost
~400 µs of CPU against ~120 µs for the same statement on a synchronous connection, and a task PATCH (ten
statements) spent about a third of its CPU crossing threads.

The cursor here runs the whole statement in one call on aiosqlite's thread (execute, read the description, fetch
every row, note rowcount and lastrowid, close) and keeps the results, as SQLAlchemy's adapter already does with
fetched rows. Everything else (connections, transactions, errors, isolation levels, pooling) is SQLAlchemy's
aiosqlite dialect unchanged. Server-side cursors are not offered (Tandem never streams from SQLite).

Used for ``sqlite://`` URLs by `server.db.async_url` (driver name ``sqlite+tandem``). It relies on aiosqlite's
``Connection._execute`` (how every aiosqlite method reaches its thread) and on the adapter classes of
``sqlalchemy.dialects.sqlite.aiosqlite``; `tests/test_sqlite_async.py` pins the behaviour SQLAlchemy needs.
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any

from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
    SQLiteDialect_aiosqlite,
)
from sqlalchemy.util import EMPTY_DICT

Outcome = tuple[Any, list[Any], int, int | None]  # description, rows, rowcount, lastrowid


def _statement(conn: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> Outcome:
    """On aiosqlite's thread: the whole statement (``executemany`` when ``many``), rows included."""
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


class OneCrossingCursor(AsyncAdapt_aiosqlite_cursor):
    """A DBAPI cursor whose ``execute`` is one hop to aiosqlite's thread; results are kept here."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # No aiosqlite cursor: opening and closing one would cost two more crossings per statement.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass

    async def _async_soft_close(self) -> None:
        return None  # nothing open on the other thread

    def close(self) -> None:
        self._rows.clear()

    def _keep(self, outcome: Outcome) -> None:
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows)

    async def _execute_async(self, operation: Any, parameters: Any) -> None:
        await self._run(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> None:
        await self._run(operation, seq_of_parameters, many=True)

    async def _run(self, operation: Any, parameters: Any, many: bool) -> None:
        async with self._adapt_connection._execute_mutex:
            connection = self._connection
            self._keep(await connection._execute(_statement, connection._conn, operation, parameters, many))

    def nextset(self) -> None:
        return None


class OneCrossingConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneCrossingCursor  # type: ignore[assignment]


class OneCrossingDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> OneCrossingConnection:
        adapted = super().connect(*arg, **kw)
        return OneCrossingConnection(self, adapted._connection)


class SQLiteDialect_tandem(SQLiteDialect_aiosqlite):
    driver = "tandem"
    supports_statement_cache = True  # SQLAlchemy asks every dialect class to say so itself
    supports_server_side_cursors = False

    @classmethod
    def import_dbapi(cls) -> OneCrossingDBAPI:
        return OneCrossingDBAPI(__import__("aiosqlite"), __import__("sqlite3"))


registry.register("sqlite.tandem", __name__, "SQLiteDialect_tandem")
