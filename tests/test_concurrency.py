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


async def racing_into_a_limited_status(url: str, ws: Workspace, tmp_path: Path) -> None:
    """Moves and new tasks sent at once into a status with a WIP limit: exactly the limit gets in.

    Each writer counts the column, then writes; without one writer at a time per status, all of them count the
    same free places (a quick second move on a busy node once put 2 tasks in a column of 1).
    """
    with cluster(tmp_path, url, None, count=1) as (node,):
        owner = {"authorization": f"Bearer {ws.token('owner')}"}
        px = ws.ids["px"]
        async with httpx.AsyncClient(base_url=node.http, headers=owner, timeout=30) as http:
            created = await http.post(
                f"/api/projects/{px}/statuses",
                json={"name": "Review", "category": "active", "colour": "#aa00ff", "wip_limit": 2},
            )
            assert created.status_code == 201, created.text
            review = created.json()["id"]
            tasks = (await http.get(f"/api/projects/{px}/tasks")).json()["items"]
            assert len(tasks) >= 3
            answers = await asyncio.gather(
                *(http.patch(f"/api/tasks/{t['id']}", json={"status_id": review}) for t in tasks),
                *(
                    http.post(f"/api/projects/{px}/tasks", json={"title": f"new {i}", "status_id": review})
                    for i in range(6)
                ),
            )
            accepted = [a for a in answers if a.status_code in (200, 201)]
            refused = [a for a in answers if a.status_code == 409]
            assert len(accepted) == 2, [(a.status_code, a.text) for a in answers]
            assert len(refused) == len(answers) - 2 and all(a.json()["error"] == "wip_limit" for a in refused)
            after = (await http.get(f"/api/projects/{px}/tasks")).json()["items"]
            assert sum(1 for t in after if t["status_id"] == review) == 2


async def test_a_wip_limit_holds_against_simultaneous_writers_on_sqlite(
    database: tuple[str, Workspace], tmp_path: Path
) -> None:
    await racing_into_a_limited_status(database[0], database[1], tmp_path)


@pytest.mark.postgres
async def test_a_wip_limit_holds_against_simultaneous_writers_on_postgresql(
    pg_database: tuple[str, Workspace], tmp_path: Path
) -> None:
    await racing_into_a_limited_status(pg_database[0], pg_database[1], tmp_path)
