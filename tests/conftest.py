from __future__ import annotations

import fcntl
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from starlette.testclient import TestClient

from channels.client import TandemClient
from server.app import WEB_DIST, create_app
from server.db import sync_url
from server.settings import Settings
from tests.nodes import Node, RedisShards, cluster
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


# Files that take a minute or more on their own (a clean CI run's durations), longest first. xdist's loadfile
# scheduler hands out files by their number of tests, most first, which put these, few tests each, at the end: one
# worker then ran the visibility model alone for minutes. `LongFilesFirst` starts them first instead (longest
# processing time first), then the rest by count as before.
LONG_FILES = (
    "test_visibility_model.py",
    "test_authorization.py",
    "test_every_page.py",
    "test_api_stateful.py",
    "test_api_fuzz.py",
    "test_language.py",
    "test_connection_storm.py",
)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class LongFilesFirst(LoadFileScheduling):
        """loadfile, with the files of ``LONG_FILES`` first in the work queue."""

        ordered = False

        def _assign_work_unit(self, node: Any) -> None:
            if not self.ordered:  # the queue is complete before the first file is handed out
                self.ordered = True

                def rank(scope: str) -> int:
                    name = scope.rsplit("/", 1)[-1]
                    return LONG_FILES.index(name) if name in LONG_FILES else len(LONG_FILES)

                queue = sorted(self.workqueue.items(), key=lambda unit: rank(unit[0]))  # stable: count order kept
                self.workqueue.clear()
                self.workqueue.update(queue)
            super()._assign_work_unit(node)

    return LongFilesFirst(config, log)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Tests marked ``both_databases`` that use the seeded workspace run on SQLite and on PostgreSQL.
    if metafunc.definition.get_closest_marker("both_databases") and "workspace" in metafunc.fixturenames:
        metafunc.parametrize("database_engine", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def database_engine(request: pytest.FixtureRequest) -> str:
    """``sqlite``, unless a test marked ``both_databases`` runs its PostgreSQL variant."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def database_url(database_engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The test's database: a SQLite file in tmp_path, or a copy of the session's seeded PostgreSQL template."""
    if database_engine == "sqlite":
        yield f"sqlite:///{tmp_path / 'tandem.db'}"
        return
    template, _ = request.getfixturevalue("pg_template")
    write_seed_blobs(tmp_path / "files")
    with postgres_database(template) as url:
        yield url


@pytest.fixture
def workspace(
    database_engine: str,
    database_url: str,
    request: pytest.FixtureRequest,
    workspace_template: tuple[Path, Workspace],
    tmp_path: Path,
) -> Workspace:
    if database_engine == "postgresql":
        return request.getfixturevalue("pg_template")[1]  # type: ignore[no-any-return]
    copy_workspace(workspace_template[0], tmp_path)
    return workspace_template[1]


def copy_workspace(template_db: Path, target: Path) -> None:
    """The seeded database and the blobs of its files, into ``target`` (a test's data directory)."""
    shutil.copy(template_db, target / "tandem.db")
    shutil.copytree(template_db.parent / "files", target / "files", dirs_exist_ok=True)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url=database_url)


@pytest.fixture
def client(settings: Settings, workspace: Workspace) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="http://testserver") as test_client:
        yield test_client


@pytest.fixture(scope="session")
def built_web_client() -> Path:
    """web/dist, built first when it is missing (``npm run build`` in web/, as ``make web`` does): tests that
    serve the client run against it, or fail saying why it could not be built. Never a skip."""
    web = WEB_DIST.parent
    with open(web / ".build.lock", "w") as lock:  # parallel workers build once, the others wait for it
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (WEB_DIST / "index.html").exists():
            npm = shutil.which("npm")
            assert npm, "web/dist is not built and npm is not installed to build it (make web)"
            assert (web / "node_modules").exists(), "web/dist is not built and web/node_modules is missing (make web)"
            built = subprocess.run(
                [npm, "run", "build", "--silent"], cwd=web, capture_output=True, text=True, timeout=300
            )
            assert built.returncode == 0, f"npm run build failed in web/:\n{built.stdout[-2000:]}{built.stderr[-2000:]}"
        assert (WEB_DIST / "index.html").exists(), "npm run build left no web/dist/index.html"
    return WEB_DIST


REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture
def database(workspace_template: tuple[Path, Workspace], tmp_path: Path) -> tuple[str, Workspace]:
    """A copy of the seeded workspace as a database URL, for tests that start real nodes."""
    copy_workspace(workspace_template[0], tmp_path)
    return f"sqlite:///{tmp_path / 'tandem.db'}", workspace_template[1]


@pytest.fixture(scope="session")
def redis_shards() -> Iterator[RedisShards]:
    """A real three-shard Redis Cluster on free loopback ports, shared by the session's tests (keys prefixed)."""
    with throwaway_cluster() as shards:
        yield shards


@contextmanager
def throwaway_cluster(replicas: int = 0) -> Iterator[RedisShards]:
    """A three-shard Redis Cluster in a temporary directory; its processes and files are gone afterwards."""
    with tempfile.TemporaryDirectory(prefix="tandem-redis-cluster-") as folder:
        shards = RedisShards(Path(folder), count=3, replicas=replicas)
        try:
            yield shards.start()
        finally:
            shards.stop()


POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def postgres_database(template: str | None = None) -> Iterator[str]:
    """A fresh PostgreSQL database on the machine's server (empty, or a copy of ``template``), dropped afterwards."""
    name = f"tandem_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(sync_url(POSTGRES_ADMIN), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
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


@pytest.fixture(scope="session")
def pg_template() -> Iterator[tuple[str, Workspace]]:
    """One migrated, seeded PostgreSQL database per session (the name), which tests copy (``CREATE DATABASE ...
    TEMPLATE``, a file copy: far cheaper than migrating and seeding again)."""
    with postgres_database() as url:
        ws = seed_database(url)  # its engines are disposed, so nobody is connected when it is copied
        yield url.rsplit("/", 1)[1], ws


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
