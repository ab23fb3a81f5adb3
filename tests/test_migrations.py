"""Migrations from empty to head on SQLite and on the machine's PostgreSQL, and the models agree with them."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlmodel import SQLModel

from server import migrate
from server.db import sync_url
from tests.conftest import postgres_database
from tests.workspace import seed_database


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
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    _check_head(url)
    # Every integer id is AUTOINCREMENT, so no id is handed out twice (0023); a later batch migration that rebuilt a
    # table without `table_kwargs={"sqlite_autoincrement": True}` would lose it silently.
    engine = create_engine(sync_url(url))
    with engine.connect() as conn:
        tables = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'table'")).all()
    engine.dispose()
    with_ids = [name for name, sql in tables if re.search(r"^\s*id INTEGER NOT NULL", sql, re.MULTILINE)]
    assert len(with_ids) > 30
    assert [name for name, sql in tables if name in with_ids and "AUTOINCREMENT" not in sql] == []


def test_sqlite_0023_keeps_every_row_index_and_constraint(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'seeded.db'}"
    seed_database(url)
    migrate.downgrade(url, "0022")
    engine = create_engine(sync_url(url))

    def contents() -> tuple[dict[str, list[Any]], set[str], str]:
        with engine.connect() as conn:
            names = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'")).scalars().all()
            rows = {n: conn.exec_driver_sql(f'SELECT * FROM "{n}" ORDER BY 1').all() for n in names}
            indexes = set(conn.execute(text("SELECT sql FROM sqlite_master WHERE type = 'index'")).scalars())
            schema = " ".join(conn.execute(text("SELECT sql FROM sqlite_master WHERE type = 'table'")).scalars())
            assert conn.execute(text("PRAGMA foreign_key_check")).all() == []
        rows.pop("alembic_version"), rows.pop("sqlite_sequence", None)
        return rows, indexes, schema

    try:
        rows, indexes, schema = contents()
        assert sum(map(len, rows.values())) > 50
        migrate.upgrade(url, "0023")
        rows_after, indexes_after, schema_after = contents()
        assert rows_after == rows and indexes_after == indexes
        # The same checks, foreign keys and uniques, in the same words: only the primary keys moved.
        constraint = re.compile(r"(?:CHECK|FOREIGN KEY|UNIQUE)\b[^\n]*")

        def constraints(text: str) -> list[str]:
            return sorted(c.rstrip(", ") for c in constraint.findall(text))

        assert constraints(schema_after) == constraints(schema)
        assert "CHECK" in schema and schema_after.count("AUTOINCREMENT") > 30
        migrate.downgrade(url, "0022")
        assert contents()[0] == rows
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgresql_from_empty_to_head(postgres_url: str) -> None:
    _check_head(postgres_url)


def _outbox_rows_survive_0011(url: str) -> None:
    """Pending outbox rows survive 0011 both ways: one channel each becomes a one-channel list, and a row for
    several channels becomes one row per channel again on the way down."""
    migrate.upgrade(url, "0010")
    engine = create_engine(sync_url(url))
    insert = "INSERT INTO outbox_events ({}, payload, node_id, created_at) VALUES (:c, '{{}}', 'n1', :t)"
    stamp = dt.datetime(2026, 12, 6, 5, 0)
    try:
        with engine.begin() as conn:
            conn.execute(text(insert.format("channel")), {"c": "project:1:staff", "t": stamp})
        migrate.upgrade(url, "0011")
        with engine.begin() as conn:
            assert conn.execute(text("SELECT channels FROM outbox_events")).scalars().all() == ["project:1:staff"]
            conn.execute(text(insert.format("channels")), {"c": "project:2:staff project:2:shared", "t": stamp})
        migrate.downgrade(url, "0010")
        with engine.begin() as conn:
            channels = conn.execute(text("SELECT channel FROM outbox_events ORDER BY id")).scalars().all()
        assert channels == ["project:1:staff", "project:2:staff", "project:2:shared"]
    finally:
        engine.dispose()


def test_sqlite_outbox_rows_survive_0011(tmp_path: Path) -> None:
    _outbox_rows_survive_0011(f"sqlite:///{tmp_path / 'outbox.db'}")


@pytest.mark.postgres
def test_postgresql_outbox_rows_survive_0011(postgres_url: str) -> None:
    _outbox_rows_survive_0011(postgres_url)


def _note_versions_become_internal_in_0012(url: str) -> None:
    """Versions saved before 0012 cannot tell their audience: they become internal (customers never see a draft)."""
    migrate.upgrade(url, "0011")
    engine = create_engine(sync_url(url))
    stamp = dt.datetime(2026, 12, 6, 5, 0)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO organizations (id, name, slug, created_at) VALUES (1, 'o', 'o', :t)"), {"t": stamp}
            )
            conn.execute(
                text("INSERT INTO clients (id, organization_id, name, created_at) VALUES (1, 1, 'c', :t)"),
                {"t": stamp},
            )
            conn.execute(
                text(
                    "INSERT INTO projects (id, organization_id, client_id, name, description, archived, created_at,"
                    " updated_at) VALUES (1, 1, 1, 'p', '', false, :t, :t)"
                ),
                {"t": stamp},
            )
            conn.execute(
                text(
                    "INSERT INTO notes (id, project_id, title, visibility, created_at, updated_at)"
                    " VALUES (1, 1, 'n', 'shared', :t, :t)"
                ),
                {"t": stamp},
            )
            conn.execute(
                text("INSERT INTO note_versions (note_id, name, data, created_at) VALUES (1, 'v', :d, :t)"),
                {"d": b"\x00", "t": stamp},
            )
        migrate.upgrade(url)
        with engine.begin() as conn:
            assert conn.execute(text("SELECT visibility FROM note_versions")).scalars().all() == ["internal"]
        migrate.downgrade(url, "0011")
        with engine.begin() as conn:
            assert conn.execute(text("SELECT name FROM note_versions")).scalars().all() == ["v"]
    finally:
        engine.dispose()


def _outbox_rows_get_event_ids_in_0013(url: str) -> None:
    """Rows pending at 0013 get distinct event ids; new rows get their own; down again, the rows stay."""
    migrate.upgrade(url, "0012")
    engine = create_engine(sync_url(url))
    insert = "INSERT INTO outbox_events (channels, payload, node_id, created_at{}) VALUES (:c, '{{}}', 'n1', :t{})"
    stamp = dt.datetime(2026, 12, 6, 12, 0)
    try:
        with engine.begin() as conn:
            for n in (1, 2):
                conn.execute(text(insert.format("", "")), {"c": f"project:{n}:staff", "t": stamp})
        migrate.upgrade(url)
        with engine.begin() as conn:
            ids = conn.execute(text("SELECT event_id FROM outbox_events ORDER BY id")).scalars().all()
            assert len(set(ids)) == 2 and all(ids)
            with pytest.raises(Exception, match=r"(?i)null"), conn.begin_nested():  # an event id is required now
                conn.execute(text(insert.format(", event_id", ", NULL")), {"c": "project:3:staff", "t": stamp})
        migrate.downgrade(url, "0012")
        with engine.begin() as conn:
            channels = conn.execute(text("SELECT channels FROM outbox_events ORDER BY id")).scalars().all()
        assert channels == ["project:1:staff", "project:2:staff"]
    finally:
        engine.dispose()


def test_sqlite_note_versions_become_internal_in_0012(tmp_path: Path) -> None:
    _note_versions_become_internal_in_0012(f"sqlite:///{tmp_path / 'versions.db'}")


@pytest.mark.postgres
def test_postgresql_note_versions_become_internal_in_0012(postgres_url: str) -> None:
    _note_versions_become_internal_in_0012(postgres_url)


def test_sqlite_outbox_rows_get_event_ids_in_0013(tmp_path: Path) -> None:
    _outbox_rows_get_event_ids_in_0013(f"sqlite:///{tmp_path / 'outbox.db'}")


@pytest.mark.postgres
def test_postgresql_outbox_rows_get_event_ids_in_0013(postgres_url: str) -> None:
    _outbox_rows_get_event_ids_in_0013(postgres_url)


def _default_waiting_column_is_flagged_by_0014(url: str) -> None:
    """0014 flags existing projects' default "Waiting on customer" column, and nothing else; down drops the flag."""
    migrate.upgrade(url, "0013")
    engine = create_engine(sync_url(url))
    stamp = dt.datetime(2026, 12, 6, 11, 0)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO organizations (id, name, slug, created_at) VALUES (1, 'A', 'a', :t)"), {"t": stamp}
            )
            conn.execute(
                text("INSERT INTO clients (id, organization_id, name, created_at) VALUES (1, 1, 'X', :t)"), {"t": stamp}
            )
            conn.execute(
                text(
                    "INSERT INTO projects (id, organization_id, client_id, name, description, archived, created_at,"
                    " updated_at) VALUES (1, 1, 1, 'P', '', false, :t, :t)"
                ),
                {"t": stamp},
            )
            for position, (name, category) in enumerate(
                [("To do", "todo"), ("Waiting on customer", "blocked"), ("Blocked by vendor", "blocked")]
            ):
                conn.execute(
                    text(
                        "INSERT INTO statuses (project_id, name, category, colour, position)"
                        " VALUES (1, :n, :c, '#000000', :p)"
                    ),
                    {"n": name, "c": category, "p": position},
                )
        migrate.upgrade(url)
        with engine.begin() as conn:
            flags = conn.execute(text("SELECT name, waits_on_customer FROM statuses ORDER BY position")).all()
        assert [(name, bool(flag)) for name, flag in flags] == [
            ("To do", False),
            ("Waiting on customer", True),
            ("Blocked by vendor", False),
        ]
        migrate.downgrade(url, "0013")
        with engine.begin() as conn:
            assert conn.execute(text("SELECT count(*) FROM statuses")).scalar() == 3
            assert "waits_on_customer" not in {c["name"] for c in inspect(conn).get_columns("statuses")}
    finally:
        engine.dispose()


