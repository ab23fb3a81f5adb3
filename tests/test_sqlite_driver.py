"""server/sqlite_driver.py: the app's SQLite connection, one thread hop per statement, under SQLAlchemy's async ORM.

What SQLAlchemy's aiosqlite dialect needs of it (rows, rowcount, lastrowid, errors, commit and rollback, closing),
on a seeded workspace's file, and that a statement or a commit is one hop whatever it returns.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import server.db
from server.activity.rules import ACTIVITY_EVENTS
from server.db import Database, insert_at_commit, utcnow
from server.live.outbox import OUTBOX_EVENTS
from server.models import ActivityEvent, Comment, OutboxEvent, Task
from server.sqlite_driver import SqliteConnection
from tests.workspace import Workspace


@pytest.fixture
async def db(database: tuple[str, Workspace]) -> AsyncIterator[Database]:
    db = Database(database[0])
    yield db
    await db.close()


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The calls made on connections' threads, by name, as they are made."""
    made: list[str] = []
    real = SqliteConnection._call

    def counted(self: SqliteConnection, work: Any, *args: Any) -> Any:
        made.append(getattr(work, "__name__", "?"))
        return real(self, work, *args)

    monkeypatch.setattr(SqliteConnection, "_call", counted)
    yield made


async def _retitled(session: AsyncSession, task_id: int, title: str) -> Task:
    """The task, renamed and flushed: the session's transaction holds a write."""
    task = await session.get(Task, task_id)
    assert task is not None
    task.title = title
    await session.flush()
    return task


def _session_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "sqlite-session"}


async def test_a_statement_is_one_hop_whatever_it_returns_and_a_commit_is_one(
    db: Database, database: tuple[str, Workspace], hops: list[str]
) -> None:
    ids = database[1].ids
    async with db.session() as session:
        await session.exec(select(Task).where(col(Task.id) == ids["px_shared_task"]))  # connects, then the select
        hops.clear()
        tasks = (await session.exec(select(Task).where(col(Task.project_id) == ids["px"]))).all()
        assert len(tasks) > 1 and hops == ["_statement"]  # every row, in the one hop
        hops.clear()
        task = tasks[0]
        task.title = "renamed through one hop"
        await session.commit()  # the flush's UPDATE, then the commit; the pool's rollback has nothing to undo
        assert hops == ["_statement", "commit"]
        hops.clear()
        await session.exec(select(Task).limit(1))
        await session.commit()  # nothing written: no hop for the commit either
        assert hops == ["_statement"]
    async with db.session() as session:
        stored = await session.get(Task, task.id)
        assert stored is not None and stored.title == "renamed through one hop"


async def test_rows_rowcount_and_lastrowid_come_back_as_sqlite3_gives_them(db: Database) -> None:
    async with db.engine.connect() as conn:
        result = await conn.execute(text("SELECT value FROM json_each('[1,2,3,4,5]') ORDER BY value"))
        assert [result.fetchone(), result.fetchmany(2), result.fetchall()] == [(1,), [(2,), (3,)], [(4,), (5,)]]
        assert result.fetchone() is None
        await conn.execute(text("CREATE TEMP TABLE scratch (id INTEGER PRIMARY KEY, name TEXT)"))
        many = await conn.execute(insert_scratch(), [{"name": "a"}, {"name": "b"}, {"name": "c"}])
        assert many.rowcount == 3
        one = await conn.execute(text("INSERT INTO scratch (name) VALUES ('d')"))
        assert one.lastrowid == 4
        changed = await conn.execute(text("UPDATE scratch SET name = 'x' WHERE id > 1"))
        assert changed.rowcount == 3
        assert (await conn.execute(text("SELECT count(*) FROM scratch WHERE name = 'x'"))).scalar() == 3


def insert_scratch() -> Any:
    return text("INSERT INTO scratch (name) VALUES (:name)")


async def test_a_failed_statement_raises_sqlalchemys_error_and_the_rollback_keeps_nothing(
    db: Database, database: tuple[str, Workspace]
) -> None:
    ids = database[1].ids
    async with db.session() as session:
        before = len((await session.exec(select(Comment))).all())
    with pytest.raises(IntegrityError):
        async with db.session() as session:
            task = await _retitled(session, ids["px_shared_task"], "not kept")
            # A comment on a task that does not exist: the foreign key refuses it.
            comment = {"task_id": 10**9, "project_id": task.project_id, "body": "b", "body_html": "b"}
            await (await session.connection()).execute(insert(Comment).values(**comment, visibility="shared"))
    async with db.session() as session:
        assert len((await session.exec(select(Comment))).all()) == before
        task = await session.get(Task, ids["px_shared_task"])
        assert task is not None and task.title != "not kept"


async def test_sessions_at_once_each_have_a_connection_and_closing_ends_their_threads(
    database: tuple[str, Workspace],
) -> None:
    before = _session_threads()
    db = Database(database[0])

    async def read(n: int) -> int:
        async with db.session() as session:
            await session.exec(select(Task))
            await asyncio.sleep(0)  # hold the connection while the others take theirs
            return len((await session.exec(select(Task).limit(n))).all())

    assert await asyncio.gather(*(read(n) for n in (1, 2, 3))) == [1, 2, 3]
    # Another test's closed database may still be ending its threads: only this database's are counted.
    ours = _session_threads() - before
    assert len(ours) == 3  # the pool's connections, kept for the next requests
    await db.close()
    for thread in ours:
        thread.join(timeout=5)
    assert not any(thread.is_alive() for thread in ours)


