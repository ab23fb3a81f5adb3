"""Fan-out benchmark: N WebSocket subscribers on one board channel, Tandem's hub against a bare `websockets` floor.

Run ``python -m bench.fanout --help``. Results and their reading are in ``bench/README.md``.

What runs (all on this machine, every step under a deadline):

- **Targets.** ``memory``: one Tandem node (uvicorn, ``server.main:create``, memory broker). ``redis``: two nodes
  sharing a throwaway ``redis-server`` and one SQLite file; half the subscribers on each node, events published
  through node A. ``redis-pg`` (not in the defaults): the same on a throwaway database on the machine's PostgreSQL
  (127.0.0.1:5432, trust auth), the layout several nodes are deployed in; PostgreSQL is pinned to the server core
  while the benchmark runs and its CPU is reported beside redis-server's.
  ``baseline``: a bare ``websockets`` asyncio server in its own process (``--serve-baseline``) that answers the same
  subscribe/ping frames and sends every event with ``websockets.broadcast`` (compression off) — the floor for
  "one Python process pushing the same frames to the same sockets".
- **Publishing.** Tandem events go through the real path: ``PATCH /api/tasks/{id}`` as staff on a fresh seeded SQLite
  workspace; the handler writes the event to the outbox, the relay publishes it through the hub after the commit,
  and the hub fans it out on ``project:{px}:shared``. The baseline gets one control message per event (over a
  separate WebSocket), stamps the time, and broadcasts an event frame of the same shape and size as Tandem's.
  ``paced``: 20 events/s for ``--paced-seconds``. ``burst``: ``--burst-events`` as fast as the publisher goes (Tandem:
  4 concurrent PATCH loops on 4 shared tasks; baseline: control messages back to back).
- **Subscribers.** A load-generator process per target (``bench/wsload.py``) holds its N sockets in one
  non-blocking epoll loop with a minimal frame reader (the general ``websockets`` client would set the pace). It
  sends the subscribe frame, splits coalesced messages on ``"\\n"``, stamps each event with the wall-clock time its
  bytes were read, answers protocol pings, and sends ``{"type":"ping"}`` on each socket every 30 s (the hub closes
  idle sockets after 90 s).
- **Cores.** With two or more cores the servers (nodes, redis-server, baseline) are pinned to core 0 and the
  controller and load generators to core 1 (``os.sched_setaffinity``), so client work does not steal server CPU.
- **Interleaving.** All targets are up and connected at once; each phase runs in rounds (``--rounds`` paced,
  ``--burst-rounds`` burst), and within a round the targets take turns, in alternating order. A slow spell of the
  machine (this is a shared VM: the same run has measured 1.0x and 2.2x back to back when targets ran one after the
  other) then falls on every target alike. Latencies are pooled over the rounds before percentiles are taken.

Before each phase the load generator waits until the previous one drained (no event for 1 s, bounded), and events
are numbered by the title each publish sets ("bench <n>"), so late events of an earlier phase are not counted.

What is measured, per target, size N and phase:

- **delivery latency** p50/p99: receive time minus the event's ``ts``, the time the broker accepted the
  publication (docs/PROTOCOL.md); the baseline stamps the same field just before ``broadcast``. This is the hub's
  own delivery (broker, fan-out, socket writes, the client reading), the same span as the floor's.
- **change→socket** p50/p99: receive time minus the task's ``updated_at``, set by the PATCH handler before its
  version bump, serialization, outbox rows and commit: adds the rest of the request and the outbox hand-over (for
  the baseline it equals delivery).
- **end-to-end** p50/p99: receive time minus the time the controller wrote the PATCH's bytes (baseline: its control
  message).
- **spread** p99: receive time minus the first receive of the same event: how long one event takes to reach all N,
  independent of the publish path.
- **arrival**: delivery and end-to-end again, ending when the kernel queued the bytes on the subscriber's socket
  (``SO_TIMESTAMPNS``) instead of when the load generator read them. One generator reads N sockets in turn, so the
  read-time figures of the last sockets include reading all the others, which no real subscriber waits for; the
  arrival figures keep everything the server did (``bench/wsload.py``).
- **deliveries/s**: events received over all sockets / (last receive - first publish).
- **server CPU per delivery** (µs): utime+stime from ``/proc/<pid>/stat`` of the server process(es) across the phase,
  divided by deliveries; "net" subtracts the publish path's cost, measured per event with 0 subscribers.
- **RSS per connection** (KB): VmRSS of the server process(es) with N idle subscribed sockets minus VmRSS with none,
  divided by N.
- **client CPU**: the load generator's CPU use during the phase; near 100 % means the client, not the server, set
  the pace and the latencies are an upper bound.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as PipeEnd
from pathlib import Path
from typing import Any

from bench.wsload import (
    CLIENT_CORE,
    SERVER_CORE,
    Client,
    EpollClients,
    LoadGenClient,
    cpu_seconds,
    free_port,
    node_settings,
    percentile,
    pin,
    raise_fd_limit,
    rss_kb,
    wait_for_port,
)

ROOT = Path(__file__).resolve().parent.parent
PACED_RATE = 20.0
BURST_WORKERS = 4
WARMUP_EVENTS = 40
PUBLISH_COST_EVENTS = 120
PING_EVERY = 30.0
PUBLISH_GRACE = 45.0  # seconds a phase may spend publishing beyond its schedule
# The task title each publish sets ("bench <n>", unique per run): identifies one event across processes. Not the
# task version: concurrent PATCHes of one task can return the same version (see bench/README.md).
Key = str


# The latencies kept per delivery (see `LoadGenerator.collect`); the "_at" ones end when the kernel queued the bytes
# on the subscriber's socket instead of when the load generator read them (`bench/wsload.py`).
RAW = ("fanout", "change", "e2e", "spread", "fanout_at", "e2e_at")


def summarize(client: dict[str, Any]) -> dict[str, Any]:
    """Add the derived figures (rate, percentiles, client CPU share) to one phase's counts and raw latencies."""
    raw = client["raw"]
    fanout, change, e2e, spread, fanout_at, e2e_at = (sorted(raw[k]) for k in RAW)
    client.update(
        rate=client["deliveries"] / client["active"],
        fanout=(percentile(fanout, 0.5), percentile(fanout, 0.99)),
        change=(percentile(change, 0.5), percentile(change, 0.99)),
        e2e=(percentile(e2e, 0.5), percentile(e2e, 0.99)),
        spread99=percentile(spread, 0.99),
        fanout_at=(percentile(fanout_at, 0.5), percentile(fanout_at, 0.99)),
        e2e_at=(percentile(e2e_at, 0.5), percentile(e2e_at, 0.99)),
        client_cpu=client["cpu"] / max(1e-9, client["wall"]),
    )
    return client