def test_sqlite_0014_flags_the_default_waiting_column(tmp_path: Path) -> None:
    _default_waiting_column_is_flagged_by_0014(f"sqlite:///{tmp_path / 'waiting.db'}")


@pytest.mark.postgres
def test_postgresql_0014_flags_the_default_waiting_column(postgres_url: str) -> None:
    _default_waiting_column_is_flagged_by_0014(postgres_url)


def _sign_in_links_arrive_with_0016(url: str) -> None:
    """0016 adds the sign-in links table and turns staff link sign-in off for existing organizations; down drops
    both and keeps the organization."""
    migrate.upgrade(url, "0015")
    engine = create_engine(sync_url(url))
    stamp = dt.datetime(2026, 12, 6, 12, 0)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO organizations (id, name, slug, created_at) VALUES (1, 'A', 'a', :t)"), {"t": stamp}
            )
        migrate.upgrade(url)
        with engine.begin() as conn:
            assert conn.execute(text("SELECT allow_staff_link_sign_in FROM organizations")).scalar() in (False, 0)
            assert "sign_in_links" in inspect(conn).get_table_names()
        migrate.downgrade(url, "0015")
        with engine.begin() as conn:
            assert conn.execute(text("SELECT count(*) FROM organizations")).scalar() == 1
            assert "allow_staff_link_sign_in" not in {c["name"] for c in inspect(conn).get_columns("organizations")}
            assert "sign_in_links" not in inspect(conn).get_table_names()
    finally:
        engine.dispose()


