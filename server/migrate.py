"""Schema migrations (Alembic), run by ``tandem migrate`` and, in development, at start-up."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, make_url, pool, text

from server.db import ensure_sqlite_dir, sync_url

MIGRATIONS = Path(__file__).parent / "migrations"
# pg_advisory_lock key of "someone is migrating this database" (any fixed 64-bit number; "tandem" in ASCII).
_MIGRATION_LOCK = 0x74616E64656D


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolates '%': escape it so passwords with '%' survive.
    config.set_main_option("sqlalchemy.url", sync_url(database_url).replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database at ``database_url`` up to ``revision``; a no-op when it is there already.

    Concurrent callers (``uvicorn --workers N`` starting with auto-migration, several nodes started together) run
    one after the other: on PostgreSQL under an advisory lock held by the migrating connection, on SQLite under an
    exclusive lock on ``<database>.migrate-lock``. The later ones then find the schema at head and do nothing.
    """
    ensure_sqlite_dir(database_url)
    config = alembic_config(database_url)
    if make_url(database_url).get_backend_name() == "postgresql":
        engine = create_engine(sync_url(database_url), poolclass=pool.NullPool)
        try:
            with engine.connect() as connection, _advisory_lock(connection):
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
                connection.commit()
        finally:
            engine.dispose()
        return
    with _file_lock(database_url):
        command.upgrade(config, revision)


@contextlib.contextmanager
def _advisory_lock(connection: Connection) -> Iterator[None]:
    connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK})
    connection.commit()
    try:
        yield
    finally:
        connection.rollback()  # a failed migration leaves its transaction open
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK})
        connection.commit()


@contextlib.contextmanager
def _file_lock(database_url: str) -> Iterator[None]:
    database = make_url(database_url).database
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(database_url: str) -> str | None:
    engine = create_engine(sync_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def is_at_head(database_url: str) -> bool:
    return current_revision(database_url) == head_revision()
