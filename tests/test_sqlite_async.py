"""The ``sqlite+tandem`` driver (server/sqlite_async.py): one crossing to aiosqlite's thread per statement, and
everything SQLAlchemy needs from a cursor still there (rows, rowcount, lastrowid, RETURNING, executemany, errors,
transactions)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from server.db import async_url


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = async_url(f"sqlite:///{tmp_path / 'driver.db'}")
    assert url.startswith("sqlite+tandem:")
    eng = create_async_engine(url)
    async with eng.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL)"))
    yield eng
    await eng.dispose()


async def test_a_statement_is_one_crossing(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    original = aiosqlite.Connection._execute

    async def counting(self: aiosqlite.Connection, fn: object, *args: object, **kwargs: object) -> object:
        calls.append(getattr(fn, "__name__", "?"))
        return await original(self, fn, *args, **kwargs)  # type: ignore[arg-type]

    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))  # the connection's own set-up is not counted
        monkeypatch.setattr(aiosqlite.Connection, "_execute", counting)
        rows = (await conn.execute(text("SELECT 1 UNION ALL SELECT 2"))).all()
    assert rows == [(1,), (2,)]
    assert calls[0] == "_statement" and calls.count("_statement") == 1  # then the pool's rollback on release


async def test_rows_rowcount_lastrowid_returning_and_executemany(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        inserted = await conn.execute(text("INSERT INTO t (name) VALUES ('a')"))
        assert inserted.lastrowid == 1 and inserted.rowcount == 1
        await conn.execute(text("INSERT INTO t (name) VALUES (:name)"), [{"name": "b"}, {"name": "c"}])
        returned = (await conn.execute(text("UPDATE t SET name = name || '!' WHERE id > 1 RETURNING id"))).all()
        assert sorted(r[0] for r in returned) == [2, 3]
        deleted = await conn.execute(text("DELETE FROM t WHERE id = 3"))
        assert deleted.rowcount == 1
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT id, name FROM t ORDER BY id"))).all() == [(1, "a"), (2, "b!")]
        assert (await conn.execute(text("SELECT name FROM t WHERE id = 99"))).first() is None


async def test_errors_surface_as_sqlalchemy_errors_and_roll_back(engine: AsyncEngine) -> None:
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t (name) VALUES ('x')"))
            await conn.execute(text("INSERT INTO t (name) VALUES ('x')"))
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0
        await conn.execute(text("SELECT 1"))  # the connection is still usable after the error