def test_sqlite_0016_adds_sign_in_links(tmp_path: Path) -> None:
    _sign_in_links_arrive_with_0016(f"sqlite:///{tmp_path / 'links.db'}")


@pytest.mark.postgres
def test_postgresql_0016_adds_sign_in_links(postgres_url: str) -> None:
    _sign_in_links_arrive_with_0016(postgres_url)


def _existing_audit_rows_are_chained_by_0017(url: str) -> None:
    """0017 chains the audit rows already stored, in id order, so they verify; down drops the chain."""
    from server.audit.chain import verify

    migrate.upgrade(url, "0016")
    engine = create_engine(sync_url(url))
    stamp = dt.datetime(2026, 12, 6, 11, 0)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO organizations (id, name, slug, created_at) VALUES (1, 'A', 'a', :t)"), {"t": stamp}
            )
            for n in range(3):
                conn.execute(
                    text(
                        "INSERT INTO audit_events (organization_id, action, target_type, ip, user_agent, details,"
                        " created_at) VALUES (1, 'auth.login', 'user', '10.0.0.1', 'ua', :d, :t)"
                    ),
                    {"d": f'{{"n": {n}}}', "t": stamp + dt.timedelta(seconds=n)},
                )
        migrate.upgrade(url)
        with engine.begin() as conn:
            verdict = verify(conn)
            assert verdict.ok and verdict.rows == 3, verdict
            links = conn.execute(text("SELECT prev_hash, hash FROM audit_events ORDER BY id")).all()
        assert [prev for prev, _ in links[1:]] == [digest for _, digest in links[:-1]]
        migrate.downgrade(url, "0016")
        with engine.begin() as conn:
            assert conn.execute(text("SELECT count(*) FROM audit_events")).scalar() == 3
            assert "hash" not in {c["name"] for c in inspect(conn).get_columns("audit_events")}
    finally:
        engine.dispose()


