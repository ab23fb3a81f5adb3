"""Real Tandem nodes for tests: uvicorn processes on free ports (forked from a zygote that imported Tandem once,
`tests/node_zygote.py`), and throwaway Redis servers.

Every wait has a deadline. Nodes are killed (SIGKILL) or stopped (SIGTERM) like in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from channels.client import TandemClient
from tests.workspace import Workspace, seed_database

ROOT = Path(__file__).resolve().parent.parent
SECRET = "node-test-secret-" + "s" * 32


def _die_with_parent() -> None:
    """Runs in the child before exec: if the test process dies (even by SIGKILL), so does the child."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def bearer(token: str) -> dict[str, str]:
    """The handshake header a script authenticates a WebSocket with (tokens never go in the URL)."""
    return {"Authorization": f"Bearer {token}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listens(port: int) -> bool:
    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()  # OSError while nothing listens
    return True


def wait_until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except (OSError, httpx.TransportError):
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{what} within {timeout}s")


class ForkedProcess:
    """A node forked by the zygote (`tests/node_zygote.py`), driven like the `subprocess.Popen` it replaces.

    The zygote, not this process, is its parent: it reaps the node and writes its exit status (``returncode``'s
    meaning: -N for signal N) to ``status``, which appears once the node has exited.
    """

    def __init__(self, pid: int, status: Path) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._status = status

    def poll(self) -> int | None:
        if self.returncode is None:
            with contextlib.suppress(FileNotFoundError):
                self.returncode = int(self._status.read_text())
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        deadline = time.monotonic() + (timeout if timeout is not None else 3600)
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"node {self.pid}", timeout or 0)
            time.sleep(0.01)
        assert self.returncode is not None
        return self.returncode


class _Zygote:
    """This pytest worker's `tests/node_zygote.py` process, started at the first node (``TANDEM_TEST_NODE_FORK=0``
    starts every node as its own ``python -m uvicorn`` process instead)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None

    def fork(self, argv: list[str], env: dict[str, str], log: Path, timeout: float = 60) -> ForkedProcess:
        with self._lock:
            process = self._process
            if process is None or process.poll() is not None:
                process = self._process = self._start(timeout)
            assert process.stdin is not None and process.stdout is not None
            status = log.with_name(f"{log.name}.{uuid.uuid4().hex}.exit")
            request = {"argv": argv, "env": env, "cwd": str(ROOT), "log": str(log), "status": str(status)}
            process.stdin.write(json.dumps(request) + "\n")
            process.stdin.flush()
            return ForkedProcess(int(self._answer(process, timeout)["pid"]), status)

    @staticmethod
    def _start(timeout: float) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.node_zygote"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=_die_with_parent,
        )
        assert _Zygote._answer(process, timeout).get("ready"), "the node zygote did not start"
        return process

    @staticmethod
    def _answer(process: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], timeout)
        line = process.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(f"the node zygote did not answer within {timeout} s (exit status {process.poll()})")
        answer: dict[str, Any] = json.loads(line)
        return answer


_zygote = _Zygote()
FORK_NODES = os.environ.get("TANDEM_TEST_NODE_FORK", "1") != "0"


@dataclass
class Node:
    """One uvicorn process serving Tandem (forked from this worker's zygote, or a process of its own)."""

    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | ForkedProcess | None = None
    log_path: Path | None = None
    log_level: str = "warning"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self, timeout: float = 60) -> Node:
        assert self.log_path is not None
        argv = [
            "--factory",
            "server.main:create",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--ws-per-message-deflate",
            "false",
            "--ws-max-size",
            "1048576",
            "--log-level",
            self.log_level,
        ]
        # Each node is reached directly, so its own address is the origin browsers come from.
        env = {**os.environ, "TANDEM_BASE_URL": self.http, **self.env, "PYTHONPATH": str(ROOT)}
        if FORK_NODES:
            self.process = _zygote.fork(argv, env, self.log_path)
        else:
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "uvicorn", *argv],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=log,
                    preexec_fn=_die_with_parent,
                )
        wait_until(
            lambda: httpx.get(self.http + "/healthz", timeout=1).status_code == 200,
            timeout,
            f"node on port {self.port} answers",
        )
        return self

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""


