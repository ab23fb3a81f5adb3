"""How fast a project's first screen appears in a real browser, with 500 tasks on the board.

Method: one Tandem node (SQLite, memory broker) on core 0; Debian's Chromium driven by Playwright on core 1. A
staff user signs in once; then, per run, a fresh page navigates to ``/projects/{id}`` and we take the time from
navigation start to the moment every card of the board is in the DOM (``performance.now()`` inside the page when
the last card appears, read through a MutationObserver set before navigation). The baseline, in the same run, is
the same page for a project with no tasks, so the ratio isolates what the 500 cards cost.

Usage: ``.venv/bin/python -m bench.board_load [--tasks 500] [--runs 15]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
from pathlib import Path

import httpx
from playwright.async_api import async_playwright

from server import migrate
from server.db import Database
from tests.nodes import Node
from tests.workspace import PASSWORD, build_workspace

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Runs in the page before any of its scripts: resolves when `expected` cards exist.
WATCH = """
window.__boardReady = new Promise((resolve) => {
  const expected = Number(sessionStorage.getItem("expected") || "0");
  const check = () => {
    const board = document.querySelector(".board");
    if (!board || document.querySelectorAll(".board .card").length < expected) return false;
    resolve(performance.now());
    return true;
  };
  const observer = new MutationObserver(() => { if (check()) observer.disconnect(); });
  document.addEventListener("DOMContentLoaded", () => {
    observer.observe(document.body, {childList: true, subtree: true});
    if (check()) observer.disconnect();
  });
});
"""


async def seed(url: str, tasks: int) -> tuple[int, int, str]:
    db = Database(url)
    try:
        ws = await build_workspace(db)
    finally:
        await db.close()
    token = ws.token("owner")
    return ws.ids["px"], ws.ids["client_x"], token


async def measure(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="tandem-board-"))
    url = f"sqlite:///{folder / 'tandem.db'}"
    migrate.upgrade(url)
    project, client_id, token = await seed(url, args.tasks)
    env = {
        "TANDEM_DATABASE_URL": url,
        "TANDEM_DATA_DIR": str(folder),
        "TANDEM_SECRET_KEY": "b" * 40,
        "TANDEM_AUTO_MIGRATE": "false",
    }
    node = Node(env=env, log_path=folder / "node.log").start()
    os.sched_setaffinity(node.process.pid, {0})  # type: ignore[union-attr]
    os.sched_setaffinity(0, {1})
    try:
        headers = {"authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=node.http, headers=headers, timeout=30) as http:
            empty = (await http.post("/api/projects", json={"name": "Empty", "client_id": client_id})).json()["id"]
            # Start from a board of exactly `tasks` cards: PX has 3 seeded tasks.
            for i in range(args.tasks - 3):
                await http.post(
                    f"/api/projects/{project}/tasks",
                    json={
                        "title": f"Task number {i} with a realistic title",
                        "visibility": "shared",
                        "due_date": f"2027-0{1 + i % 9}-1{i % 9}",
                    },
                )
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            context = await browser.new_context(viewport={"width": 1280, "height": 800})
            await context.add_init_script(WATCH)
            page = await context.new_page()
            await page.goto(node.http + "/")
            await page.fill("#email", "owner@example.test")
            await page.fill("#password", PASSWORD)
            await page.click("form button[type=submit]")
            await page.wait_for_selector(".projects")
            results: dict[str, list[float]] = {"500 tasks": [], "empty (baseline)": []}
            for _ in range(args.runs):
                for name, target, expected in (("500 tasks", project, args.tasks), ("empty (baseline)", empty, 0)):
                    await page.evaluate(f"sessionStorage.setItem('expected', '{expected}')")
                    await page.goto(f"{node.http}/projects/{target}")
                    results[name].append(float(await page.evaluate("window.__boardReady")))
            await browser.close()
    finally:
        node.kill()
    base = statistics.median(results["empty (baseline)"])
    print("| board | median ms | p90 ms | ratio to empty |\n|---|---|---|---|")
    for name, values in results.items():
        values.sort()
        p90 = values[int(0.9 * (len(values) - 1))]
        print(f"| {name} | {statistics.median(values):.0f} | {p90:.0f} | {statistics.median(values) / base:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--runs", type=int, default=15)
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