def test_sqlite_0017_chains_existing_audit_rows(tmp_path: Path) -> None:
    _existing_audit_rows_are_chained_by_0017(f"sqlite:///{tmp_path / 'audit.db'}")


@pytest.mark.postgres
def test_postgresql_0017_chains_existing_audit_rows(postgres_url: str) -> None:
    _existing_audit_rows_are_chained_by_0017(postgres_url)


SECOND_FACTOR_TABLES = {"totp_factors", "recovery_codes", "passkeys", "known_devices"}


def _second_factors_arrive_with_0019(url: str) -> None:
    """0019 adds the second-factor tables; existing organizations require nothing and no session must enrol; down
    drops them and keeps the organization."""
    migrate.upgrade(url, "0018")
    engine = create_engine(sync_url(url))
    stamp = dt.datetime(2026, 12, 6, 14, 0)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO organizations (id, name, slug, created_at) VALUES (1, 'A', 'a', :t)"), {"t": stamp}
            )
        migrate.upgrade(url)
        with engine.begin() as conn:
            row = conn.execute(
                text("SELECT require_second_factor_staff, require_second_factor_customers FROM organizations")
            ).one()
            assert tuple(row) in ((False, False), (0, 0))
            assert set(inspect(conn).get_table_names()) >= SECOND_FACTOR_TABLES
            assert "needs_enrolment" in {c["name"] for c in inspect(conn).get_columns("auth_sessions")}
        migrate.downgrade(url, "0018")
        with engine.begin() as conn:
            assert conn.execute(text("SELECT count(*) FROM organizations")).scalar() == 1
            assert not SECOND_FACTOR_TABLES & set(inspect(conn).get_table_names())
            assert "needs_enrolment" not in {c["name"] for c in inspect(conn).get_columns("auth_sessions")}
    finally:
        engine.dispose()


def test_sqlite_0019_adds_second_factors(tmp_path: Path) -> None:
    _second_factors_arrive_with_0019(f"sqlite:///{tmp_path / 'factors.db'}")


@pytest.mark.postgres
def test_postgresql_0019_adds_second_factors(postgres_url: str) -> None:
    _second_factors_arrive_with_0019(postgres_url)


def _notification_params_back_filled_by_0020(url: str) -> None:
    """0020 gives notifications made before it the params their English sentences were made of; down drops them."""
    migrate.upgrade(url, "0019")
    engine = create_engine(sync_url(url))
    stamp = dt.datetime(2026, 12, 6, 14, 0)
    old = [
        ("mention", "Anna Staff: Fix: the login"),
        ("status", "Launch → Waiting on customer"),
        ("request", "Logo: merged into Brand kit"),
        ("request", "Logo: information needed"),
        ("request", "Logo: something else"),
        ("feedback", "Website"),
    ]
    try:
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO organizations (id, name, slug, created_at) VALUES (1, 'A', 'a', :t)"), {"t": stamp}
            )
            conn.execute(
                text(
                    "INSERT INTO users (id, organization_id, email, name, role, password_hash, locale, is_active,"
                    " created_at) VALUES (1, 1, 'c@example.com', 'C', 'customer', 'x', 'sv', true, :t)"
                ),
                {"t": stamp},
            )
            for kind, sentence in old:
                conn.execute(
                    text("INSERT INTO notifications (user_id, kind, text, created_at) VALUES (1, :k, :s, :t)"),
                    {"k": kind, "s": sentence, "t": stamp},
                )
        migrate.upgrade(url)
        with engine.begin() as conn:
            params = [json.loads(p) for (p,) in conn.execute(text("SELECT params FROM notifications ORDER BY id"))]
        assert params == [
            {"actor": "Anna Staff", "task": "Fix: the login"},
            {"task": "Launch", "status": "Waiting on customer"},
            {"request": "Logo", "step": "merged", "task": "Brand kit"},
            {"request": "Logo", "step": "asked"},
            {},
            {"project": "Website"},
        ]
        migrate.downgrade(url, "0019")
        with engine.begin() as conn:
            assert conn.execute(text("SELECT count(*) FROM notifications")).scalar() == len(old)
            assert "params" not in {c["name"] for c in inspect(conn).get_columns("notifications")}
    finally:
        engine.dispose()


def test_sqlite_0020_back_fills_notification_params(tmp_path: Path) -> None:
    _notification_params_back_filled_by_0020(f"sqlite:///{tmp_path / 'notices.db'}")


@pytest.mark.postgres
def test_postgresql_0020_back_fills_notification_params(postgres_url: str) -> None:
    _notification_params_back_filled_by_0020(postgres_url)
