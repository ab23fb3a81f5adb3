"""server/db.py: `bump_version` writes an object's changes and its next version in one statement, on SQLite and on
PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.util import await_only
from sqlmodel import col, select

import server.db
from server.activity.rules import ACTIVITY_EVENTS
from server.db import Database, bump_version, get_held, insert_at_commit, sync_url
from server.live.outbox import OUTBOX_EVENTS
from server.models import ActivityEvent, Comment, OutboxEvent, Status, Task
from tests.conftest import POSTGRES_ADMIN
from tests.workspace import Workspace

pytestmark = pytest.mark.both_databases


def _statements_of(db: Database) -> list[str]:
    """The SQL of every statement ``db``'s engine runs from now on, in order. On SQLite, from the connections
    themselves (sqlite3's trace callback, set as each opens): the rows inserted with a commit go in its hop with
    plain sqlite3 calls, not through SQLAlchemy's execution events. Transaction control left out, as there."""
    statements: list[str] = []
    if db.dialect != "sqlite":
        event.listen(db.engine.sync_engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
        return statements

    @event.listens_for(db.engine.sync_engine, "connect")
    def trace(dbapi_connection: Any, _record: Any) -> None:
        driver = dbapi_connection.driver_connection
        await_only(driver._call(lambda conn: conn.set_trace_callback(statement)))

    def statement(sql: str) -> None:
        if sql.split(None, 1)[0].upper() not in ("BEGIN", "COMMIT", "ROLLBACK", "PRAGMA"):  # as SQLAlchemy's events
            statements.append(sql)

    return statements


async def test_bump_version_writes_the_changes_and_the_next_version_in_one_statement(
    database_url: str, workspace: Workspace
) -> None:
    db = Database(database_url)
    statements = _statements_of(db)
    try:
        async with db.session() as session:
            task = await session.get(Task, workspace.ids["px_shared_task"])
            assert task is not None
            before = task.version
            stamp = dt.datetime(2026, 12, 6, 5, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
            task.title = "renamed"
            task.updated_at = stamp
            statements.clear()
            await bump_version(session, task)
            assert len(statements) == 1 and statements[0].lstrip().upper().startswith("UPDATE")
            assert task.version == before + 1
            assert task not in session.dirty  # nothing left for the commit to write again
            await session.commit()
        statements.clear()
        async with db.session() as session:
            stored = await session.get(Task, workspace.ids["px_shared_task"])
            assert stored is not None
            assert (stored.title, stored.version) == ("renamed", before + 1)
            assert stored.updated_at == stamp  # through the column's type: stored as UTC, read back aware
            await bump_version(session, stored)  # nothing changed but the version
            assert stored.version == before + 2
            await session.commit()
    finally:
        await db.close()


async def test_bump_version_alone_runs_no_flush_and_the_commit_none_either(
    database_url: str, workspace: Workspace
) -> None:
    db = Database(database_url)
    flushes: list[int] = []
    try:
        async with db.session() as session:
            event.listen(session.sync_session, "before_flush", lambda *args: flushes.append(1))
            task = await session.get(Task, workspace.ids["px_shared_task"])
            assert task is not None
            version = task.version
            task.title = "no flush"
            await bump_version(session, task)
            assert task not in session.dirty and not session.sync_session.is_modified(task)
            await session.commit()
        assert flushes == []  # the UPDATE ... RETURNING wrote it all
        async with db.session() as session:
            stored = await session.get(Task, workspace.ids["px_shared_task"])
            assert stored is not None and (stored.title, stored.version) == ("no flush", version + 1)
    finally:
        await db.close()


async def test_bump_version_flushes_the_sessions_other_pending_objects_first(
    database_url: str, workspace: Workspace
) -> None:
    db = Database(database_url)
    try:
        async with db.session() as session:
            task = await session.get(Task, workspace.ids["px_shared_task"])
            assert task is not None and task.id is not None
            comment = Comment(
                task_id=task.id, project_id=task.project_id, body="first", body_html="", visibility="shared"
            )
            session.add(comment)
            await session.flush()
            comment.body = "edited"
            session.add(
                Comment(task_id=task.id, project_id=task.project_id, body="second", body_html="", visibility="shared")
            )
            task.title = "with comments"
            await bump_version(session, comment)
            await session.commit()
        async with db.session() as session:
            bodies = (await session.exec(select(Comment.body, Comment.version).where(Comment.task_id == task.id))).all()
            assert ("edited", 2) in bodies and ("second", 1) in bodies
            stored = await session.get(Task, task.id)
            assert stored is not None and stored.title == "with comments"
    finally:
        await db.close()


def _feed_row(project_id: int, title: str, **more: object) -> dict[str, object]:
    return {"project_id": project_id, "kind": "task.updated", "visibility": "shared", "title": title, **more}


async def _titles(db: Database, project_id: int) -> list[str]:
    async with db.session() as session:
        query = select(ActivityEvent.title).where(ActivityEvent.project_id == project_id)
        query = query.order_by(col(ActivityEvent.id))
        return [title for title in (await session.exec(query)).all() if title.startswith("at-commit")]


async def test_insert_at_commit_writes_the_rows_with_the_commit_in_order_one_statement_per_run(
    database_url: str, workspace: Workspace
) -> None:
    db = Database(database_url)
    px = workspace.ids["px"]
    ids: list[int] = []
    statements = _statements_of(db)
    try:
        async with db.session() as session:
            insert_at_commit(session, ACTIVITY_EVENTS, _feed_row(px, "at-commit 1"))
            insert_at_commit(session, ACTIVITY_EVENTS, _feed_row(px, "at-commit 2"))
            insert_at_commit(session, OUTBOX_EVENTS, {"channels": "c", "payload": "{}", "node_id": "n"}, ids.append)
            insert_at_commit(session, OUTBOX_EVENTS, {"channels": "c", "payload": "{}", "node_id": "n"}, ids.append)
            with_task = _feed_row(px, "at-commit 3", task_id=workspace.ids["px_shared_task"])
            insert_at_commit(session, ACTIVITY_EVENTS, with_task)
            assert await _titles(db, px) == []  # nothing before the commit
            statements.clear()
            await session.commit()
        feed = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO ACTIVITY_EVENTS")]
        # Two feed rows alike, then one with other columns: two runs, two statements. (Rows whose ids are wanted
        # back go one by one where the database cannot return them in order: SQLite. There sqlite3's trace shows
        # every row a statement's executemany steps through, in order.)
        if db.dialect == "sqlite":
            titles = ("at-commit 1", "at-commit 2", "at-commit 3")
            assert all(title in sql for sql, title in zip(feed, titles, strict=True)), "\n".join(statements)
        else:
            assert len(feed) == 2, "\n".join(statements)
        assert await _titles(db, px) == ["at-commit 1", "at-commit 2", "at-commit 3"]
        assert len(ids) == 2 and ids[0] < ids[1]
        async with db.session() as session:
            stored = (await session.exec(select(OutboxEvent).where(col(OutboxEvent.id).in_(ids)))).all()
            assert {row.id for row in stored} == set(ids)
            assert all(len(row.event_id) == 32 and row.created_at is not None for row in stored)  # column defaults
    finally:
        await db.close()


async def test_a_changes_feed_row_and_outbox_event_go_in_one_statement_on_postgresql(
    database_url: str, database_engine: str, workspace: Workspace
) -> None:
    db = Database(database_url)
    px = workspace.ids["px"]
    ids: list[int] = []
    statements = _statements_of(db)
    try:
        async with db.session() as session:
            insert_at_commit(session, ACTIVITY_EVENTS, _feed_row(px, "at-commit together"))  # created_at: a default
            insert_at_commit(session, OUTBOX_EVENTS, {"channels": "c", "payload": "{}", "node_id": "n"}, ids.append)
            statements.clear()
            await session.commit()
        inserts = [s for s in statements if "INSERT INTO" in s.upper()]
        # PostgreSQL: one round trip, each table's INSERT a WITH clause; SQLite has no INSERT inside WITH.
        assert len(inserts) == (1 if database_engine == "postgresql" else 2), "\n".join(statements)
        assert await _titles(db, px) == ["at-commit together"]
        async with db.session() as session:
            feed = (await session.exec(select(ActivityEvent).where(ActivityEvent.title == "at-commit together"))).one()
            assert feed.created_at is not None and feed.changes == "{}"  # column defaults, filled in
            (outbox,) = (await session.exec(select(OutboxEvent).where(col(OutboxEvent.id).in_(ids)))).all()
            assert len(outbox.event_id) == 32 and outbox.created_at is not None
    finally:
        await db.close()


async def test_insert_at_commit_drops_what_a_rolled_back_savepoint_or_transaction_recorded(
    database_url: str, workspace: Workspace
) -> None:
    db = Database(database_url)
    px = workspace.ids["px"]
    try:
        async with db.session() as session:
            insert_at_commit(session, ACTIVITY_EVENTS, _feed_row(px, "at-commit kept"))
            outer = await session.begin_nested()
            insert_at_commit(session, ACTIVITY_EVENTS, _feed_row(px, "at-commit outer savepoint"))
            inner = await session.begin_nested()
            insert_at_commit(session, ACTIVITY_EVENTS, _feed_row(px, "at-commit inner savepoint"))
            await inner.commit()  # released, but inside the outer savepoint
            await outer.rollback()
            released = await session.begin_nested()
            insert_at_commit(session, ACTIVITY_EVENTS, _feed_row(px, "at-commit released"))
            await released.commit()
            await session.commit()
        assert await _titles(db, px) == ["at-commit kept", "at-commit released"]
        with pytest.raises(RuntimeError):
            async with db.session() as session:
                insert_at_commit(session, ACTIVITY_EVENTS, _feed_row(px, "at-commit failed request"))
                raise RuntimeError("the request failed")
        async with db.session() as session:
            insert_at_commit(session, ACTIVITY_EVENTS, _feed_row(px, "at-commit closed uncommitted"))
        async with db.session() as session:
            await session.commit()  # a later transaction on the same pool: nothing left over to write
        assert await _titles(db, px) == ["at-commit kept", "at-commit released"]
    finally:
        await db.close()


@pytest.mark.postgres
async def test_postgresql_pings_only_a_connection_that_sat_idle_and_a_broken_busy_one_fails_once(
    pg_database: tuple[str, Workspace], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(pg_database[0])
    pings: list[int] = []
    real_ping = db.engine.dialect.do_ping

    def counted_ping(dbapi_connection: Any) -> bool:
        pings.append(1)
        return real_ping(dbapi_connection)

    monkeypatch.setattr(db.engine.dialect, "do_ping", counted_ping)

    async def backend() -> int:
        async with db.engine.connect() as conn:
            return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())

    admin = create_engine(sync_url(POSTGRES_ADMIN), isolation_level="AUTOCOMMIT")

    def terminate(pid: int) -> None:
        with admin.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()

    try:
        first = await backend()  # opened now: no ping
        assert await backend() == first and pings == []  # back in the pool a moment ago: no ping either
        monkeypatch.setattr(server.db, "PING_WHEN_IDLE_FOR", 0.0)  # now every connection counts as idle
        assert await backend() == first and len(pings) == 1

        await asyncio.to_thread(terminate, first)
        replaced = await backend()  # the ping fails, the pool opens another connection: the caller sees nothing
        assert replaced != first and len(pings) == 2

        monkeypatch.setattr(server.db, "PING_WHEN_IDLE_FOR", 3600.0)  # busy: no connection is pinged
        await asyncio.to_thread(terminate, replaced)
        with pytest.raises(OperationalError):  # the one request that meets the broken connection (503 in the API)
            await backend()
        assert await backend() not in (first, replaced)  # the disconnect emptied the pool: a fresh one
    finally:
        admin.dispose()
        await db.close()


async def test_get_held_answers_from_the_session_what_it_holds_and_reads_the_rest(
    database_url: str, workspace: Workspace
) -> None:
    db = Database(database_url)
    statements = _statements_of(db)
    todo = workspace.ids["px_todo"]
    try:
        async with db.session() as session:
            status = await get_held(session, Status, todo)
            assert status is not None and len(statements) == 1
            assert await get_held(session, Status, todo) is status and len(statements) == 1  # held: no statement
            session.expire(status)
            assert await get_held(session, Status, todo) is status and len(statements) == 2  # expired: read again
            assert await get_held(session, Status, 10**9) is None
    finally:
        await db.close()
