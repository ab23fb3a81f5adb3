"""CPU per task PATCH on SQLite with two async drivers, interleaved.

    .venv/bin/python -m bench.sqlite_patch --drivers sqlite+aiosqlite,sqlite+tandem [--rounds 6] [--patches 150]

Each driver is a SQLAlchemy driver name for ``sqlite://`` URLs (``sqlite+tandem`` is the private-API driver that
was server/sqlite_async.py: run this at commit ``aad613c`` to compare it; bench/README.md has that run). One
seeded workspace (as the tests build it); each round builds the app once per driver, in alternating order, and
times ``--patches`` PATCHes of one task's title as staff through the ASGI app in process (httpx's ASGI transport,
no sockets): process CPU time per PATCH, the app's work and the driver's threads included. Interleaved so a slow
spell of a shared machine falls on both drivers alike; the ratio per round is printed, then their median.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

import server.db
from server.app import create_app
from tests.conftest import make_settings
from tests.workspace import Workspace, seed_database


def with_driver(driver: str) -> None:
    """Point ``server.db.async_url`` at ``driver`` for SQLite URLs (the app reads it when it builds its engine)."""
    original = getattr(server.db.async_url, "__wrapped__", server.db.async_url)

    def async_url(url: str) -> str:
        rendered = original(url)
        return rendered.replace("sqlite+aiosqlite", driver, 1) if rendered.startswith("sqlite+aiosqlite") else rendered

    async_url.__wrapped__ = original  # type: ignore[attr-defined]
    server.db.async_url = async_url


async def cpu_per_patch(template: Path, ws: Workspace, driver: str, patches: int, folder: Path) -> float:
    shutil.copy(template, folder / "tandem.db")
    with_driver(driver)
    settings = make_settings(folder)
    app = create_app(settings)
    task = ws.ids["px_shared_task"]
    headers = {"authorization": f"Bearer {ws.token('staff')}"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            for i in range(10):  # warm: caches, the pool, the statement cache
                assert (await client.patch(f"/api/tasks/{task}", json={"title": f"w{i}"}, headers=headers)).is_success
            start = time.process_time()
            for i in range(patches):
                answer = await client.patch(f"/api/tasks/{task}", json={"title": f"t{i}"}, headers=headers)
                assert answer.status_code == 200, answer.text
            return (time.process_time() - start) / patches


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--drivers", default="sqlite+aiosqlite,sqlite+aiosqlite", help="two, comma-separated")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--patches", type=int, default=150)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "template").mkdir()
        template = root / "template" / "tandem.db"
        ws = seed_database(f"sqlite:///{template}")
        a, b = args.drivers.split(",")
        ratios = []
        for n in range(args.rounds):
            cpu: dict[str, float] = {}
            for i, driver in enumerate([a, b] if n % 2 == 0 else [b, a]):
                folder = root / f"{n}-{i}"
                folder.mkdir()
                cpu[driver] = asyncio.run(cpu_per_patch(template, ws, driver, args.patches, folder))
            ratios.append(cpu[a] / cpu[b])
            print(
                f"round {n + 1}: {a} {cpu[a] * 1000:.2f} ms, {b} {cpu[b] * 1000:.2f} ms CPU per PATCH,"
                f" ratio {ratios[-1]:.2f}",
                flush=True,
            )
        print(
            f"median {a} / {b} over {args.rounds} rounds: {statistics.median(ratios):.2f}"
            f" (min {min(ratios):.2f}, max {max(ratios):.2f})"
        )
    sys.exit(0)


if __name__ == "__main__":
    main()
