"""The database: one async engine per process, sessions per unit of work, and URL handling.

SQLite (the embedded default) and PostgreSQL (production) run the same models and the same migrations.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import itertools
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from inspect import signature as inspect_signature
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import (
    CTE,
    Connection,
    DateTime,
    Engine,
    String,
    Table,
    Update,
    bindparam,
    event,
    insert,
    inspect,
    update,
)
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapper, SessionTransaction
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.schema import CallableColumnDefault, ScalarElementColumnDefault
from sqlalchemy.types import TypeDecorator
from sqlmodel.ext.asyncio.session import AsyncSession

from server.sqlite_direct import CHECKPOINT_EVERY, NotNow, SqliteInline, SqliteThread, sqlite_pragmas
from server.sqlite_driver import SqliteConnection

T = TypeVar("T")
log = logging.getLogger(__name__)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp that is always timezone-aware UTC in Python, whatever the database keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        # SQLite keeps no zone: store naive UTC so values sort and compare as text correctly.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class json_object_agg(FunctionElement[str]):
    """``json_object_agg(key, value)``: an aggregate building one JSON object, as text, from the group's pairs.

    SQLite spells it ``json_group_object`` (``{}`` for no rows); PostgreSQL ``json_object_agg`` (NULL for no rows).
    """

    type = String()
    inherit_cache = True


@compiles(json_object_agg, "sqlite")
def _json_object_agg_sqlite(element: json_object_agg, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_group_object({compiler.process(element.clauses, **kw)})"


@compiles(json_object_agg, "postgresql")
def _json_object_agg_postgresql(element: json_object_agg, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(json_object_agg({compiler.process(element.clauses, **kw)}) AS TEXT)"


# The driver for each database Tandem runs on: async for the app (SQLite reads go through aiosqlite; short hot writes
# through the writer thread, `Database.write`), synchronous for migrations.
_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+psycopg"}
_SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}


def _with_driver(url: str, drivers: Mapping[str, str]) -> str:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in drivers:
        raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")
    return parsed.set(drivername=drivers[backend]).render_as_string(hide_password=False)


def async_url(url: str) -> str:
    """The SQLAlchemy URL with the async driver Tandem uses for ``url``'s database."""
    return _with_driver(url, _ASYNC_DRIVERS)


def sync_url(url: str) -> str:
    """The SQLAlchemy URL with a synchronous driver (migrations run synchronously)."""
    return _with_driver(url, _SYNC_DRIVERS)


