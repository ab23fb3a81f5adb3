"""The README's run command, started in a fresh copy of the repository, serves `/` and lets the demo customer in."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> tuple[str, str]:
    """The two commands of the README's first code block: (run, test)."""
    block = re.search(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "the README opens with a code block of commands"
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert len(commands) == 2, commands
    return commands[0], commands[1]


def test_ci_runs_the_readme_test_command() -> None:
    _, test_command = readme_commands()
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert lines[-1] == test_command


def fresh_copy(target: Path) -> None:
    """What a clone of the current tree would hold: tracked and new files, none that git ignores."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_command_serves_the_demo(tmp_path: Path) -> None:
    run_command, _ = readme_commands()
    assert run_command == "make run"
    clone = tmp_path / "clone"
    fresh_copy(clone)
    venv = Path(sys.prefix)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    # Reuse this test run's virtualenv (treated as installed) but import the copy's code.
    env.update(PORT=str(port), PYTHONPATH=str(clone))
    process = subprocess.Popen(
        ["make", "run", f"VENV={venv}", "-o", f"{venv}/.installed"],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        page = None
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(process.stdout.read().decode() if process.stdout else "exited")
            try:
                page = httpx.get(base + "/", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.3)
        assert page is not None, "the server did not answer within 180 s"
        assert page.status_code == 200 and '<div id="app"' in page.text
        script = re.search(r'src="(/assets/[^"]+\.js)"', page.text)
        assert script and httpx.get(base + script.group(1), timeout=5).status_code == 200
        login = httpx.post(
            base + "/api/auth/login", json={"email": "anna@acme.test", "password": "northwind-demo-2026"}, timeout=10
        )
        assert login.status_code == 200, login.text
        projects = httpx.get(
            base + "/api/projects", headers={"authorization": f"Bearer {login.json()['token']}"}, timeout=10
        ).json()["items"]
        assert {p["name"] for p in projects} == {"Website relaunch", "Mobile app"}
    finally:
        try:
            with contextlib.suppress(ProcessLookupError):  # it may have exited already
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        finally:
            if process.stdout:
                process.stdout.close()
