"""server/sqlite_direct.py through `Database.write`: a brief write on a SQLite file commits on the event loop's own
thread when the write lock is free, goes to the writer thread when another connection holds it (never waiting on
the loop's thread), and the write-ahead log it leaves is checkpointed off the loop."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

import server.db
from server.db import Database
from server.sqlite_direct import SqliteThread


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    path = tmp_path / "direct.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, data BLOB NOT NULL)")
    db = Database(f"sqlite:///{path}")
    yield db
    await db.close()


def adder(data: bytes, threads: list[int]) -> object:
    def add(conn: Connection) -> None:
        threads.append(threading.get_ident())
        conn.execute(text("INSERT INTO rows (data) VALUES (:data)"), {"data": data})

    return add


def count(db: Database) -> int:
    with sqlite3.connect(db.url.removeprefix("sqlite:///")) as conn:
        return int(conn.execute("SELECT count(*) FROM rows").fetchone()[0])


async def test_a_brief_write_commits_on_the_loops_own_thread(db: Database) -> None:
    threads: list[int] = []
    await db.write(adder(b"x", threads), brief=True)  # type: ignore[arg-type]
    await db.write(adder(b"y", threads))  # type: ignore[arg-type]
    loop_thread = threading.get_ident()
    assert threads[0] == loop_thread  # brief: no hop
    assert threads[1] != loop_thread  # the writer thread
    assert count(db) == 2  # both committed, as another connection sees


async def test_a_brief_write_meeting_a_taken_write_lock_waits_on_the_writer_thread(db: Database) -> None:
    holder = sqlite3.connect(db.url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another connection holds the write lock
    threads: list[int] = []
    write = asyncio.create_task(db.write(adder(b"x", threads), brief=True))  # type: ignore[arg-type]
    async with asyncio.timeout(10):
        while not threads:  # the writer thread took it and waits for the lock; the loop goes on meanwhile
            await asyncio.sleep(0.01)
    assert not write.done()
    assert threads[0] != threading.get_ident()
    holder.execute("COMMIT")
    holder.close()
    async with asyncio.timeout(10):
        await write
    assert count(db) == 1


async def test_a_failed_brief_write_commits_nothing(db: Database) -> None:
    def half(conn: Connection) -> None:
        conn.execute(text("INSERT INTO rows (data) VALUES (:data)"), {"data": b"x"})
        conn.execute(text("INSERT INTO rows (data) VALUES (NULL)"))  # NOT NULL: refused

    with pytest.raises(Exception, match="NOT NULL"):
        await db.write(half, brief=True)
    assert count(db) == 0
    threads: list[int] = []
    await db.write(adder(b"y", threads), brief=True)  # type: ignore[arg-type]
    assert threads == [threading.get_ident()] and count(db) == 1  # the lock was given back


async def test_the_log_brief_writes_leave_is_checkpointed_by_the_writer_thread(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server.db, "CHECKPOINT_EVERY", 10)
    wal = Path(db.url.removeprefix("sqlite:///") + "-wal")
    page = b"p" * 4096
    for _ in range(200):
        await db.write(adder(page, []), brief=True)  # type: ignore[arg-type]
        if db._checkpoint is not None:
            async with asyncio.timeout(10):
                await db._checkpoint  # done on the writer thread; the next write starts the log over
    assert count(db) == 200
    # Unchecked, the log would hold all 200 rows (over 800 KB); checkpointed every 10 commits it holds ~10.
    assert wal.stat().st_size < 200 * 1024


async def test_a_failed_checkpoint_is_logged_and_the_next_one_runs(
    db: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(server.db, "CHECKPOINT_EVERY", 2)
    runs: list[str] = []

    async def failing(self: SqliteThread) -> None:
        runs.append("failed")
        raise OSError("disk full")

    monkeypatch.setattr(SqliteThread, "checkpoint", failing)
    for _ in range(2):
        await db.write(adder(b"x", []), brief=True)  # type: ignore[arg-type]
    assert db._checkpoint is not None
    async with asyncio.timeout(10):
        await db._checkpoint  # the failure stays inside the task
    assert runs == ["failed"]
    assert "checkpointing the SQLite write-ahead log failed" in caplog.text
    monkeypatch.undo()
    monkeypatch.setattr(server.db, "CHECKPOINT_EVERY", 2)
    for _ in range(2):
        await db.write(adder(b"y", []), brief=True)  # type: ignore[arg-type]
    async with asyncio.timeout(10):
        await db._checkpoint
    assert count(db) == 4