@dataclass
class RedisServer:
    """A throwaway redis-server on a free port, with an append-only file so a restart keeps its data."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    cluster: bool = False
    bus_port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed (.ci/run installs it)"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.directory),
                # The cluster bus gets its own free port (the default, port + 10000, may be taken or above 65535).
                *(self._cluster_options() if self.cluster else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        wait_until(lambda: _listens(self.port), 10, "redis-server listens")
        return self

    def _cluster_options(self) -> list[str]:
        return [
            *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port", str(self.bus_port)),
            # Fail over within seconds, and let replicas sync at once (diskless sync waits 5 s by default).
            *("--cluster-node-timeout", "1000", "--repl-diskless-sync-delay", "0"),
        ]

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@dataclass
class RedisShards:
    """A throwaway Redis Cluster: ``count`` primaries, each with ``replicas`` replicas, on free loopback ports, each
    server in its own directory.

    ``start`` creates the cluster with ``redis-cli --cluster create`` and waits for ``cluster_state:ok`` on every
    node and for every replica's link to its primary; ``stop`` terminates the processes (the caller owns
    ``directory``). Nodes time out after one second, so a replica takes over from a dead primary within seconds.
    """

    directory: Path
    count: int = 3
    replicas: int = 0
    servers: list[RedisServer] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.servers[0].port}"

    def start(self, timeout: float = 30) -> RedisShards:
        for i in range(self.count * (1 + self.replicas)):
            folder = self.directory / f"node{i}"
            folder.mkdir(parents=True, exist_ok=True)
            self.servers.append(RedisServer(folder, cluster=True))
            self.servers[-1].start()
        cli = shutil.which("redis-cli")
        assert cli, "redis-cli is not installed (.ci/run installs redis-server, which brings it)"
        addresses = [f"127.0.0.1:{server.port}" for server in self.servers]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        for server in self.servers:
            wait_until(lambda port=server.port: _cluster_ok(cli, port), timeout, f"cluster_state:ok on {server.port}")
            wait_until(lambda port=server.port: _replication_ok(cli, port), timeout, f"replica {server.port} in sync")
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def _replication_ok(cli: str, port: int) -> bool:
    info = subprocess.run(
        [cli, "-h", "127.0.0.1", "-p", str(port), "info", "replication"], capture_output=True, text=True, timeout=5
    ).stdout
    return "role:master" in info or "master_link_status:up" in info


def _cluster_ok(cli: str, port: int) -> bool:
    info = subprocess.run(
        [cli, "-h", "127.0.0.1", "-p", str(port), "cluster", "info"], capture_output=True, text=True, timeout=5
    ).stdout
    # Every node must also know all shards, or a client seeded from it would see a partial slot map.
    return "cluster_state:ok" in info and "cluster_slots_assigned:16384" in info


@contextmanager
def cluster(
    tmp: Path, database_url: str, redis_url: str | None, count: int = 2, extra_env: dict[str, str] | None = None
) -> Iterator[list[Node]]:
    """``count`` nodes sharing one database and (optionally) one Redis, with a prefix unique to this test;
    ``extra_env`` adds settings (``TANDEM_*`` variables)."""
    env = {
        "TANDEM_DATABASE_URL": database_url,
        "TANDEM_SECRET_KEY": SECRET,
        "TANDEM_DATA_DIR": str(tmp),
        "TANDEM_AUTO_MIGRATE": "false",
        "TANDEM_REDIS_PREFIX": f"test:{uuid.uuid4().hex}:",
        **(extra_env or {}),
    }
    if redis_url:
        env["TANDEM_REDIS_URL"] = redis_url
    nodes = [Node(env=dict(env), log_path=tmp / f"node{i}.log") for i in range(count)]
    try:
        for node in nodes:
            node.start()
        yield nodes
    finally:
        for node in nodes:
            node.kill()


@contextmanager
def seeded_node(folder: Path) -> Iterator[tuple[Node, Workspace]]:
    """One node on a freshly seeded SQLite workspace of its own in ``folder``, with sign-in and API limits off: for
    fuzzers and state machines that send thousands of requests from one address."""
    url = f"sqlite:///{folder / 'tandem.db'}"
    ws = seed_database(url)
    unthrottled = {
        "TANDEM_LOGIN_ATTEMPTS_PER_MINUTE": "100000",
        "TANDEM_API_REQUESTS_PER_MINUTE_PER_IP": "0",
        "TANDEM_API_REQUESTS_PER_MINUTE_PER_USER": "0",
        "TANDEM_API_WRITES_PER_MINUTE_PER_USER": "0",
    }
    with cluster(folder, url, None, count=1, extra_env=unthrottled) as (node,):
        yield node, ws


class Api:
    """A REST client for one node, signed in as one role of the test workspace."""

    def __init__(self, node: Node, ws: Workspace, role: str) -> None:
        self.client = httpx.AsyncClient(
            base_url=node.http, headers={"authorization": f"Bearer {ws.token(role)}"}, timeout=10
        )

    async def patch_task(self, task_id: int, **fields: Any) -> dict[str, Any]:
        response = await self.client.patch(f"/api/tasks/{task_id}", json=fields)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        await self.client.aclose()


async def connect(opened: list[TandemClient], node: Node, ws: Workspace, role: str) -> TandemClient:
    """A hub client on ``node`` as ``role``; closed by the ``clients`` fixture."""
    client = await TandemClient.connect(node.ws, token=ws.token(role), ping_interval=None)
    opened.append(client)
    return client


async def next_data(client: TandemClient, timeout: float = 5.0) -> dict[str, Any]:
    """The ``data`` of the client's next pushed frame, which must be an event."""
    frame = await client.next_event(timeout)
    assert frame["type"] == "event", frame
    return frame["data"]  # type: ignore[no-any-return]


def loop_passes(node: Node, loop: str) -> float:
    """Finished passes of a node's background loop (channels.loops), successful or not, from its /metrics."""
    text = httpx.get(node.http + "/metrics", timeout=10).text
    pattern = re.compile(r'^tandem_loop_passes_total\{loop="' + re.escape(loop) + r'",outcome="\w+"\} (\S+)$', re.M)
    return sum(float(value) for value in pattern.findall(text))


async def wait_for_passes(node: Node, loop: str, more: int, timeout: float = 20.0) -> None:
    """Wait until a node's background loop has finished ``more`` passes beyond those done now (its sweeps, say),
    rather than sleeping for a time the passes may or may not fit in on a loaded machine."""
    target = await asyncio.to_thread(loop_passes, node, loop) + more
    async with asyncio.timeout(timeout):
        while await asyncio.to_thread(loop_passes, node, loop) < target:
            await asyncio.sleep(0.05)
