"""The browser every browser test uses: Debian's chromium, started once per pytest worker as a Playwright browser
server, and reached by each test over Playwright's own protocol (full fidelity, unlike a CDP attach).

Launching chromium cost each test about 0.6 s of CPU; the suite has over a hundred such tests on two cores. Tests
stay apart as before: each works in contexts of its own, and a test's contexts are closed when it disconnects.
"""

from __future__ import annotations

import json
import select
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO

import pytest
from playwright._impl._driver import compute_driver_executable
from playwright.async_api import Browser, async_playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class BrowserServer:
    """``playwright launch-server`` (the driver bundled with the Python package, so client and server speak the same
    protocol version) running chromium; `endpoint` is the address a client connects to."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.process: subprocess.Popen[str] | None = None
        self.log: IO[str] | None = None
        self.endpoint = ""

    def start(self, timeout: float = 30) -> None:
        config = self.folder / "browser-server.json"
        config.write_text(json.dumps({"executablePath": CHROMIUM, "args": CHROMIUM_ARGS, "headless": True}))
        node, cli = compute_driver_executable()
        self.stop()
        self.log = (self.folder / "browser-server.log").open("a")
        self.process = subprocess.Popen(
            [node, cli, "launch-server", "--browser", "chromium", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        # The server prints its endpoint on one line once chromium is up; a server that dies closes stdout.
        while (remaining := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.process.stdout], [], [], remaining)
            if not ready:
                break
            line = self.process.stdout.readline()
            if not line:
                self.stop()
                log = (self.folder / "browser-server.log").read_text()[-2000:]
                raise AssertionError(f"the browser server exited: {log}")
            if line.startswith("ws://"):
                self.endpoint = line.strip()
                return
        self.stop()
        raise AssertionError(f"the browser server printed no endpoint within {timeout}s")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            assert self.process.stdout is not None
            self.process.stdout.close()
            self.process = None
        if self.log is not None:
            self.log.close()
            self.log = None


@pytest.fixture(scope="session")
def browser_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserServer]:
    assert (ROOT / "web" / "dist" / "index.html").exists(), "build the web client first (make web)"
    assert Path(CHROMIUM).exists(), "chromium is not installed (.ci/run installs it)"
    server = BrowserServer(tmp_path_factory.mktemp("browser"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def browser(browser_server: BrowserServer) -> AsyncIterator[Browser]:
    """This test's connection to the worker's chromium (started again if an earlier test took it down)."""
    if not browser_server.alive():
        browser_server.start()
    async with async_playwright() as playwright:
        connected = await playwright.chromium.connect(browser_server.endpoint)
        yield connected
        await connected.close()
