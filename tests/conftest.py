from __future__ import annotations

import shutil
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from starlette.testclient import TestClient

from channels.client import TandemClient
from server.app import create_app
from server.db import sync_url
from server.settings import Settings
from tests.nodes import Node, cluster
from tests.workspace import Workspace, seed_database, write_seed_blobs

SECRET = "test-secret-key-" + "k" * 32


def make_settings(tmp: Path, **overrides: object) -> Settings:
    values: dict[str, object] = dict(
        env="test",
        database_url=f"sqlite:///{tmp / 'tandem.db'}",
        secret_key=SECRET,
        data_dir=tmp,
        base_url="http://testserver",
        auto_migrate=False,
        # In-process tests all come from one address ("testclient") and the API fuzzer sends thousands of
        # requests: the REST limits are off here and switched on by the tests about them (tests/test_ratelimit.py).
        api_requests_per_minute_per_ip=0,
        api_requests_per_minute_per_user=0,
        api_writes_per_minute_per_user=0,
    )
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def workspace_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Workspace]:
    """One migrated, seeded SQLite file per test session; each test gets a copy."""
    folder = tmp_path_factory.mktemp("template")
    ws = seed_database(f"sqlite:///{folder / 'tandem.db'}")
    write_seed_blobs(folder / "files")
    # Fold the WAL into the main file so a plain copy holds everything.
    with sqlite3.connect(folder / "tandem.db") as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return folder / "tandem.db", ws


@pytest.fixture
def workspace(workspace_template: tuple[Path, Workspace], tmp_path: Path) -> Workspace:
    copy_workspace(workspace_template[0], tmp_path)
    return workspace_template[1]


def copy_workspace(template_db: Path, target: Path) -> None:
    """The seeded database and the blobs of its files, into ``target`` (a test's data directory)."""
    shutil.copy(template_db, target / "tandem.db")
    shutil.copytree(template_db.parent / "files", target / "files", dirs_exist_ok=True)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def client(settings: Settings, workspace: Workspace) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="http://testserver") as test_client:
        yield test_client


REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture
def database(workspace_template: tuple[Path, Workspace], tmp_path: Path) -> tuple[str, Workspace]:
    """A copy of the seeded workspace as a database URL, for tests that start real nodes."""
    copy_workspace(workspace_template[0], tmp_path)
    return f"sqlite:///{tmp_path / 'tandem.db'}", workspace_template[1]


POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the machine's server, dropped afterwards."""
    name = f"tandem_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(sync_url(POSTGRES_ADMIN), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_database() -> Iterator[tuple[str, Workspace]]:
    """The seeded workspace in a fresh PostgreSQL database."""
    with postgres_database() as url:
        yield url, seed_database(url)


@pytest.fixture
def two_nodes(database: tuple[str, Workspace], tmp_path: Path) -> Iterator[list[Node]]:
    """Two uvicorn nodes sharing the database and the machine's Redis (with a prefix of their own)."""
    with cluster(tmp_path, database[0], REDIS, count=2) as nodes:
        yield nodes


@pytest.fixture
async def clients() -> AsyncIterator[list[TandemClient]]:
    """Hub clients opened by a test, closed after it."""
    opened: list[TandemClient] = []
    yield opened
    for client in opened:
        await client.close()


def bearer(ws: Workspace, role: str) -> dict[str, str]:
    return {"authorization": f"Bearer {ws.token(role)}"} if role != "anonymous" else {}
