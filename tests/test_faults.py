"""Faults with real processes: the database away for a few seconds, a node shut down, a node killed between
publishing an outbox row and deleting it."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from channels.client import TandemClient
from tests.faults import CuttableProxy
from tests.nodes import Api, Node, cluster, connect, next_data
from tests.workspace import Workspace


@pytest.mark.postgres
def test_database_outage_gives_retryable_errors_and_heals(pg_database: tuple[str, Workspace], tmp_path: Path) -> None:
    url, ws = pg_database
    with CuttableProxy(5432) as proxy:
        proxied = url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        with cluster(tmp_path, proxied, None, count=1) as (node,):
            http = httpx.Client(
                base_url=node.http, headers={"authorization": f"Bearer {ws.token('staff')}"}, timeout=15
            )
            tasks_url = f"/api/projects/{ws.ids['px']}/tasks"
            before = http.get(tasks_url + "?limit=200").json()["items"]
            assert http.patch(f"/api/tasks/{ws.ids['px_shared_task']}", json={"title": "before"}).status_code == 200

            proxy.cut()
            started = time.monotonic()
            failed = http.post(tasks_url, json={"title": "written during the outage", "visibility": "shared"})
            assert failed.status_code == 503, failed.text
            assert failed.json()["error"] == "unavailable" and failed.headers["retry-after"] == "2"
            assert time.monotonic() - started < 10, "the error must come promptly, not after a long hang"
            assert httpx.get(node.http + "/readyz", timeout=10).status_code == 503
            assert httpx.get(node.http + "/healthz", timeout=5).status_code == 200

            proxy.restore()
            deadline = time.monotonic() + 15
            while True:
                answer = http.patch(f"/api/tasks/{ws.ids['px_shared_task']}", json={"title": "after"})
                if answer.status_code == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert answer.status_code == 200, "the node did not recover by itself"
            after = http.get(tasks_url + "?limit=200").json()["items"]
            assert [t["id"] for t in after] == [t["id"] for t in before], "nothing half-written"
            assert httpx.get(node.http + "/readyz", timeout=10).status_code == 200
            http.close()


async def test_sigterm_tells_clients_to_reconnect_and_they_resume_elsewhere(
    two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    channel = f"project:{ws.ids['px']}:shared"
    customer = await connect(clients, a, ws, "customer")
    await customer.subscribe(channel)
    staff = Api(b, ws, "staff")
    try:
        await staff.patch_task(ws.ids["px_shared_task"], title="before shutdown")
        await next_data(customer)
        position = customer.positions[channel]
        assert a.process is not None
        a.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(5):
            while customer.close_code is None:
                await asyncio.sleep(0.02)
        assert customer.close_code == 1012  # service restart: reconnect elsewhere
        assert a.process.wait(timeout=10) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal when done
        assert "Traceback" not in a.log()
        await staff.patch_task(ws.ids["px_shared_task"], title="while reconnecting")
        resumed = await connect(clients, b, ws, "customer")
        reply = await resumed.subscribe(channel, since=position)
        assert reply["recovered"] is True
        assert (await next_data(resumed))["task"]["title"] == "while reconnecting"
    finally:
        await staff.aclose()


async def test_changes_committed_just_before_sigterm_are_still_published(
    two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    channel = f"project:{ws.ids['px']}:shared"
    customer = await connect(clients, b, ws, "customer")
    await customer.subscribe(channel)
    staff = Api(a, ws, "staff")
    try:
        titles = [f"last words {i}" for i in range(5)]
        for title in titles:
            await staff.patch_task(ws.ids["px_shared_task"], title=title)
        assert a.process is not None
        a.process.send_signal(signal.SIGTERM)  # at once: the relay may not have published them yet
        got = [(await next_data(customer, timeout=15))["task"]["title"] for _ in titles]
        assert got == titles
        assert a.process.wait(timeout=15) in (0, -signal.SIGTERM)
    finally:
        await staff.aclose()


def _sqlite(url: str, *statements: str) -> list[tuple[object, ...]]:
    """Run ``statements`` on the nodes' SQLite database in one transaction; the last one's rows."""
    with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"), timeout=10)) as conn, conn:
        rows: list[tuple[object, ...]] = []
        for statement in statements:
            rows = conn.execute(statement).fetchall()
        return rows


async def test_an_event_whose_node_died_before_deleting_its_row_reaches_subscribers_once(
    two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient]
) -> None:
    a, b = two_nodes
    url, ws = database
    channel = f"project:{ws.ids['px']}:shared"
    customer = await connect(clients, b, ws, "customer")
    await customer.subscribe(channel)
    on_a, on_b = Api(a, ws, "staff"), Api(b, ws, "staff")
    # The fault: no outbox row can be deleted, so node A publishes its row and keeps it, as a node killed right
    # after the publish would. Then A is killed for real, and B adopts the row once A's stamp is 15 s old.
    _sqlite(
        url,
        "CREATE TRIGGER fault_outbox_rows_stay BEFORE DELETE ON outbox_events "
        "BEGIN SELECT RAISE(ABORT, 'fault injected by the test'); END",
    )
    try:
        await on_a.patch_task(ws.ids["px_shared_task"], title="published by A, never deleted by A")
        first = await customer.next_event(5)
        assert first["data"]["task"]["title"] == "published by A, never deleted by A"
        assert len(_sqlite(url, "SELECT event_id FROM outbox_events")) == 1  # published, and still there
        a.kill()
        _sqlite(url, "DROP TRIGGER fault_outbox_rows_stay")
        async with asyncio.timeout(45):  # B adopted the row, published it again (as far as it knows), deleted it
            while _sqlite(url, "SELECT count(*) FROM outbox_events") != [(0,)]:
                await asyncio.sleep(0.2)
        await on_b.patch_task(ws.ids["px_shared_task"], title="after the adoption")
        after = await customer.next_event(10)
        # The adopted row did not reach the customer a second time, and spent no offset.
        assert after["data"]["task"]["title"] == "after the adoption"
        assert after["offset"] == first["offset"] + 1
        with pytest.raises(TimeoutError):
            await customer.next_event(0.5)
    finally:
        await on_a.aclose()
        await on_b.aclose()
