"""Faults with real processes: the database away for a few seconds."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.faults import CuttableProxy
from tests.nodes import cluster
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
