"""``uvicorn --workers N``: several processes behind one port, sharing Redis.

Each worker has its own hub, so events cross workers only through the broker; the in-memory broker cannot span
processes, which ``tandem serve`` refuses. Workers starting together on an empty database with auto-migration
migrate it once, one after the other. Which worker holds a socket is read from ``/proc`` (the worker process whose
file descriptors include the server end of that TCP connection), so nothing in the server exposes its PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from channels.client import TandemClient
from tests.conftest import REDIS
from tests.nodes import ROOT, SECRET, _die_with_parent, free_port, next_data, wait_until
from tests.test_settings_and_cli import tandem
from tests.workspace import Workspace, seed_database


def _workers(pid: int) -> list[int]:
    """uvicorn's worker processes (multiprocessing children running ``spawn_main``; not its resource tracker)."""
    with open(f"/proc/{pid}/task/{pid}/children") as handle:
        children = [int(child) for child in handle.read().split()]
    found = []
    for child in children:
        with contextlib.suppress(OSError), open(f"/proc/{child}/cmdline", "rb") as cmdline:
            if b"spawn_main" in cmdline.read():
                found.append(child)
    return found


def _socket_inode(server_port: int, client_port: int) -> int | None:
    """The inode of the server's end of the loopback TCP connection from ``client_port``."""
    with open("/proc/net/tcp") as handle:
        next(handle)
        for line in handle:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], int(fields[9])
            if local.endswith(f":{server_port:04X}") and remote.endswith(f":{client_port:04X}"):
                return inode
    return None


def _holder(workers: list[int], server_port: int, client_port: int) -> int:
    """The worker PID holding the server end of the connection from ``client_port``."""
    inode = _socket_inode(server_port, client_port)
    assert inode, "the connection is not in /proc/net/tcp"
    target = f"socket:[{inode}]"
    for pid in workers:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return pid
            except OSError:
                continue
    raise AssertionError(f"no worker holds {target}")


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, str]]:
    """``uvicorn --factory server.main:create --workers 2`` on an empty SQLite database, auto-migrating, with Redis."""
    port = free_port()
    url = f"sqlite:///{tmp_path / 'tandem.db'}"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TANDEM_DATABASE_URL": url,
        "TANDEM_SECRET_KEY": SECRET,
        "TANDEM_DATA_DIR": str(tmp_path),
        "TANDEM_AUTO_MIGRATE": "true",
        "TANDEM_REDIS_URL": REDIS,
        "TANDEM_REDIS_PREFIX": f"test:{uuid.uuid4().hex}:",
        "TANDEM_BASE_URL": f"http://127.0.0.1:{port}",
    }
    log = (tmp_path / "workers.log").open("wb")
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "--factory", "server.main:create", "--workers", "2"),
            *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
        preexec_fn=_die_with_parent,
    )
    log.close()
    try:
        wait_until(lambda: len(_workers(process.pid)) >= 2, 30, "two workers started")
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200, 60, "ready")
        yield process, port, url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


async def test_an_event_made_through_one_worker_reaches_sockets_on_the_other(
    two_workers: tuple[subprocess.Popen[bytes], int, str], tmp_path: Path
) -> None:
    process, port, url = two_workers
    workers = _workers(process.pid)
    assert len(workers) == 2
    log = (tmp_path / "workers.log").read_text(errors="replace")
    # Both workers ran the auto-migration on the same empty file at once; the lock made the second a no-op.
    assert "Traceback" not in log and "already exists" not in log, log
    ws: Workspace = await asyncio.to_thread(seed_database, url)  # at head already: only the workspace is added

    # Open sockets until both workers hold some (the kernel hands each accept to whichever worker is waiting).
    by_worker: dict[int, TandemClient] = {}
    opened: list[TandemClient] = []
    px = ws.ids["px"]
    try:
        for _ in range(40):
            client = await TandemClient.connect(f"ws://127.0.0.1:{port}/ws", token=ws.token("customer"))
            opened.append(client)
            assert client._ws is not None
            local_port = client._ws.local_address[1]
            by_worker.setdefault(_holder(workers, port, local_port), client)
            if len(by_worker) == 2:
                break
        assert len(by_worker) == 2, "all 40 sockets landed on one worker"
        for client in by_worker.values():
            await client.subscribe(f"project:{px}:shared")

        # One PATCH, through whichever worker takes it: both sockets, on both workers, get the event.
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as api:
            response = await api.patch(
                f"/api/tasks/{ws.ids['px_shared_task']}",
                json={"title": "moved by one worker"},
                headers={"authorization": f"Bearer {ws.token('staff')}"},
            )
            assert response.status_code == 200, response.text
        for client in by_worker.values():
            event = await next_data(client, timeout=10)
            assert event["type"] == "task.updated" and event["task"]["title"] == "moved by one worker"
    finally:
        for client in opened:
            await client.close()


def test_serve_refuses_several_workers_without_redis(tmp_path: Path) -> None:
    result = tandem("serve", "--workers", "2", "--port", str(free_port()), env={"TANDEM_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "TANDEM_REDIS_URL" in result.stderr


def test_the_test_helpers_find_connections(tmp_path: Path) -> None:
    # The /proc lookup the worker test relies on, checked against a socket this process holds itself.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname()) as client:
            accepted, _ = server.accept()
            with accepted:
                pid = _holder([os.getpid()], server.getsockname()[1], client.getsockname()[1])
    assert pid == os.getpid()