def merge_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One phase's figures from several rounds of it: counts add up, latencies are pooled before percentiles."""
    merged: dict[str, Any] = {
        key: sum(r[key] for r in rounds)
        for key in ("deliveries", "expected", "events_seen", "messages", "lost", "disorder", "stale", "active", "cpu")
    }
    merged["wall"] = sum(r["wall"] for r in rounds)
    merged["frame_bytes"] = max(r["frame_bytes"] for r in rounds)
    merged["raw"] = {k: array("d", (v for r in rounds for v in r["raw"][k])) for k in RAW}
    merged["rounds"] = len(rounds)
    return summarize(merged)


# -- load generator (its own process) ------------------------------------------------------------------------


@dataclass(slots=True)
class EventMeta:
    server_ts: float  # the event's "ts": when the broker accepted it (baseline: just before broadcast)
    change_ts: float  # the task's updated_at, set by the PATCH handler (baseline: the same stamp)
    key: Key
    seq: int  # n of "bench <n>": publishes are numbered in order, so a phase is a range of them
    first_recv: float


class LoadGenerator(EpollClients):
    """Subscribers: each sends the subscribe frame when it opens; every event delivery is recorded."""

    commands = ("connect", "settle", "begin", "collect", "close_all")

    def __init__(self, pipe: PipeEnd) -> None:
        super().__init__(pipe)
        self.subscribe_frame = b""
        self.messages = 0
        self.disorder = 0
        self.stale = 0
        self.phase_first_seq = 0
        self.last_event_at = 0.0
        self.recv_offsets: list[int] = []
        self.recv_times: list[float] = []
        self.arrive_times: list[float] = []
        self.meta: dict[int, EventMeta] = {}
        self.frame_bytes = 0
        self.phase_lost = 0
        self.phase_cpu = 0.0
        self.phase_wall = 0.0

    def on_open(self, client: Client) -> None:
        client.send(self.subscribe_frame)

    def keepalive(self, client: Client, now: float) -> None:
        """``{"type":"ping"}`` every `PING_EVERY` seconds (spread by connect time): the hub closes idle sockets."""
        if now - client.last_ping >= PING_EVERY:
            client.last_ping = now
            client.send(b'{"type":"ping"}')

    def on_message(self, client: Client, payload: bytes, binary: bool, now: float, arrived: float) -> None:
        self.messages += 1
        for line in payload.split(b"\n"):
            if line.startswith(b'{"type":"event"'):
                start = line.index(b'"offset":') + 9
                offset = int(line[start : line.index(b",", start)])
                if offset <= client.last_offset:
                    self.disorder += 1  # a duplicate or out-of-order event on this socket
                client.last_offset = offset
                self.last_event_at = now
                event = self.meta.get(offset)
                if event is None:
                    event = self.meta[offset] = self._describe(line, now)
                if event.seq < self.phase_first_seq:
                    self.stale += 1  # published in an earlier phase, arriving late
                    continue
                self.recv_offsets.append(offset)
                self.recv_times.append(now)
                self.arrive_times.append(arrived)
            elif line.startswith(b'{"type":"subscribed"') and client.state == "joining":
                self.mark_live(client)

    def _describe(self, line: bytes, now: float) -> EventMeta:
        self.frame_bytes = len(line)
        frame = json.loads(line)
        task = frame["data"]["task"]
        changed = dt.datetime.fromisoformat(task["updated_at"]).timestamp()
        title = str(task["title"])
        return EventMeta(frame["ts"] / 1000, changed, key=title, seq=int(title.rpartition(" ")[2]), first_recv=now)

    # -- commands -----------------------------------------------------------------------------------------------

    def connect(self, urls: list[str], count: int, subscribe: str, timeout: float) -> dict[str, Any]:
        """Open sockets until ``count`` are live and subscribed (round robin over ``urls``), within ``timeout``."""
        self.subscribe_frame = subscribe.encode()
        return self.open_clients(urls, count - self.live, timeout)

    def settle(self, quiet: float, timeout: float) -> float:
        """Read until no event arrived for ``quiet`` seconds (the previous phase drained), within ``timeout``."""
        started = time.monotonic()
        while time.monotonic() - started < timeout and time.time() - self.last_event_at < quiet:
            self.pump(0.05)
        return time.monotonic() - started

    def begin(self, first_seq: int) -> None:
        self.phase_first_seq = first_seq
        self.stale = 0
        self.recv_offsets.clear()
        self.recv_times.clear()
        self.arrive_times.clear()
        self.meta.clear()
        self.messages = 0
        self.disorder = 0
        self.phase_lost = self.lost
        self.phase_cpu = time.process_time()
        self.phase_wall = time.monotonic()

    def collect(self, events: int, sent: dict[Key, float], first_publish: float, timeout: float) -> dict[str, Any]:
        """Read (bounded) until every live socket got ``events`` events, then summarize the phase."""
        expected = events * self.live
        deadline = time.monotonic() + timeout
        while len(self.recv_times) < expected and time.monotonic() < deadline:
            self.pump(0.02)
        cpu = time.process_time() - self.phase_cpu
        wall = time.monotonic() - self.phase_wall
        fanout: list[float] = []
        change: list[float] = []
        e2e: list[float] = []
        spread: list[float] = []
        fanout_at: list[float] = []
        e2e_at: list[float] = []
        meta = self.meta
        for offset, received, arrived in zip(self.recv_offsets, self.recv_times, self.arrive_times, strict=True):
            event = meta[offset]
            fanout.append(received - event.server_ts)
            change.append(received - event.change_ts)
            spread.append(received - event.first_recv)
            fanout_at.append(arrived - event.server_ts)
            send = sent.get(event.key)
            if send is not None:
                e2e.append(received - send)
                e2e_at.append(arrived - send)
        last = max(self.recv_times, default=first_publish)
        return summarize(
            {
                "deliveries": len(self.recv_times),
                "expected": expected,
                "events_seen": len(meta),
                "messages": self.messages,
                "lost": self.lost - self.phase_lost,
                "disorder": self.disorder,
                "stale": self.stale,
                "active": max(1e-9, last - first_publish),
                "cpu": cpu,
                "wall": wall,
                "frame_bytes": self.frame_bytes,
                "raw": {
                    k: array("d", v)
                    for k, v in zip(RAW, (fanout, change, e2e, spread, fanout_at, e2e_at), strict=True)
                },
            }
        )


