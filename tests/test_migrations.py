"""Migrations from empty to head on SQLite and on the machine's PostgreSQL, and the models agree with them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlmodel import SQLModel

from server import migrate
from server.db import sync_url
from tests.conftest import postgres_database


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


def _check_head(url: str) -> None:
    assert migrate.current_revision(url) is None
    migrate.upgrade(url)
    assert migrate.is_at_head(url)
    engine = create_engine(sync_url(url))
    try:
        tables = set(inspect(engine).get_table_names())
        assert {
            "organizations",
            "clients",
            "users",
            "projects",
            "memberships",
            "statuses",
            "milestones",
            "tasks",
            "auth_sessions",
            "invites",
        } <= tables
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)
        assert diff == [], f"models and migrations disagree: {diff}"
    finally:
        engine.dispose()
    # Upgrading again is a no-op; downgrading to empty and back works.
    migrate.upgrade(url)
    migrate.downgrade(url, "base")
    assert migrate.current_revision(url) is None
    migrate.upgrade(url)
    assert migrate.is_at_head(url)


def test_sqlite_from_empty_to_head(tmp_path: Path) -> None:
    _check_head(f"sqlite:///{tmp_path / 'fresh.db'}")


@pytest.mark.postgres
def test_postgresql_from_empty_to_head(postgres_url: str) -> None:
    _check_head(postgres_url)