def ensure_sqlite_dir(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_connector(url: str) -> Callable[[], sqlite3.Connection]:
    """``sqlite3.connect`` with the arguments SQLAlchemy's SQLite dialect derives from ``url``."""
    args, kwargs = SQLiteDialect_pysqlite().create_connect_args(make_url(sync_url(url)))
    return functools.partial(sqlite3.connect, *args, **kwargs)


# A pooled PostgreSQL connection is pinged before use only when it sat in the pool longer than this. SQLAlchemy's
# pool_pre_ping pings at every checkout: a round trip and ~0.1-0.2 ms of a request's CPU, though a busy node takes
# its connections back within milliseconds. What it leaves: a connection broken less than this before its next use
# (the server restarted under load) fails that one request with 503 ``unavailable`` (nothing committed, safe to
# retry), and the disconnect empties the pool, so the next requests get fresh connections.
PING_WHEN_IDLE_FOR = 1.0


def _ping_when_idle(engine: Engine) -> None:
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def returned(_dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned_at = record.info.get("returned_at")  # None: opened just now
        if returned_at is None or time.monotonic() - returned_at < PING_WHEN_IDLE_FOR:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:  # the pool drops this connection and checks out another
            raise DisconnectionError(f"an idle connection failed its ping: {error}") from error


def _savepoint_holds_the_write_lock(conn: Connection, _name: str) -> None:
    """Before a SAVEPOINT on SQLite: take the write lock first if no transaction is open.

    sqlite3 begins a transaction only before a request's first write, so every read before it sees the latest
    commit, and the write waits for the lock (``busy_timeout``). A SAVEPOINT outside a transaction instead begins a
    DEFERRED one: its first read fixes a snapshot, and if another connection commits before its first write, that
    write fails at once with "database is locked" (SQLite cannot move a snapshot on to a later commit, so it does
    not wait). ``BEGIN IMMEDIATE`` waits for the lock the way a first write does, and the savepoint nests in it.
    """
    driver = conn.connection.driver_connection
    if isinstance(driver, SqliteConnection) and not driver.in_transaction:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """The process's connection pool and session factory."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        ensure_sqlite_dir(url)
        self.url = url
        kwargs: dict[str, Any] = {"echo": echo}
        if make_url(url).get_backend_name() == "postgresql":
            kwargs.update(pool_size=10, max_overflow=20, pool_recycle=1800)
        else:  # one thread hop per statement (server/sqlite_driver.py), sqlite3 opened as the dialect would
            kwargs["async_creator"] = functools.partial(SqliteConnection.open, _sqlite_connector(url))
        self.engine: AsyncEngine = create_async_engine(async_url(url), **kwargs)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine.sync_engine, "connect", sqlite_pragmas)
            event.listen(self.engine.sync_engine, "savepoint", _savepoint_holds_the_write_lock)
        else:
            _ping_when_idle(self.engine.sync_engine)
        self._sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        database = make_url(url).database
        on_file = self.engine.dialect.name == "sqlite" and database not in (None, "", ":memory:")
        self._writer = SqliteThread(sync_url(url)) if on_file else None
        self._reader = SqliteThread(sync_url(url), commit=False) if on_file else None
        self._inline = SqliteInline(sync_url(url)) if on_file else None
        self._checkpoint: asyncio.Task[None] | None = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for one unit of work; rolled back if the block raises."""
        async with self._sessions() as session:
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise

    @property
    def write_engines(self) -> tuple[Engine, ...]:
        """The (synchronous) engines `write` commits through, for event listeners."""
        if self._writer is None or self._inline is None:
            return (self.engine.sync_engine,)
        return (self._inline.engine, self._writer.engine)

    @property
    def read_engine(self) -> Engine:
        """The (synchronous) engine `read` runs on, for event listeners."""
        return self._reader.engine if self._reader is not None else self.engine.sync_engine

    async def write(self, work: Callable[[Connection], T], *, brief: bool = False) -> T:
        """Run ``work`` (synchronous SQLAlchemy Core calls on a `Connection`) in one transaction and commit it.

        For small, hot writes that must be committed before anything else happens (a note's update log): on a
        SQLite file the whole transaction is one hop to a writer thread (``server/sqlite_direct.py``); elsewhere it
        runs on the async engine through ``run_sync``. With ``brief`` (a few small statements), on a SQLite file it
        runs on the event loop's own thread when the write lock is free, with no hop at all. ``work`` must not touch
        the event loop or ORM sessions.
        """
        if brief and self._inline is not None:
            with contextlib.suppress(NotNow):  # another connection is writing: wait for it on the writer thread
                return self.write_now(work)
        if self._writer is not None:
            return await self._writer.run(work)
        async with self.engine.begin() as conn:
            return await conn.run_sync(work)

    @property
    def writes_now(self) -> bool:
        """Whether `write_now` can ever succeed (a SQLite file)."""
        return self._inline is not None

    def write_now(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` (a few small synchronous Core statements) in one transaction and commit it here and now, on
        the calling thread (the event loop's), without waiting for anything.

        Raises:
            NotNow: another connection holds SQLite's write lock, or this is not a SQLite file; nothing was run.
        """
        if self._inline is None:
            raise NotNow
        result = self._inline.run(work)
        if self._inline.commits % CHECKPOINT_EVERY == 0:
            self._checkpoint_soon()
        return result

    def _checkpoint_soon(self) -> None:
        """Checkpoint the write-ahead log on the writer thread (`SqliteInline` never does), unless one is running."""
        if self._writer is None or (self._checkpoint is not None and not self._checkpoint.done()):
            return
        self._checkpoint = asyncio.get_running_loop().create_task(self._checkpoint_now(), name="sqlite-checkpoint")

    async def _checkpoint_now(self) -> None:
        assert self._writer is not None
        try:
            await self._writer.checkpoint()
        except Exception:  # nothing is lost: the log grows until the next checkpoint
            log.warning("checkpointing the SQLite write-ahead log failed", exc_info=True)

    async def read(self, work: Callable[[Connection], T], session: AsyncSession | None = None) -> T:
        """Run ``work`` (synchronous SQLAlchemy Core reads on a `Connection`) in one transaction, never committed.

        For small, hot reads with no ORM objects (authentication, a socket's admission): on a SQLite file one hop
        to a reader thread, where aiosqlite and an ORM session cross threads for every cursor operation and the
        rollback; elsewhere through ``run_sync``, on ``session``'s connection when given (a request's, so it takes
        no second connection from the pool) or on one of its own. ``work`` must not touch the event loop or ORM
        sessions.
        """
        if self._reader is not None:
            return await self._reader.run(work)
        if session is not None:
            return await (await session.connection()).run_sync(work)
        async with self.engine.connect() as conn:
            return await conn.run_sync(work)

    async def close(self) -> None:
        if self._checkpoint is not None:
            with contextlib.suppress(Exception):
                await self._checkpoint
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        if self._reader is not None:
            await self._reader.close()
            self._reader = None
        if self._writer is not None:
            await self._writer.close()
            self._writer = None
        await self.engine.dispose()


class SessionOnDemand:
    """An `AsyncSession` of ``db`` made at the first ``await source()``, for work that mostly answers from a cache
    (a socket's subscribes: `server.accounts.session_cache.AccessEpoch`, `server.live.channels_policy.ChannelFacts`) and
    should not pay for a session it does not use. Closed, if it was made, when the ``async with`` ends."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._scope: contextlib.AbstractAsyncContextManager[AsyncSession] | None = None
        self._session: AsyncSession | None = None

    async def __call__(self) -> AsyncSession:
        if self._session is None:
            self._scope = self._db.session()
            self._session = await self._scope.__aenter__()
        return self._session

    async def __aenter__(self) -> SessionOnDemand:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._scope is not None:
            scope, self._scope, self._session = self._scope, None, None
            await scope.__aexit__(*exc)


Reads = AsyncSession | SessionOnDemand  # where a read that may be answered from a cache gets its session


async def session_of(reads: Reads) -> AsyncSession:
    return reads if isinstance(reads, AsyncSession) else await reads()


M = TypeVar("M")


async def get_held(session: AsyncSession, model: type[M], key: Any) -> M | None:
    """``session.get(model, key)``, answered from the session's identity map without a round through a greenlet
    when the session holds the object loaded (``AsyncSession.get`` spawns one per call, even for an object it
    holds: a task move asked four times for statuses it had read with the task)."""
    held = session.identity_map.get(identity_key(model, key))
    if held is not None and not inspect(held).expired_attributes:
        return held
    return await session.get(model, key)


@functools.lru_cache(maxsize=256)
def _versioned_update(mapper: Mapper[Any], keys: tuple[str, ...]) -> Update:
    """``UPDATE <table> SET <keys> = :new_<key>, version = version + 1 WHERE <primary key> = :pk_<n> RETURNING
    version`` for ``mapper``'s table, built once per model and set of changed attributes: constructing it costs more
    than SQLAlchemy's cached execution of it (the same reason `server.board.rules` builds its reads once)."""
    table = mapper.local_table
    assert isinstance(table, Table)
    values: dict[Any, Any] = {}
    for key in keys:
        column = mapper.get_property(key).columns[0]
        values[column] = bindparam(f"new_{key}", type_=column.type)
    values[table.c.version] = table.c.version + 1
    where = [pk == bindparam(f"pk_{n}", type_=pk.type) for n, pk in enumerate(mapper.primary_key)]
    return update(table).where(*where).values(values).returning(table.c.version)


async def bump_version(session: AsyncSession, obj: Any) -> None:
    """Write ``obj``'s pending changes and increment its version in the database itself, in one statement:
    ``UPDATE ... SET <changes>, version = version + 1 WHERE id = ... RETURNING version``.

    Concurrent writers of one row therefore always get distinct versions. Clients order events by version, so a
    read-modify-write increment here would let two different states share one version and one of them be dropped.
    Other pending objects of the session are flushed first, as autoflush would.
    """
    state = inspect(obj)
    mapper = state.mapper
    changes: dict[str, Any] = {}
    for prop in mapper.column_attrs:
        history = state.attrs[prop.key].history
        if history.added and prop.key != "version":
            changes[prop.key] = history.added[0]
    for key, value in changes.items():  # written below: no longer the flush's to write
        set_committed_value(obj, key, value)
    sync = session.sync_session
    if sync.new or sync.deleted or any(other is not obj for other in sync.dirty) or sync.is_modified(obj):
        await session.flush()
    else:
        # Nothing else to write, nor anything left of ``obj``: a flush would run the whole unit of work (mappers
        # sorted, ``obj`` registered and compared) to write nothing, here and again at the commit while ``obj`` is
        # still flagged as modified. Mark it clean as a flush does (``_commit_all``, private to SQLAlchemy:
        # tests/test_db.py fails if a release changes what it does).
        state._commit_all(state.dict, sync.identity_map)
    params = {f"new_{key}": value for key, value in changes.items()}
    params.update({f"pk_{n}": value for n, value in enumerate(state.identity or ())})
    connection = await session.connection()
    result = await connection.execute(_versioned_update(mapper, tuple(changes)), params)
    set_committed_value(obj, "version", result.scalar_one())


# -- rows written with the commit, without ORM objects ---------------------------------------------------------

_AT_COMMIT = "tandem.insert_at_commit"  # the key of a session's pending rows in its ``info``


@dataclass(slots=True)
class _Pending:
    table: Table
    values: dict[str, Any]
    on_id: Callable[[int], None] | None
    savepoint: SessionTransaction | None  # the innermost savepoint open when it was recorded


def insert_at_commit(
    session: AsyncSession, table: Table, values: dict[str, Any], on_id: Callable[[int], None] | None = None
) -> None:
    """Insert a row into ``table`` in ``session``'s transaction, just before it commits: a Core INSERT, no ORM
    object. For rows a change only writes (its feed entry, its outbox event): building a SQLModel object and
    flushing it through the unit of work cost more than the statement itself.

    Column defaults apply as in any Core INSERT. Rows recorded one after another for the same table and columns go
    in one statement, in order; ``on_id``, if given, is handed the row's id once it is inserted. A savepoint that
    rolls back drops the rows recorded in it, as the ORM drops the objects added in it; a transaction that ends
    without committing drops them all. The rows are not in the database before the commit: a query in the same
    transaction does not see them.
    """
    sync = session.sync_session
    pending = sync.info.setdefault(_AT_COMMIT, [])
    pending.append(_Pending(table, values, on_id, sync.get_nested_transaction()))


@event.listens_for(OrmSession, "before_commit")
def _insert_pending(session: OrmSession) -> None:
    # Runs inside the commit, in the async session's greenlet: statements made here are awaited on its connection
    # like any other. A savepoint's release fires it too; its rows stay pending, with the savepoint they belong to,
    # until the outermost transaction commits (or a savepoint around them rolls back).
    if session.in_nested_transaction():
        return
    pending: list[_Pending] | None = session.info.pop(_AT_COMMIT, None)
    if not pending:
        return
    connection = session.connection()
    groups = [list(group) for _, group in itertools.groupby(pending, key=lambda p: (p.table, tuple(p.values)))]
    if connection.dialect.name == "postgresql" and len(groups) > 1 and _insert_together(connection, groups):
        return
    driver = connection.connection.driver_connection
    if isinstance(driver, SqliteConnection) and _insert_with_the_commit(driver, connection.dialect, groups):
        return
    for rows in groups:
        table = rows[0].table
        if not any(row.on_id for row in rows):
            connection.execute(insert(table), [row.values for row in rows])
            continue
        stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        ids = connection.execute(stmt, [row.values for row in rows]).scalars().all()
        for row, inserted in zip(rows, ids, strict=True):
            if row.on_id is not None:
                row.on_id(inserted)


# -- SQLite: the rows go in the commit's own hop

# Per table, columns given and whether the ids are wanted: the INSERT's SQL, its parameters in order with the
# SQLite dialect's bind processor of each, and the column defaults to fill (Python functions, constants). None: a
# shape not served.
_SqlitePlan = tuple[str, list[tuple[str, Callable[[Any], Any] | None]], list[tuple[str, Callable[[], Any]]]]
_SQLITE_PLANS: dict[tuple[Table, tuple[str, ...], bool], _SqlitePlan | None] = {}
# Told the seconds each statement of a commit's hop took (those statements pass no SQLAlchemy events): the query
# timer of server/observability.py registers here.
statement_timers: list[Callable[[float], None]] = []


def _insert_with_the_commit(driver: SqliteConnection, dialect: Dialect, groups: list[list[_Pending]]) -> bool:
    """On SQLite: hand the rows to the driver, which inserts them in the commit's own hop to its thread, just
    before the COMMIT, with plain ``sqlite3`` calls on SQL compiled once per shape. A change's feed row and outbox
    event cost two statements and a COMMIT; through SQLAlchemy that was a hop each and an execution context each
    (bench/README.md, `bench/patch_cpu.py`, has what that cost). False, having done nothing, if a shape is not
    served (a column default computed by SQL or from the execution context): those go through SQLAlchemy as before.

    The statements do not pass SQLAlchemy's ``before_cursor_execute`` events (statement logs): their times go to
    `statement_timers` (the query timer) instead.
    """
    work: list[tuple[str, list[tuple[Any, ...]], list[_Pending] | None]] = []  # rows, when their ids are wanted
    for rows in groups:
        table, names, want = rows[0].table, tuple(rows[0].values), any(row.on_id for row in rows)
        key = (table, names, want)
        if key not in _SQLITE_PLANS:
            _SQLITE_PLANS[key] = _sqlite_plan(dialect, table, names, want)
        plan = _SQLITE_PLANS[key]
        if plan is None:
            return False
        sql, order, defaults = plan
        params = []
        for row in rows:
            values = row.values | {name: made() for name, made in defaults} if defaults else row.values
            params.append(tuple(values[name] if bind is None else bind(values[name]) for name, bind in order))
        work.append((sql, params, rows if want else None))

    def insert(conn: sqlite3.Connection) -> tuple[list[list[int]], list[float]]:
        ids: list[list[int]] = []
        took: list[float] = []  # per statement, as the query timer counts them (an executemany is one)
        for sql, params, wanted in work:
            started = time.perf_counter()
            if wanted is None:
                conn.executemany(sql, params)
            else:  # one by one: SQLite does not promise RETURNING's order over several rows
                ids.append([conn.execute(sql, one).fetchone()[0] for one in params])
            took.append(time.perf_counter() - started)
        return ids, took

    def hand_ids(done: tuple[list[list[int]], list[float]]) -> None:
        ids, took = done
        for timer in statement_timers:
            for seconds in took:
                timer(seconds)
        wanted = (rows for _, _, rows in work if rows is not None)
        for rows, inserted in zip(wanted, ids, strict=True):
            for row, row_id in zip(rows, inserted, strict=True):
                if row.on_id is not None:
                    row.on_id(row_id)

    driver.before_commit(insert, hand_ids)
    return True


def _sqlite_plan(dialect: Dialect, table: Table, names: tuple[str, ...], want_id: bool) -> _SqlitePlan | None:
    filled = _insert_values(table, names)
    if filled is None:
        return None
    values, defaults = filled
    stmt = insert(table).values(values)
    compiled = (stmt.returning(table.c.id) if want_id else stmt).compile(dialect=dialect)
    assert compiled.positiontup is not None  # qmark: positional
    # Private to SQLAlchemy (tests/test_sqlite_driver.py reads back what the columns kept); a processor per parameter.
    binds = cast(dict[str, Callable[[Any], Any]], compiled._bind_processors)
    return compiled.string, [(name, binds.get(name)) for name in compiled.positiontup], defaults


def _insert_values(
    table: Table, names: tuple[str, ...], prefix: str = ""
) -> tuple[dict[str, Any], list[tuple[str, Callable[[], Any]]]] | None:
    """An INSERT's values for ``table`` given the columns ``names``: a parameter for every column given and every
    column with a default (named ``prefix`` + the column's name), and the defaults' functions to fill theirs. None
    for a table with a default that needs SQL or the execution context."""
    values: dict[str, Any] = {}
    defaults: list[tuple[str, Callable[[], Any]]] = []
    for column in table.c:
        default, name = column.default, prefix + column.name
        if column.name in names:
            values[column.name] = bindparam(name, type_=column.type)
        elif isinstance(default, CallableColumnDefault) and (made := _takes_nothing(default)) is not None:
            values[column.name] = bindparam(name, type_=column.type)
            defaults.append((name, made))
        elif isinstance(default, ScalarElementColumnDefault):  # a constant
            values[column.name] = bindparam(name, type_=column.type)
            defaults.append((name, functools.partial(_same, default.arg)))
        elif default is not None:
            return None
    return values, defaults


def _same(value: T) -> T:
    return value


def _insert_together(connection: Connection, groups: list[list[_Pending]]) -> bool:
    """The rows of several tables in one PostgreSQL statement, each table's INSERT a data-modifying ``WITH``
    clause: one round trip for a change's feed row and outbox event instead of one each. For the common shape only
    (a single row per table, column defaults that are plain values or Python functions); False, having done nothing,
    for any other, which goes one statement per table."""
    if any(len(rows) > 1 for rows in groups):
        return False
    shape = tuple((row.table, tuple(row.values), row.on_id is not None) for (row,) in groups)
    if shape not in _TOGETHER:
        _TOGETHER[shape] = _together(shape)
    built = _TOGETHER[shape]
    if built is None:
        return False
    statement, defaults = built
    params = {f"g{index}_{name}": value for index, (row,) in enumerate(groups) for name, value in row.values.items()}
    params.update({name: default() for name, default in defaults})
    ids = connection.execute(statement, params).one()
    wanted = [row for (row,) in groups if row.on_id is not None]
    for row, inserted in zip(wanted, ids, strict=True):
        assert row.on_id is not None
        row.on_id(inserted)
    return True


_Shape = tuple[tuple[Table, tuple[str, ...], bool], ...]  # per table: its columns given, whether its id is wanted
# One statement per shape, built once: a statement object keeps its cache key, which SQLAlchemy would otherwise
# compute by walking the whole statement on every execution. With it, the parameters its column defaults
# fill (a Core INSERT in a WITH clause does not apply them). None: a shape this way does not serve.
_TOGETHER: dict[_Shape, tuple[Executable, list[tuple[str, Callable[[], Any]]]] | None] = {}


def _together(shape: _Shape) -> tuple[Executable, list[tuple[str, Callable[[], Any]]]] | None:
    ctes: list[CTE] = []
    wanted: list[CTE] = []
    defaults: list[tuple[str, Callable[[], Any]]] = []
    for index, (table, names, want_id) in enumerate(shape):
        filled = _insert_values(table, names, prefix=f"g{index}_")
        if filled is None:
            return None
        values, table_defaults = filled
        defaults += table_defaults
        stmt = insert(table).values(values)
        cte = (stmt.returning(table.c.id) if want_id else stmt).cte(f"insert_{index}")
        ctes.append(cte)
        if want_id:
            wanted.append(cte)
    # A data-modifying WITH clause runs whether or not the statement reads it; the SELECT reads the ids wanted.
    ids = sa_select(*(sa_select(cte.c.id).scalar_subquery() for cte in wanted)) if wanted else sa_select(1)
    return ids.add_cte(*ctes), defaults


def _takes_nothing(default: CallableColumnDefault) -> Callable[[], Any] | None:
    """The function behind a column default that takes no execution context (SQLAlchemy wraps it, keeping it as
    ``__wrapped__``); None for one that takes a context."""
    original = getattr(default.arg, "__wrapped__", None)
    return original if callable(original) and not inspect_signature(original).parameters else None


@event.listens_for(OrmSession, "after_soft_rollback")
def _drop_rolled_back(session: OrmSession, previous: SessionTransaction) -> None:
    pending: list[_Pending] | None = session.info.get(_AT_COMMIT)
    if pending and previous.nested:  # a savepoint: the rows recorded in it, or in savepoints inside it
        pending[:] = [p for p in pending if not _within(p.savepoint, previous)]


@event.listens_for(OrmSession, "after_transaction_end")
def _drop_uncommitted(session: OrmSession, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction ended: what it did not commit is gone
        session.info.pop(_AT_COMMIT, None)


def _within(savepoint: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while savepoint is not None:
        if savepoint is ancestor:
            return True
        savepoint = savepoint.parent
    return False