# -- the baseline server (its own process) -------------------------------------------------------------------


def baseline_task(version: int, stamp: dt.datetime) -> dict[str, Any]:
    """A task shaped like Tandem's ``TaskOut`` JSON, so the baseline sends frames of the same size."""
    iso = stamp.isoformat().replace("+00:00", "Z")
    return {
        "id": 1,
        "project_id": 1,
        "title": f"bench {version}",
        "description": "",
        "status_id": 1,
        "status_category": "todo",
        "assignee": None,
        "waiting_on_customer": False,
        "colour_class": "on_track",
        "due_date": None,
        "priority": "normal",
        "milestone_id": 1,
        "visibility": "shared",
        "position": 0,
        "version": version,
        "created_at": iso,
        "updated_at": iso,
        "completed_at": None,
    }


async def serve_baseline(port: int) -> None:
    """Answer subscribe and ping like the hub; on each control message, stamp and broadcast one event frame."""
    import websockets
    from websockets.asyncio.server import ServerConnection, serve

    subscribers: set[ServerConnection] = set()
    offset = 0

    async def handler(conn: ServerConnection) -> None:
        nonlocal offset
        if conn.request is not None and conn.request.path == "/control":
            async for message in conn:
                offset += 1
                version = int(message)
                ts = time.time_ns() // 1_000_000  # milliseconds, like the hub's "ts"
                task = baseline_task(version, dt.datetime.fromtimestamp(ts / 1000, dt.UTC))
                data = json.dumps({"type": "task.updated", "task": task}, separators=(",", ":"))
                frame = (
                    f'{{"type":"event","channel":"project:1:shared","offset":{offset},'
                    f'"epoch":"baseline","ts":{ts},"data":{data}}}'
                )
                websockets.broadcast(subscribers, frame)
            return
        try:
            async for message in conn:
                frame = json.loads(message)
                if frame.get("type") == "subscribe":
                    reply = {
                        "type": "subscribed",
                        "id": frame.get("id"),
                        "channel": frame["channel"],
                        "position": {"offset": offset, "epoch": "baseline"},
                        "recovered": False,
                        "reload": False,
                    }
                    await conn.send(json.dumps(reply, separators=(",", ":")))
                    subscribers.add(conn)
                elif frame.get("type") == "ping":
                    await conn.send(json.dumps({"type": "pong", "id": frame.get("id")}, separators=(",", ":")))
        finally:
            subscribers.discard(conn)

    async with serve(handler, "127.0.0.1", port, compression=None, max_size=1 << 20, backlog=4096):
        await asyncio.Future()


# -- targets ---------------------------------------------------------------------------------------------------


