"""The audit log's hash chain (server/audit/chain.py): rows written through the API chain and verify with
``tandem audit verify``; a row changed or removed by SQL is named; a retention purge keeps the rest verifying; and
writers on two connection pools at once keep one chain."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from starlette.testclient import TestClient

from server.audit.chain import purge_older_than
from server.db import Database, sync_url, utcnow
from server.live.session_upkeep import purge_ended
from server.models import AuditEvent
from server.settings import Settings
from tests.conftest import bearer, postgres_database
from tests.nodes import ROOT
from tests.workspace import Workspace

pytestmark = pytest.mark.both_databases


def audit_verify(settings: Settings, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", "audit", "verify"],
        env={"TANDEM_DATABASE_URL": settings.database_url, "TANDEM_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def sql(settings: Settings, statement: str, **params: object) -> list[tuple[object, ...]]:
    engine = create_engine(sync_url(settings.database_url))
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement), params)
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


def write_events(client: TestClient, ws: Workspace, count: int) -> None:
    for n in range(count):
        made = client.post("/api/me/tokens", json={"name": f"t{n}", "scopes": ["read"]}, headers=bearer(ws, "staff"))
        assert made.status_code == 201, made.text
    assert client.post("/api/auth/login", json={"email": ws.emails["staff"], "password": "nope"}).status_code == 401


def test_the_chain_verifies_and_a_changed_or_removed_row_is_named(
    client: TestClient, workspace: Workspace, settings: Settings, tmp_path: Path
) -> None:
    write_events(client, workspace, 4)
    ids = [row[0] for row in sql(settings, "SELECT id FROM audit_events ORDER BY id")]
    assert len(ids) >= 5
    ok = audit_verify(settings, tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert f"{len(ids)} rows" in ok.stdout

    changed = ids[2]
    original = sql(settings, "SELECT details FROM audit_events WHERE id = :id", id=changed)[0][0]
    sql(settings, 'UPDATE audit_events SET details = \'{"name": "innocent"}\' WHERE id = :id', id=changed)
    bad = audit_verify(settings, tmp_path)
    assert bad.returncode == 1
    assert f"broken at row {changed}:" in bad.stderr and "changed" in bad.stderr

    sql(settings, "UPDATE audit_events SET details = :d WHERE id = :id", d=original, id=changed)
    assert audit_verify(settings, tmp_path).returncode == 0
    # A row removed from the end: the chain's head is missing.
    sql(settings, "DELETE FROM audit_events WHERE id = :id", id=ids[-1])
    tail = audit_verify(settings, tmp_path)
    assert tail.returncode == 1 and "head is missing" in tail.stderr
    # A row removed from the middle: the next one no longer links.
    sql(settings, "DELETE FROM audit_events WHERE id = :id", id=ids[1])
    gone = audit_verify(settings, tmp_path)
    assert gone.returncode == 1 and f"broken at row {ids[2]}:" in gone.stderr


def test_a_retention_purge_keeps_the_chain_verifying(
    client: TestClient, workspace: Workspace, settings: Settings, tmp_path: Path
) -> None:
    write_events(client, workspace, 3)
    cutoff = utcnow() + dt.timedelta(microseconds=1)
    kept_before = sql(settings, "SELECT count(*) FROM audit_events")[0][0]
    write_events(client, workspace, 2)

    async def purge() -> int:
        db = Database(settings.database_url)
        try:
            # Retention of 0 days keeps everything; then the cut-off above.
            assert (await purge_ended(db, replace(settings, audit_retention_days=0))).audit_events == 0
            return await db.write(lambda conn: purge_older_than(conn, cutoff))
        finally:
            await db.close()

    assert asyncio.run(purge()) == kept_before
    verdict = audit_verify(settings, tmp_path)
    assert verdict.returncode == 0, verdict.stderr
    write_events(client, workspace, 1)
    assert audit_verify(settings, tmp_path).returncode == 0
    # The first kept row is where the chain now starts: changing it is still found.
    first = sql(settings, "SELECT min(id) FROM audit_events")[0][0]
    sql(settings, "UPDATE audit_events SET ip = '10.0.0.9' WHERE id = :id", id=first)
    assert f"broken at row {first}:" in audit_verify(settings, tmp_path).stderr


def test_writers_on_two_pools_at_once_keep_one_chain(workspace: Workspace, settings: Settings, tmp_path: Path) -> None:
    async def write(db: Database, who: str) -> None:
        for n in range(15):
            async with db.session() as session:
                session.add(AuditEvent(organization_id=None, action="test.concurrent", details=f'{{"n": "{who}{n}"}}'))
                await session.commit()

    async def run() -> None:
        first, second = Database(settings.database_url), Database(settings.database_url)
        try:
            await asyncio.gather(write(first, "a"), write(second, "b"), write(first, "c"), write(second, "d"))
        finally:
            await first.close()
            await second.close()

    asyncio.run(run())
    assert sql(settings, "SELECT count(*) FROM audit_events WHERE action = 'test.concurrent'")[0][0] == 60
    verdict = audit_verify(settings, tmp_path)
    assert verdict.returncode == 0, verdict.stderr


def test_refused_access_to_an_item_that_exists_is_recorded_once(
    client: TestClient, workspace: Workspace, settings: Settings
) -> None:
    hidden = workspace.ids["px_internal_task"]
    missing = 10_000_000
    answers = [
        client.get(f"/api/tasks/{task}", headers=bearer(workspace, "customer")) for task in (hidden, hidden, missing)
    ]
    # The same 404 whether the task is hidden or does not exist.
    assert [a.status_code for a in answers] == [404, 404, 404]
    assert answers[0].json() == answers[2].json()
    assert client.get(f"/api/projects/{workspace.ids['py']}", headers=bearer(workspace, "customer")).status_code == 404

    refused = client.get("/api/audit", params={"action": "access.refused"}, headers=bearer(workspace, "owner"))
    rows = [(e["actor_id"], e["target_type"], e["target_id"]) for e in refused.json()["items"]]
    customer = workspace.users["customer"]
    assert sorted(rows, key=str) == sorted(
        [(customer, "task", hidden), (customer, "project", workspace.ids["py"])], key=str
    )
    assert refused.json()["items"][-1]["details"] == {"method": "GET", "path": f"/api/tasks/{hidden}"}


@pytest.mark.postgres
async def test_audited_transactions_neither_wait_for_each_other_nor_deadlock_on_postgresql(
    pg_template: tuple[str, Workspace], tmp_path: Path
) -> None:
    """The head lock is the last one a transaction takes: one that recorded an event and goes on working holds no
    lock another audited transaction needs, and two taking a row in the opposite order to the head do not deadlock
    (each flushes its event first, the way a handler records and then writes)."""
    ws = pg_template[1]
    touch = text("UPDATE users SET name = name WHERE id = :id")
    staff, owner = {"id": ws.users["staff"]}, {"id": ws.users["owner"]}

    def event(n: str) -> AuditEvent:
        return AuditEvent(organization_id=None, action="test.order", details=f'{{"n": "{n}"}}')

    with postgres_database(pg_template[0]) as url:
        db = Database(url)
        try:
            async with asyncio.timeout(20), db.session() as first, db.session() as second:
                # 1. `first` records an event (flushed), takes a row and keeps its transaction open.
                first.add(event("first"))
                await first.flush()
                await (await first.connection()).execute(touch, staff)
                # 2. Meanwhile `second` records one and flushes it: it does not wait for `first`.
                second.add(event("second"))
                await (await second.connection()).execute(touch, owner)
                await second.flush()
                # 3. `second` wants the row `first` holds, and `first` commits: with the head locked at the flush,
                # `first` would wait for the head while `second` waits for the row (a deadlock).
                blocked = asyncio.create_task((await second.connection()).execute(touch, staff))
                await first.commit()
                await blocked
                await second.commit()
            rows = sql(
                replace(Settings(), database_url=url),
                "SELECT details FROM audit_events WHERE action = 'test.order' ORDER BY id",
            )
            assert [r[0] for r in rows] == ['{"n": "first"}', '{"n": "second"}']  # ids follow the commits
            verdict = audit_verify(replace(Settings(), database_url=url), tmp_path)
            assert verdict.returncode == 0, verdict.stderr
        finally:
            await db.close()
