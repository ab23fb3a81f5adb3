"""Faults with real processes: the database away for a few seconds, a node shut down."""

from __future__ import annotations

import asyncio
import signal
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