@dataclass
class Target:
    """Servers under test: where subscribers connect, which pids to measure, how to publish one event."""

    name: str
    ws_urls: list[str]
    server_pids: list[int]
    publish: Callable[[int, int], Coroutine[Any, Any, None]]  # (worker, seq): returns once answered
    sent: dict[Key, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)  # publishes the server refused (no event was published)
    round_trips: list[float] = field(default_factory=list)  # seconds from sending each answered PATCH to its answer
    counter: int = 0  # publishes started; the n-th sets the title "bench <n>"
    extra_pids: dict[str, Callable[[], list[int]]] = field(default_factory=dict)  # other servers' CPU, by name
    closers: list[Callable[[], Awaitable[None] | None]] = field(default_factory=list)

    async def close(self) -> None:
        for closer in reversed(self.closers):
            with contextlib.suppress(Exception):
                result = closer()
                if result is not None:
                    await result


@dataclass(frozen=True)
class Seed:
    """A migrated, seeded SQLite workspace (copied per target) and what the benchmark needs from it."""

    template: Path
    px: int
    tasks: list[int]
    staff_token: str
    customer_tokens: list[str]


def make_seed(directory: Path, url: str | None = None) -> Seed:
    """Migrate and seed a workspace as tests/conftest.py does, plus `BURST_WORKERS` shared tasks.

    Into a SQLite template under ``directory`` (copied per target), or into the database at ``url``.
    """
    from server import migrate
    from server.db import Database
    from server.models import Task, Visibility
    from tests.workspace import build_workspace

    path = directory / "template.db"
    url = url or f"sqlite:///{path}"
    migrate.upgrade(url)

    async def seed() -> Seed:
        db = Database(url)
        try:
            ws = await build_workspace(db)
            px = ws.ids["px"]
            async with db.session() as session:
                tasks = [
                    Task(project_id=px, title=f"bench {i}", status_id=ws.ids["px_todo"], visibility=Visibility.SHARED)
                    for i in range(BURST_WORKERS)
                ]
                session.add_all(tasks)
                await session.commit()
                ids = [t.id for t in tasks if t.id is not None]
            return Seed(path, px, ids, ws.token("staff"), [ws.token("customer"), ws.token("viewer")])
        finally:
            await db.close()

    result = asyncio.run(seed())
    if url.startswith("sqlite"):
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return result


def _cpu_by_pid(pids: list[int]) -> dict[int, float]:
    readings = {}
    for pid in pids:
        with contextlib.suppress(OSError):  # exited since it was listed
            readings[pid] = cpu_seconds([pid])
    return readings


def _cpu_spent(before: dict[int, float]) -> float:
    """CPU seconds the processes of ``before`` spent since; one that exited meanwhile counts nothing."""
    return sum(now - before[pid] for pid, now in _cpu_by_pid(list(before)).items())


def postgres_pids() -> list[int]:
    """The machine's PostgreSQL server processes (postmaster, backends, helpers)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
    return pids


@contextlib.contextmanager
def postgres_on_server_core() -> Iterator[None]:
    """Pin the machine's PostgreSQL to the server core while the benchmark runs (backends inherit it), then undo."""
    for pid in postgres_pids():
        with contextlib.suppress(OSError):
            pin(pid, SERVER_CORE)
    try:
        yield
    finally:
        for pid in postgres_pids():
            with contextlib.suppress(OSError):
                pin(pid, None)


