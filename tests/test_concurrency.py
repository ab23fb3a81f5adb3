"""Concurrent writers of one task, through a real node, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from channels.client import TandemClient
from tests.nodes import cluster, next_data
from tests.workspace import Workspace


async def concurrent_patches(url: str, ws: Workspace, tmp_path: Path) -> None:
    with cluster(tmp_path, url, None, count=1) as (node,):
        watcher = await TandemClient.connect(node.ws, token=ws.token("staff"), ping_interval=None)
        try:
            await watcher.subscribe(f"project:{ws.ids['px']}:staff")
            headers = {"authorization": f"Bearer {ws.token('staff')}"}
            async with httpx.AsyncClient(base_url=node.http, headers=headers, timeout=20) as http:
                answers = await asyncio.gather(
                    *(
                        http.patch(f"/api/tasks/{ws.ids['px_shared_task']}", json={"title": f"writer {i}"})
                        for i in range(12)
                    )
                )
            assert all(a.status_code == 200 for a in answers), [a.text for a in answers if a.status_code != 200]
            versions = [a.json()["version"] for a in answers]
            assert len(set(versions)) == 12, f"two writes shared a version: {sorted(versions)}"
            # The state with the highest version is the one the database kept, and the one clients end with.
            events = [await next_data(watcher) for _ in range(12)]
            newest = max(events, key=lambda e: e["task"]["version"])["task"]
            async with httpx.AsyncClient(base_url=node.http, headers=headers, timeout=20) as http:
                stored = (await http.get(f"/api/tasks/{ws.ids['px_shared_task']}")).json()
            assert stored["version"] == newest["version"] and stored["title"] == newest["title"]
        finally:
            await watcher.close()


async def test_concurrent_writers_get_distinct_versions_on_sqlite(
    database: tuple[str, Workspace], tmp_path: Path
) -> None:
    await concurrent_patches(database[0], database[1], tmp_path)


@pytest.mark.postgres
async def test_concurrent_writers_get_distinct_versions_on_postgresql(
    pg_database: tuple[str, Workspace], tmp_path: Path
) -> None:
    await concurrent_patches(pg_database[0], pg_database[1], tmp_path)
