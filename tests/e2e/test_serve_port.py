"""`tandem serve --port P` serves a page whose own WebSocket is allowed: the base URL follows the flags."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from server.demo import DEMO_PASSWORD
from tests.nodes import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]


def _environment(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_") and k != "PORT"}
    env.update(TANDEM_DATA_DIR=str(data_dir), TANDEM_WEBHOOK_WORKER="off")
    return env


@pytest.fixture
def served_with_port(tmp_path: Path) -> Iterator[str]:
    """A demo workspace served by `tandem serve --port P` (no TANDEM_PORT, PORT or TANDEM_BASE_URL): its URL."""
    env = _environment(tmp_path)
    seeded = subprocess.run(
        [sys.executable, "-m", "server.cli", "demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert seeded.returncode == 0, seeded.stderr
    port = free_port()
    with (tmp_path / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: httpx.get(base + "/healthz", timeout=1).status_code == 200, 60, "the node answers")
            yield base
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)


async def test_a_node_started_with_port_accepts_its_own_pages_socket(
    browser: Browser,
    served_with_port: str,
) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB")
    page = await context.new_page()
    await page.goto(served_with_port + "/")
    await page.fill("#email", "anna@acme.test")
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("form button[type=submit]")
    await page.wait_for_selector(".projects")
    # Before the fix the base URL stayed at port 8000 and the hub refused this origin (4403, "disconnected").
    await expect(page.locator("#hub-connection")).to_have_attribute("data-connection", "live", timeout=10_000)
    await context.close()
