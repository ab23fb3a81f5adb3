"""Onboarding cost: clicks and seconds from the owner's "Invite" to the customer seeing the project's board.

Run ``python -m bench.onboarding [--runs 3]`` after building the web client (``make web``). Results and their
reading are in ``bench/README.md`` (section "Onboarding").

It runs the journey of ``tests/e2e/test_onboarding.py`` (the same code) in Debian's chromium against one Tandem node
on a fresh seeded SQLite workspace: the owner signs in, makes a client and a project from a workflow template in the
"New project" dialog, and invites a customer by email; the customer opens the link in a fresh browser context, sets
a name and a password, and lands on the board. Counted are the presses (clicks) from "Invite" on, by both people,
and the wall-clock seconds from "Invite" until the board's template column is visible to the customer. Typing is
not counted as clicks (the invitation email, the customer's name and password are typed once in any design).

Two ways the link travels, each at two widths: ``copied`` (no SMTP: the link is shown to the owner, who presses
"Copy link"; the bench reads the clipboard as the person would paste it) and ``mailed`` (a real SMTP server,
aiosmtpd, on localhost; the bench reads the link from the received message as the person would click it).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

from aiosmtpd.controller import Controller
from playwright.async_api import async_playwright

from tests.e2e.test_onboarding import Inbox, mail_env, onboard
from tests.e2e.test_portal import CHROMIUM, CHROMIUM_ARGS, ROOT
from tests.nodes import cluster, free_port
from tests.workspace import Workspace, seed_database

SIZES = ((390, 844, "sv-SE"), (1280, 800, "en-GB"))


async def measure(tmp: str, database: str, ws: Workspace, runs: int) -> list[tuple[str, int, list[int], list[float]]]:
    rows: list[tuple[str, int, list[int], list[float]]] = []
    inbox = Inbox()
    port = free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for mode, env in (("copied", None), ("mailed", mail_env(port))):
                (Path(tmp) / mode).mkdir()
                with cluster(Path(tmp) / mode, database, None, count=1, extra_env=env) as (node,):
                    for width, height, locale in SIZES:
                        clicks: list[int] = []
                        seconds: list[float] = []
                        for run in range(runs):
                            tag = f"{mode}{width}r{run}"
                            journey = await onboard(
                                browser,
                                node,
                                ws,
                                width=width,
                                height=height,
                                locale=locale,
                                inbox=inbox if mode == "mailed" else None,
                                names=(f"Client {tag}", f"Project {tag}", f"customer.{tag}@example.com"),
                            )
                            clicks.append(journey.clicks)
                            seconds.append(journey.seconds)
                            done = f"{journey.clicks} clicks, {journey.seconds:.2f} s"
                            print(f"  {mode:6} {width:4}px run {run + 1}: {done}")
                        rows.append((mode, width, clicks, seconds))
            await browser.close()
    finally:
        smtp.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="journeys per link route and width")
    args = parser.parse_args()
    assert (ROOT / "web" / "dist" / "index.html").exists(), "build the web client first (make web)"
    (ROOT / "tests" / "artifacts").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tandem-onboarding-") as tmp:
        database = f"sqlite:///{Path(tmp) / 'tandem.db'}"
        ws = seed_database(database)  # before the event loop: it runs its own
        rows = asyncio.run(measure(tmp, database, ws, args.runs))
    print()
    print("| link | width | clicks | seconds, median (min-max) |")
    print("|---|---|---|---|")
    for mode, width, clicks, seconds in rows:
        spread = f"{statistics.median(seconds):.2f} ({min(seconds):.2f}-{max(seconds):.2f})"
        print(f"| {mode} | {width} px | {'/'.join(str(c) for c in sorted(set(clicks)))} | {spread} |")


if __name__ == "__main__":
    main()
