"""SQLite never hands out an id again: every table with an integer ``id`` gets ``AUTOINCREMENT``

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 04:00:00.000000

Without ``AUTOINCREMENT`` SQLite gives a new row the largest id in use plus one, so deleting the newest row frees its
id for the next one: a client still holding a deleted milestone's id would change the next milestone created, and a
note's live room could outlive its note into the next one. PostgreSQL's sequences never go back, so this revision
changes SQLite only.

SQLite cannot add ``AUTOINCREMENT`` to a table in place. Each table is rebuilt the way SQLite's documentation
describes for schema changes ALTER TABLE cannot make (create the new table, copy, drop the old, rename, recreate its
indexes), from the table's own ``CREATE TABLE`` text with only the primary key rewritten, so its columns, defaults,
checks and foreign keys stay exactly as they were. (Alembic's batch mode would rebuild from reflection, which drops
unnamed CHECK constraints and does not know ``AUTOINCREMENT``.) Migrations run with foreign keys off (SQLite's
default for a connection; the app turns them on for its own), so dropping a referenced table touches no row.

A later migration that rebuilds one of these tables in batch mode must pass
``table_kwargs={"sqlite_autoincrement": True}``; ``tests/test_migrations.py`` fails at head if one lost it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The two ways a table's primary key is written: SQLAlchemy's (a table constraint after the columns), and this
# revision's (on the column, where SQLite requires AUTOINCREMENT to be).
_COLUMN = re.compile(r"^(\s*)id INTEGER NOT NULL,", re.MULTILINE)
_TABLE_KEY = re.compile(r",\s*\n\s*CONSTRAINT (\w+) PRIMARY KEY \(id\)")
_COLUMN_KEY = re.compile(r"^(\s*)id INTEGER NOT NULL CONSTRAINT (\w+) PRIMARY KEY AUTOINCREMENT,", re.MULTILINE)


def _with_autoincrement(sql: str) -> str | None:
    key = _TABLE_KEY.search(sql)
    if key is None or not _COLUMN.search(sql):
        return None
    sql = sql[: key.start()] + sql[key.end() :]
    return _COLUMN.sub(rf"\1id INTEGER NOT NULL CONSTRAINT {key.group(1)} PRIMARY KEY AUTOINCREMENT,", sql, count=1)


def _without_autoincrement(sql: str) -> str | None:
    column = _COLUMN_KEY.search(sql)
    if column is None:
        return None
    sql = _COLUMN_KEY.sub(r"\1id INTEGER NOT NULL,", sql, count=1)
    closing = sql.rindex(")")
    return sql[:closing].rstrip() + f", \n\tCONSTRAINT {column.group(2)} PRIMARY KEY (id)\n" + sql[closing:]


def _rebuild(rewrite: Callable[[str], str | None]) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("rebuilding tables needs foreign keys off (a plain SQLite connection has them off)")
    tables = bind.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    ).all()
    for name, sql in tables:
        rebuilt = rewrite(sql)
        if rebuilt is None:
            continue  # no integer id (a composite or text key): nothing is handed out
        indexes = (
            bind.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL", (name,)
            )
            .scalars()
            .all()
        )
        columns = ", ".join(f'"{c[1]}"' for c in bind.exec_driver_sql(f'PRAGMA table_info("{name}")'))
        temporary = f"_rebuild_{name}"
        head = re.match(r'CREATE TABLE "?\w+"?', rebuilt)
        assert head is not None, name
        bind.exec_driver_sql(f'CREATE TABLE "{temporary}"' + rebuilt[head.end() :])
        bind.exec_driver_sql(f'INSERT INTO "{temporary}" ({columns}) SELECT {columns} FROM "{name}"')
        bind.exec_driver_sql(f'DROP TABLE "{name}"')
        bind.exec_driver_sql(f'ALTER TABLE "{temporary}" RENAME TO "{name}"')
        for index in indexes:
            bind.exec_driver_sql(index)
    broken = bind.execute(sa.text("PRAGMA foreign_key_check")).all()
    if broken:
        raise RuntimeError(f"rebuilding the tables broke references: {broken[:5]}")


def upgrade() -> None:
    _rebuild(_with_autoincrement)


def downgrade() -> None:
    _rebuild(_without_autoincrement)