class RawHttp:
    """The publisher's HTTP/1.1 client: keep-alive connections (one per PATCH in flight), each request's bytes built
    before the clock is read, so a PATCH counts as sent when its bytes are written, as the floor's control message
    does. (httpx spent ~0.5 ms of the controller's CPU on a request before its first byte left, on this machine:
    load generator time that the end-to-end column counted as the server's until 2026-12-07.)"""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        host, port = base_url.removeprefix("http://").rstrip("/").split(":")
        self.host, self.port = host, int(port)
        self.head = "".join(f"{name}: {value}\r\n" for name, value in {"host": f"{host}:{port}", **headers}.items())
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.opened: list[asyncio.StreamWriter] = []

    async def patch(self, path: str, body: dict[str, Any]) -> tuple[int, bytes, float]:
        """The answer's status and body, and the wall-clock time the request was written."""
        payload = json.dumps(body).encode()
        request = (
            f"PATCH {path} HTTP/1.1\r\n{self.head}content-type: application/json\r\n"
            f"content-length: {len(payload)}\r\n\r\n"
        ).encode() + payload
        while self.idle:
            reader, writer = self.idle.pop()
            if not reader.at_eof():  # uvicorn closes a connection idle for 5 s (its keep-alive timeout)
                break
            writer.close()
        else:
            reader, writer = await asyncio.open_connection(self.host, self.port)
            self.opened.append(writer)
        sent_at = time.time()
        writer.write(request)
        try:
            line = await reader.readline()
            if not line:  # closed as it went idle, before our request reached it: the request was never read
                writer.close()
                reader, writer = await asyncio.open_connection(self.host, self.port)
                self.opened.append(writer)
                sent_at = time.time()
                writer.write(request)
                line = await reader.readline()
            status = int(line.split(b" ", 2)[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            answer = await reader.readexactly(length)
        except BaseException:
            writer.close()
            raise
        self.idle.append((reader, writer))
        return status, answer, sent_at

    def close(self) -> None:
        for writer in self.opened:
            writer.close()


async def start_tandem(
    name: str, seed: Seed, tmp: Path, nodes: int, redis: bool, database_url: str | None = None
) -> Target:
    """Tandem node(s) on a copy of the seeded SQLite workspace, or on ``database_url`` (seeded by the caller)."""

    from tests.nodes import Node

    work = tmp / name
    work.mkdir()
    if database_url is None:
        shutil.copy(seed.template, work / "tandem.db")
        database_url = f"sqlite:///{work / 'tandem.db'}"
    env = {
        **node_settings(database_url, work),
        # One staff user PATCHes ~750 times a minute here, above the per-user write limit a person gets (600):
        # limits high enough never to refuse, still counted on every request as in production.
        "TANDEM_API_WRITES_PER_MINUTE_PER_USER": "1000000",
        "TANDEM_API_REQUESTS_PER_MINUTE_PER_USER": "1000000",
        "TANDEM_API_REQUESTS_PER_MINUTE_PER_IP": "1000000",
    }
    closers: list[Callable[[], Awaitable[None] | None]] = []
    extra: dict[str, Callable[[], list[int]]] = {}
    if redis:
        port = free_port()
        server = spawn(
            ["/usr/bin/redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            work / "redis.log",
        )
        closers.append(lambda: _kill(server))
        wait_for_port(port, 10)
        env["TANDEM_REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        extra["redis-server"] = lambda: [server.pid]
    started: list[Node] = []
    for index in range(nodes):
        node = Node(env=dict(env), log_path=work / f"node{index}.log")
        closers.append(node.kill)
        node.start(timeout=60)
        assert node.process is not None
        pin(node.process.pid, SERVER_CORE)
        started.append(node)
    if database_url.startswith("postgresql"):
        extra["postgres"] = postgres_pids
    http = RawHttp(started[0].http, {"authorization": f"Bearer {seed.staff_token}"})
    closers.append(http.close)
    target = Target(
        name,
        [f"{node.ws}?token={seed.customer_tokens[i % 2]}" for i, node in enumerate(started)],
        [node.process.pid for node in started if node.process is not None],
        publish=lambda worker, seq: _noop(),
        extra_pids=extra,
        closers=closers,
    )

    async def publish(worker: int, seq: int) -> None:
        target.counter += 1
        title = f"bench {target.counter}"
        task_id = seed.tasks[worker % len(seed.tasks)]
        try:
            async with asyncio.timeout(15):
                status, _, sent_at = await http.patch(f"/api/tasks/{task_id}", {"title": title})
        except (OSError, TimeoutError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
            target.failures.append(f"PATCH: {type(exc).__name__}")
            return
        if status != 200:
            # Counted and reported, not fatal: a saturated node may fail writes ("database is locked").
            target.failures.append(f"PATCH {status}: {_last_error(started[0].log())}")
            return
        target.round_trips.append(time.time() - sent_at)
        target.sent[title] = sent_at

    target.publish = publish
    return target


async def start_baseline(tmp: Path) -> Target:
    from websockets.asyncio.client import connect

    port = free_port()
    process = spawn([sys.executable, "-m", "bench.fanout", "--serve-baseline", str(port)], tmp / "baseline.log")
    target = Target("baseline", [f"ws://127.0.0.1:{port}/ws"], [process.pid], publish=lambda w, s: _noop())
    target.closers.append(lambda: _kill(process))
    wait_for_port(port, 20)
    control = await connect(f"ws://127.0.0.1:{port}/control", compression=None, ping_interval=None)
    target.closers.append(control.close)

    async def publish(worker: int, seq: int) -> None:
        target.counter += 1
        target.sent[f"bench {target.counter}"] = time.time()
        await control.send(str(target.counter))

    target.publish = publish
    return target


def _last_error(log: str) -> str:
    errors = [line for line in log.splitlines() if "Error" in line]
    return errors[-1][:200] if errors else "(nothing in the node log)"


def spawn(argv: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start a server process on the server core, its output appended to ``log_path``."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=log, stderr=log)
    pin(process.pid, SERVER_CORE)
    return process


async def _noop() -> None:
    return None


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(10)


# -- phases ---------------------------------------------------------------------------------------------------


@dataclass
class PhaseResult:
    target: str
    size: int
    phase: str
    events: int  # published (the server accepted the change)
    failed: int  # publishes the server refused
    client: dict[str, Any]
    server_cpu: float
    publish_cpu: float  # server CPU seconds per event with no subscribers
    extra_cpu: dict[str, float]
    round_trips: list[float] = field(default_factory=list)  # the PATCHes' (Tandem only), seconds

    @property
    def cpu_per_delivery_us(self) -> float:
        return 1e6 * self.server_cpu / max(1, int(self.client["deliveries"]))

    @property
    def net_cpu_per_delivery_us(self) -> float:
        net = self.server_cpu - self.events * self.publish_cpu
        return 1e6 * net / max(1, int(self.client["deliveries"]))


async def publish_paced(target: Target, seconds: float) -> int:
    """``PACED_RATE`` events per second for ``seconds`` (open loop: each publish on its own task).

    Returns:
        How many publishes were started; those still unanswered `PUBLISH_GRACE` seconds after the last one are
        cancelled (and count as failed).
    """
    count = max(1, int(seconds * PACED_RATE))
    loop = asyncio.get_running_loop()
    start = loop.time()
    tasks: list[asyncio.Task[None]] = []
    for seq in range(count):
        await asyncio.sleep(max(0.0, start + seq / PACED_RATE - loop.time()))
        tasks.append(loop.create_task(target.publish(seq % BURST_WORKERS, seq)))
    await _finish(tasks, PUBLISH_GRACE)
    return count


async def publish_burst(target: Target, events: int) -> int:
    """``events`` as fast as the publisher goes: `BURST_WORKERS` loops, each publishing its share in sequence.

    Returns:
        How many publishes were started; the phase stops starting new ones after `PUBLISH_GRACE` seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PUBLISH_GRACE
    started = 0

    async def worker(index: int) -> None:
        nonlocal started
        for seq in range(index, events, BURST_WORKERS):
            if loop.time() >= deadline:
                return
            started += 1
            await target.publish(index, seq)

    await _finish([loop.create_task(worker(i)) for i in range(BURST_WORKERS)], PUBLISH_GRACE + 5)
    return started


async def _finish(tasks: list[asyncio.Task[None]], timeout: float) -> None:
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        task.result()


async def run_phase(
    target: Target, gen: LoadGenClient, size: int, phase: str, publish: Callable[[], Awaitable[int]], publish_cpu: float
) -> PhaseResult:
    target.sent.clear()
    target.round_trips.clear()
    failures_before = len(target.failures)
    waited = await gen.call("settle", 1.0, 60.0, timeout=90)
    if waited > 2:
        print(f"  {target.name} N={size}: waited {waited:.1f}s for the previous phase to drain", flush=True)
    await gen.call("begin", target.counter + 1)
    cpu_before = cpu_seconds(target.server_pids)
    extra_before = {name: _cpu_by_pid(pids()) for name, pids in target.extra_pids.items()}
    first_publish = time.time()
    attempted = await publish()
    events = len(target.sent)  # answered publishes: each put exactly one event on the channel
    failed = attempted - events
    client = await gen.call("collect", events, dict(target.sent), first_publish, 90.0, timeout=150)
    server_cpu = cpu_seconds(target.server_pids) - cpu_before
    extra = {name: _cpu_spent(before) for name, before in extra_before.items()}
    for failure in target.failures[failures_before:][:3]:
        print(f"  {target.name} N={size} {phase}: publish failed: {failure}", flush=True)
    return PhaseResult(
        target.name, size, phase, events, failed, client, server_cpu, publish_cpu, extra, list(target.round_trips)
    )


async def measure_publish_cost(target: Target) -> float:
    """Server CPU seconds per event with no subscribers: the publish path alone (REST, outbox, broker).

    Warm (the first `WARMUP_EVENTS` are not counted: imports, caches, the SQLite page cache), and net of what the
    server burns idle over the same wait, so the figure is what one more event costs in a running node.
    """
    await publish_burst(target, WARMUP_EVENTS)
    await asyncio.sleep(1.5)
    idle_before = cpu_seconds(target.server_pids)
    await asyncio.sleep(1.5)
    idle = cpu_seconds(target.server_pids) - idle_before
    before = cpu_seconds(target.server_pids)
    await publish_burst(target, PUBLISH_COST_EVENTS)
    await asyncio.sleep(1.5)  # let the outbox relay finish
    spent = cpu_seconds(target.server_pids) - before - idle
    return max(spent, 0.0) / PUBLISH_COST_EVENTS


@dataclass
class IdleResult:
    target: str
    size: int
    connect_seconds: float
    failures: int
    rss_per_conn_kb: float


def merge_phases(results: list[PhaseResult]) -> PhaseResult:
    """Rounds of one target's phase as one result (see `merge_rounds`)."""
    first = results[0]
    extra: dict[str, float] = {}
    for r in results:
        for name, value in r.extra_cpu.items():
            extra[name] = extra.get(name, 0.0) + value
    return PhaseResult(
        first.target,
        first.size,
        first.phase,
        sum(r.events for r in results),
        sum(r.failed for r in results),
        merge_rounds([r.client for r in results]),
        sum(r.server_cpu for r in results),
        first.publish_cpu,
        extra,
        [t for r in results for t in r.round_trips],
    )


Running = list[tuple[Target, LoadGenClient]]


async def bench_size(
    running: Running,
    size: int,
    args: argparse.Namespace,
    channel: str,
    publish_cpu: dict[str, float],
    rss0: dict[str, int],
) -> tuple[list[IdleResult], list[PhaseResult]]:
    """Connect ``size`` subscribers to every target, then run the phases in interleaved rounds.

    Every target stays connected for the whole size; round r runs each target's phase in turn (the order
    alternates between rounds), so a slow spell of the machine (other tenants, frequency changes) falls on
    all targets alike instead of on whichever ran at that moment. Latencies are pooled over the rounds.
    """
    idle: list[IdleResult] = []
    phases: list[PhaseResult] = []
    subscribe = json.dumps({"type": "subscribe", "id": 1, "channel": channel})
    live: dict[str, int] = {}
    for target, gen in running:
        reply = await gen.call("connect", target.ws_urls, size, subscribe, 240.0, timeout=300)
        await asyncio.sleep(2.0)
        live[target.name] = int(reply["live"])
        rss = rss_kb(target.server_pids)
        per_conn = (rss - rss0[target.name]) / max(1, live[target.name])
        idle.append(IdleResult(target.name, live[target.name], reply["seconds"], reply["failures"], per_conn))
        print(f"  {target.name}: {live[target.name]} subscribers in {reply['seconds']:.1f}s, RSS {rss} KB", flush=True)
    for phase, rounds in (("paced", args.rounds), ("burst", args.burst_rounds)):
        done: dict[str, list[PhaseResult]] = {target.name: [] for target, _ in running}
        for index in range(rounds):
            order = running if index % 2 == 0 else running[::-1]
            for target, gen in order:
                paced = phase == "paced"
                seconds = args.paced_seconds / rounds

                async def publish(t: Target = target, paced: bool = paced, seconds: float = seconds) -> int:
                    return await (publish_paced(t, seconds) if paced else publish_burst(t, args.burst_events))

                result = await run_phase(target, gen, live[target.name], phase, publish, publish_cpu[target.name])
                done[target.name].append(result)
                await asyncio.sleep(0.5)
        for target, _ in running:
            result = merge_phases(done[target.name])
            phases.append(result)
            c = result.client
            print(
                f"  {target.name} N={result.size} {phase} ({rounds} rounds): {c['deliveries']}/{c['expected']} "
                f"delivered, p99 {1e3 * c['fanout'][1]:.1f} ms (arrival {1e3 * c['fanout_at'][1]:.1f}), "
                f"{result.cpu_per_delivery_us:.1f} us CPU/delivery, "
                f"client CPU {100 * c['client_cpu']:.0f}%, {c['stale']} late deliveries from earlier phases",
                flush=True,
            )
    for _, gen in running:
        await gen.call("close_all")
    return idle, phases


# -- report ---------------------------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{1e3 * value:.1f}"


def render(idle: list[IdleResult], phases: list[PhaseResult], args: argparse.Namespace) -> str:
    lines = [
        f"Paced: {args.paced_seconds:g} s at {PACED_RATE:g} events/s per target, in {args.rounds} interleaved rounds; "
        f"burst: {args.burst_rounds} interleaved rounds of {args.burst_events} events. Latencies pooled over rounds.",
        "",
        "| target | N | phase | events (failed) | deliveries (missing, dup/unordered, sockets lost) | deliveries/s | "
        "delivery p50 / p99 ms | change→socket p50 / p99 ms | end-to-end p50 / p99 ms | spread p99 ms | "
        "arrival: delivery p50 / p99 ms | arrival: end-to-end p50 / p99 ms | "
        "server CPU µs/delivery (net) | frames/message | client CPU |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in phases:
        c = r.client
        missing = c["expected"] - c["deliveries"]
        per_message = c["deliveries"] / max(1, c["messages"])
        extra = "".join(f"; {k} {1e6 * v / max(1, c['deliveries']):.1f}" for k, v in r.extra_cpu.items())
        lines.append(
            f"| {r.target} | {r.size} | {r.phase} | {r.events} ({r.failed}) | "
            f"{c['deliveries']} ({missing}, {c['disorder']}, {c['lost']}) | {c['rate']:,.0f} | "
            f"{_ms(c['fanout'][0])} / {_ms(c['fanout'][1])} | {_ms(c['change'][0])} / {_ms(c['change'][1])} | "
            f"{_ms(c['e2e'][0])} / {_ms(c['e2e'][1])} | "
            f"{_ms(c['spread99'])} | {_ms(c['fanout_at'][0])} / {_ms(c['fanout_at'][1])} | "
            f"{_ms(c['e2e_at'][0])} / {_ms(c['e2e_at'][1])} | "
            f"{r.cpu_per_delivery_us:.1f} ({r.net_cpu_per_delivery_us:.1f}{extra}) | "
            f"{per_message:.2f} | {100 * c['client_cpu']:.0f}% |"
        )
    lines += [
        "",
        "| target | N | connect s | failed | RSS KB/connection |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {i.target} | {i.size} | {i.connect_seconds:.1f} | {i.failures} | {i.rss_per_conn_kb:.1f} |" for i in idle
    ]
    lines += ["", *render_ratios(idle, phases), "", *render_round_trips(phases)]
    return "\n".join(lines)


def render_round_trips(phases: list[PhaseResult]) -> list[str]:
    """The PATCHes' own round trips, while the subscribers were served (#23: paced p99 <= 3x its p50)."""
    lines = ["| target | N | phase | PATCH round trip p50 / p99 ms | p99 / p50 |", "|---|---:|---|---:|---:|"]
    for r in phases:
        if not r.round_trips:
            continue
        times = sorted(r.round_trips)
        p50, p99 = percentile(times, 0.50), percentile(times, 0.99)
        lines.append(f"| {r.target} | {r.size} | {r.phase} | {_ms(p50)} / {_ms(p99)} | {p99 / max(1e-9, p50):.2f} |")
    return lines


def render_ratios(idle: list[IdleResult], phases: list[PhaseResult]) -> list[str]:
    base = {(r.size, r.phase): r for r in phases if r.target == "baseline"}
    base_idle = {i.size: i for i in idle if i.target == "baseline"}
    lines = [
        "| target / baseline | N | paced delivery p99 | paced change→socket p99 | paced end-to-end p99 | "
        "paced spread p99 | arrival: paced delivery p99 | arrival: paced end-to-end p99 | "
        "burst CPU/delivery (net) | RSS/connection |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in phases:
        if r.target == "baseline" or r.phase != "paced" or (r.size, "paced") not in base:
            continue
        b = base[(r.size, "paced")]
        burst = next((p for p in phases if (p.target, p.size, p.phase) == (r.target, r.size, "burst")), None)
        b_burst = base.get((r.size, "burst"))
        cpu = "-"
        if burst is not None and b_burst is not None:
            gross = burst.cpu_per_delivery_us / b_burst.cpu_per_delivery_us
            net = burst.net_cpu_per_delivery_us / b_burst.net_cpu_per_delivery_us
            cpu = f"{gross:.2f}x ({net:.2f}x)"
        rss = "-"
        mine = next((i for i in idle if (i.target, i.size) == (r.target, r.size)), None)
        if mine is not None and r.size in base_idle and base_idle[r.size].rss_per_conn_kb > 0:
            rss = f"{mine.rss_per_conn_kb / base_idle[r.size].rss_per_conn_kb:.2f}x"
        lines.append(
            f"| {r.target} | {r.size} | {r.client['fanout'][1] / b.client['fanout'][1]:.2f}x | "
            f"{r.client['change'][1] / b.client['change'][1]:.2f}x | "
            f"{r.client['e2e'][1] / b.client['e2e'][1]:.2f}x | "
            f"{r.client['spread99'] / max(1e-9, b.client['spread99']):.2f}x | "
            f"{r.client['fanout_at'][1] / b.client['fanout_at'][1]:.2f}x | "
            f"{r.client['e2e_at'][1] / b.client['e2e_at'][1]:.2f}x | {cpu} | {rss} |"
        )
    return lines


# -- main -----------------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> str:
    sizes = [int(s) for s in args.sizes.split(",")]
    configs = [c.strip() for c in args.configs.split(",")]
    idle: list[IdleResult] = []
    phases: list[PhaseResult] = []
    running: Running = []
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tandem-fanout-")))
        seed = await asyncio.to_thread(make_seed, tmp)
        channel = f"project:{seed.px}:shared"
        pg_url = pg_seed = None
        if "redis-pg" in configs:
            from tests.conftest import postgres_database

            pg_url = stack.enter_context(postgres_database())
            pg_seed = await asyncio.to_thread(make_seed, tmp, pg_url)
            assert pg_seed.px == seed.px, "both workspaces are seeded alike, so they share the channel name"
            stack.enter_context(postgres_on_server_core())
        try:
            for config in configs:
                print(f"{config}: starting", flush=True)
                gen = LoadGenClient(LoadGenerator, "fanout-loadgen")
                try:
                    if config == "memory":
                        target = await start_tandem("memory", seed, tmp, nodes=1, redis=False)
                    elif config == "redis":
                        target = await start_tandem("redis", seed, tmp, nodes=2, redis=True)
                    elif config == "redis-pg":
                        assert pg_seed is not None
                        target = await start_tandem("redis-pg", pg_seed, tmp, nodes=2, redis=True, database_url=pg_url)
                    elif config == "baseline":
                        target = await start_baseline(tmp)
                    else:
                        raise SystemExit(f"unknown config {config!r}")
                except BaseException:
                    gen.stop()
                    raise
                running.append((target, gen))
            await asyncio.sleep(1.0)
            publish_cpu = {target.name: await measure_publish_cost(target) for target, _ in running}
            rss0 = {target.name: rss_kb(target.server_pids) for target, _ in running}
            for size in sizes:
                more_idle, more_phases = await bench_size(running, size, args, channel, publish_cpu, rss0)
                idle += more_idle
                phases += more_phases
        finally:
            for target, gen in running:
                await target.close()
                gen.stop()
    return render(idle, phases, args)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,5000,10000", help="subscriber counts, comma separated")
    parser.add_argument(
        "--paced-seconds", type=float, default=20.0, help="length of the 20 events/s phase, over all its rounds"
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds the paced phase is split into")
    parser.add_argument("--burst-events", type=int, default=60, help="events in each round of the burst phase")
    parser.add_argument("--burst-rounds", type=int, default=3, help="interleaved rounds of the burst phase")
    parser.add_argument("--configs", default="memory,redis,baseline", help="targets: memory, redis, redis-pg, baseline")
    parser.add_argument("--quick", action="store_true", help="1,000 subscribers only")
    parser.add_argument("--serve-baseline", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = "1000"
    return args


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.serve_baseline:
        raise_fd_limit()
        # The same event loop the Tandem node runs on (uvicorn's "--loop auto" takes uvloop when installed).
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(serve_baseline(args.serve_baseline))
        return
    limit = raise_fd_limit()
    needed = max(int(s) for s in args.sizes.split(",")) + 1000
    if limit < needed:
        raise SystemExit(f"open-file limit {limit} is below {needed}: raise the hard limit (ulimit -Hn)")
    pin(os.getpid(), CLIENT_CORE)
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    if load_before > 0.5:
        print(f"warning: load average {load_before:.2f} before the run: other work shares these cores", flush=True)
    table = asyncio.run(run(args))
    print()
    print(table)
    print(
        f"\n(total {time.monotonic() - started:.0f}s, {os.cpu_count()} cores, fd limit {limit}, "
        f"1-min load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after)"
    )


if __name__ == "__main__":
    main()