async def test_a_database_that_cannot_open_says_so_at_the_first_statement(tmp_path: Any) -> None:
    (tmp_path / "a-directory.db").mkdir()
    db = Database(f"sqlite:///{tmp_path / 'a-directory.db'}")
    try:
        with pytest.raises(Exception, match="unable to open database"):
            async with db.session() as session:
                await session.exec(select(Task))
    finally:
        await db.close()


async def test_a_pooled_connection_serves_whichever_loop_awaits_it(db: Database) -> None:
    async def count() -> int:
        async with db.engine.connect() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM tasks"))).scalar_one())

    here = await count()  # the pool's connection, opened on this loop
    # Starlette's test client runs each request in a loop of its own, on another thread, with the same pool.
    assert await asyncio.to_thread(asyncio.run, count()) == here
    assert await count() == here


async def test_a_savepoint_read_before_another_connections_commit_still_writes(
    db: Database, database: tuple[str, Workspace]
) -> None:
    """A savepoint opened before a request's first write (the CSV import's) reads, another connection commits,
    then the savepoint writes. sqlite3 had let the SAVEPOINT begin a DEFERRED transaction: the read fixed a
    snapshot, and the write failed at once with "database is locked" (CI's 503 on the import's preview). Now the
    savepoint holds the write lock from its start, so the other connection waits for it (here: fails at once,
    as its busy timeout is 0, and writes afterwards) and both writes are kept."""
    task_id = database[1].ids["px_shared_task"]
    other = sqlite3.connect(database[0].removeprefix("sqlite:///"), timeout=0, isolation_level=None)
    try:
        async with db.session() as session:
            savepoint = await session.begin_nested()
            task = (await session.exec(select(Task).where(Task.id == task_id))).one()
            try:
                other.execute("UPDATE tasks SET title = 'other connection' WHERE id = ?", (task_id,))
                waited = False
            except sqlite3.OperationalError as error:
                assert error.sqlite_errorcode == sqlite3.SQLITE_BUSY
                waited = True
            task.description = "from the savepoint"
            await session.flush()
            await savepoint.commit()
            await session.commit()
        assert waited
        other.execute("UPDATE tasks SET title = 'other connection' WHERE id = ?", (task_id,))
        async with db.session() as session:
            kept = (await session.exec(select(Task.title, Task.description).where(Task.id == task_id))).one()
            assert tuple(kept) == ("other connection", "from the savepoint")
    finally:
        other.close()


async def test_rows_inserted_at_commit_go_in_the_commits_hop_and_one_that_fails_commits_nothing(
    db: Database, database: tuple[str, Workspace], hops: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change's feed row and outbox event (`insert_at_commit`) are inserted in the commit's own hop, with its
    ids handed back and each statement's time told to the query timer; a row the database refuses fails the
    commit, and nothing of the transaction is kept."""
    ids = database[1].ids
    outbox_ids: list[int] = []
    timed: list[float] = []
    monkeypatch.setattr(server.db, "statement_timers", [timed.append])
    async with db.session() as session:
        await _retitled(session, ids["px_shared_task"], "kept with its rows")
        feed = {"project_id": ids["px"], "kind": "task.updated", "visibility": "shared", "title": "hop feed row"}
        insert_at_commit(session, ACTIVITY_EVENTS, feed)
        insert_at_commit(session, OUTBOX_EVENTS, {"channels": "c", "payload": "{}", "node_id": "n"}, outbox_ids.append)
        hops.clear()
        await session.commit()
    assert hops == ["_work_then_commit"]
    assert len(timed) == 2 and all(0 < seconds < 5 for seconds in timed)  # the feed's INSERT, the outbox's
    async with db.session() as session:
        (outbox,) = (await session.exec(select(OutboxEvent).where(col(OutboxEvent.id).in_(outbox_ids)))).all()
        row = (await session.exec(select(ActivityEvent).where(ActivityEvent.title == "hop feed row"))).one()
        # The column defaults (a function, a constant) filled in, and the timestamps kept as UTC.
        assert len(outbox.event_id) == 32 and row.changes == "{}"
        for stamp in (outbox.created_at, row.created_at):
            assert stamp.tzinfo is not None and abs(stamp - utcnow()) < dt.timedelta(seconds=30)

    with pytest.raises(IntegrityError):
        async with db.session() as session:
            await _retitled(session, ids["px_shared_task"], "not kept")
            insert_at_commit(session, ACTIVITY_EVENTS, feed | {"title": "refused", "project_id": 10**9})
            await session.commit()
    async with db.session() as session:
        assert (await session.get(Task, ids["px_shared_task"])).title == "kept with its rows"  # type: ignore[union-attr]
        refused = await session.exec(select(ActivityEvent).where(ActivityEvent.title == "refused"))
        assert refused.all() == []
        # A write on the same pool after the failed commit: its connection's transaction was rolled back.
        kept = await session.get(Task, ids["px_shared_task"])
        assert kept is not None
        kept.title = "written after"
        await session.commit()
