"""server/db.py: `bump_version` writes an object's changes and its next version in one statement, on SQLite and on
PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event
from sqlmodel import select

from server.db import Database, bump_version
from server.models import Comment, Task
from tests.workspace import Workspace

pytestmark = pytest.mark.both_databases


async def test_bump_version_writes_the_changes_and_the_next_version_in_one_statement(
    database_url: str, workspace: Workspace
) -> None:
    db = Database(database_url)
    statements: list[str] = []
    event.listen(db.engine.sync_engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
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
