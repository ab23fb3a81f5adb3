"""Co-edited notes under load: Tandem's `/yjs` rooms against Hocuspocus, @y/websocket-server 0.1.1 and
pycrdt-websocket, in the same run, on the same machine.

    .venv/bin/python -m bench.notes                 # 50 / 200 / 1000 editors, all four servers
    .venv/bin/python -m bench.notes --editors 1000 --servers tandem,hocuspocus

Scenarios:
- one note, N editors, on every server at once: one editor types at 20 updates/s (paced) or back to back
  (burst), the others receive. Delivery latency p50/p99 (typist send -> receiver read), server CPU µs per delivered
  update (CPU time of the server process / deliveries), throughput, RSS per connection. The phases run in
  interleaved rounds: within a round the servers take turns, in alternating order, so a slow spell of this shared
  machine falls on all of them alike; latencies are pooled over the rounds.
- M notes of K editors each (default 100 x 10, every editor typing at 2 updates/s), on every server at once, in
  interleaved rounds (paced, then burst: each writer's updates back to back): latency from the writer's send to
  each other editor of its note, server CPU per delivered update in the burst, time for all M x K to join and sync.
  These editors live in a load-generator process per server (`ManyRooms`), each writer with its own pycrdt
  document; updates are made before a round, so a round times the servers, not pycrdt.
- Tandem only: cold load of a 1 MB note (connect -> sync step 2 complete, room not in memory). The others keep
  notes in memory only (nothing to load cold).

Every update the typist sends carries a marker ``#NNNNNN;`` in its inserted text, so receivers match deliveries to
sends even when a server merges several updates into one frame. The receivers of the one-note scenario live in a
load-generator process per server (``bench/wsload.py``: one epoll loop, a minimal frame reader), pinned to the
client core with this controller; the servers are pinned to the other core. The one-note typist is an asyncio
``websockets`` client in this process, with a pycrdt document. Latencies are kept on two clocks (``bench/wsload.py``):
when the receiver read the bytes, and when the kernel queued them on its socket ("arrival"); for one note the
report also splits each update into send -> first socket and first socket -> last ("spread").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pycrdt
import websockets

from bench.notes_loadgen import KEEPALIVE_EVERY, MARKER, ManyRooms, Receivers, varbytes
from bench.wsload import (
    CLIENT_CORE,
    SERVER_CORE,
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
PEERS = Path(__file__).resolve().parent / "notes_peers"
PYCRDT_VENV = ROOT / "var" / "bench" / "pycrdt-ws-venv"
PACED_RATE = 20.0


def cpu_of(pid: int) -> float:
    """CPU seconds of ``pid``'s threads so far, to the nanosecond (the scheduler's ``sum_exec_runtime`` in
    ``/proc/<pid>/task/*/schedstat``; threads that already exited are not counted). ``/proc/<pid>/stat`` counts
    in 10 ms ticks, too coarse for a burst phase: 600 updates to 199 editors cost ~50 ms of CPU, so one tick was
    0.08 µs per delivered update. Falls back to the ticks where schedstat is missing."""
    total = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                total += int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
    except FileNotFoundError:
        return cpu_seconds([pid])
    return total / 1e9


def rss_bytes(pid: int) -> int:
    return rss_kb([pid]) * 1024


# -- servers -------------------------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    protocol: str  # "y" (y-websocket) or "hocuspocus"
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    token: str = ""
    notes: list[str] = field(default_factory=list)
    tmp: Path | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def url(self, note: str) -> str:
        if self.name == "tandem":
            return f"ws://127.0.0.1:{self.port}/yjs/{note}?token={self.token}"
        if self.protocol == "hocuspocus":
            return f"ws://127.0.0.1:{self.port}"
        return f"ws://127.0.0.1:{self.port}/{note}"

    def new_notes(self, count: int, content: str = "") -> list[str]:
        """Names of ``count`` fresh notes (created over REST for Tandem)."""
        if self.name != "tandem":
            base = len(self.notes)
            names = [f"bench-{base + i}" for i in range(count)]
            self.notes += names
            return names
        names = []
        with httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}", headers={"authorization": f"Bearer {self.token}"}, timeout=60
        ) as api:
            for _ in range(count):
                response = api.post(
                    f"/api/projects/{self.project}/notes",
                    json={"title": "bench", "visibility": "shared", "content": content},
                )
                response.raise_for_status()
                names.append(str(response.json()["id"]))
        return names

    project: int = 0

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)


def start_tandem() -> Server:
    from server import migrate
    from server.db import Database
    from tests.workspace import build_workspace

    tmp = Path(tempfile.mkdtemp(prefix="bench-notes-"))
    url = f"sqlite:///{tmp / 'tandem.db'}"
    migrate.upgrade(url)

    async def seed() -> Any:
        db = Database(url)
        try:
            return await build_workspace(db)
        finally:
            await db.close()

    ws = asyncio.run(seed())
    port = free_port()
    env = {
        **os.environ,
        **node_settings(url, tmp),
        # The burst scenario sends updates back to back, far past an editor's pace (and the default 4429 limit).
        "TANDEM_NOTES_MESSAGES_PER_SECOND": "1000000",
        "TANDEM_NOTES_MESSAGE_BURST": "1000000",
        "PYTHONPATH": str(ROOT),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "server.main:create",
            "--port",
            str(port),
            "--ws-per-message-deflate",
            "false",
            "--log-level",
            "warning",
            "--backlog",
            "4096",
        ],
        cwd=ROOT,
        env=env,
    )
    wait_for_port(port, 30)
    server = Server("tandem", "y", process, port, ws.token("staff"), tmp=tmp)
    server.project = ws.ids["px"]
    return server


def start_node(name: str, script: str) -> Server:
    if not (PEERS / "node_modules").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PEERS, check=True, timeout=300)
    port = free_port()
    process = subprocess.Popen(["node", script, str(port)], cwd=PEERS, stdout=subprocess.DEVNULL)
    wait_for_port(port, 30)
    return Server(name, "hocuspocus" if name == "hocuspocus" else "y", process, port)


def start_pycrdt_websocket() -> Server:
    python = PYCRDT_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PYCRDT_VENV)], check=True)
        subprocess.run(
            [str(PYCRDT_VENV / "bin" / "pip"), "install", "-q", "pycrdt-websocket==0.16.5", "uvicorn", "websockets"],
            check=True,
            timeout=600,
        )
    port = free_port()
    process = subprocess.Popen(
        [
            str(python),
            "-m",
            "uvicorn",
            "pycrdt_ws:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--ws-per-message-deflate",
            "false",
            "--backlog",
            "4096",
        ],
        cwd=PEERS,
    )
    wait_for_port(port, 30)
    return Server("pycrdt-websocket", "y", process, port)


STARTERS: dict[str, Callable[[], Server]] = {
    "tandem": start_tandem,
    "hocuspocus": lambda: start_node("hocuspocus", "hocuspocus.mjs"),
    "ywss": lambda: start_node("ywss", "ywss.mjs"),
    "pycrdt-websocket": start_pycrdt_websocket,
}


# -- clients -------------------------------------------------------------------------------------------------


class Editor:
    """One client socket. Receivers only timestamp the markers they see; the typist keeps a pycrdt document."""

    def __init__(self, server: Server, note: str) -> None:
        self.server = server
        self.note = note
        self.prefix = varbytes(note.encode()) if server.protocol == "hocuspocus" else b""
        self.socket: Any = None
        self.synced = asyncio.Event()
        self.arrivals: dict[int, float] = {}
        self.seen = asyncio.Event()
        self.reader: asyncio.Task[None] | None = None
        self.doc: pycrdt.Doc | None = None  # type: ignore[type-arg]
        self.last_sent = time.monotonic()

    async def connect(self, attempt: int = 0) -> None:
        self.socket = await websockets.connect(
            self.server.url(self.note), max_size=None, compression=None, open_timeout=60, ping_interval=None
        )
        with contextlib.suppress(websockets.ConnectionClosed):  # turned away (1013): the reader retries
            if self.server.protocol == "hocuspocus":
                await self.socket.send(self.prefix + b"\x02\x00" + varbytes(b""))  # auth: token ""
            await self.socket.send(self.prefix + b"\x00\x00" + varbytes(b"\x00"))  # sync step 1, empty state
        self.reader = asyncio.get_running_loop().create_task(self._read(attempt))

    async def _read(self, attempt: int) -> None:
        skip = len(self.prefix)
        with contextlib.suppress(websockets.ConnectionClosed):
            await self._receive(skip)
        if self.socket.close_code == 1013 and attempt < 30:
            # A server admitting sockets at a bounded pace turned this one away: back off with jitter and retry,
            # as a real client does (the retries are part of the join time, not of the measured phases).
            await asyncio.sleep(random.uniform(0.5, 1.0) * min(5.0, 0.2 * 2**attempt))
            await self.connect(attempt + 1)

    async def _receive(self, skip: int) -> None:
        async for data in self.socket:
            if not isinstance(data, bytes) or len(data) < skip + 2 or data[skip] != 0:
                continue
            kind = data[skip + 1]
            if kind == 1:  # sync step 2
                self.synced.set()
                if self.doc is not None:
                    self.doc.apply_update(_payload(data, skip + 2))
            elif kind == 0:  # the server's step 1: answer with our (empty) state
                await self.socket.send(self.prefix + b"\x00\x01" + varbytes(b"\x00\x00"))
            if kind in (1, 2):
                now = time.perf_counter()
                for match in MARKER.finditer(data):
                    self.arrivals.setdefault(int(match.group(1)), now)
                self.seen.set()

    async def type(self, seq: int) -> None:
        assert self.doc is not None
        updates: list[bytes] = []
        subscription = self.doc.observe(lambda e: updates.append(e.update))
        text = self.doc.get("content", type=pycrdt.Text)
        text.insert(len(text), f"#{seq:06d};")
        self.doc.unobserve(subscription)
        for update in updates:
            await self.socket.send(self.prefix + b"\x00\x02" + varbytes(update))
        self.last_sent = time.monotonic()

    async def type_in_one_write(self, seqs: range) -> None:
        """Type one update per ``seqs`` and send all their messages in one write to the socket: the server reads
        them together, so it can fan them out as one frame (see ``--one-write-rounds``)."""
        assert self.doc is not None
        updates: list[bytes] = []
        subscription = self.doc.observe(lambda e: updates.append(e.update))
        text = self.doc.get("content", type=pycrdt.Text)
        for seq in seqs:
            text.insert(len(text), f"#{seq:06d};")  # one transaction, one update, per insert
        self.doc.unobserve(subscription)
        protocol = self.socket.protocol  # websockets' sans-I/O protocol: frames (masked) without sending them
        for update in updates:
            protocol.send_binary(self.prefix + b"\x00\x02" + varbytes(update))
        self.socket.transport.write(b"".join(protocol.data_to_send()))
        self.last_sent = time.monotonic()

    async def keepalive(self) -> None:
        """Say something if silent for a while (see `Receivers.keepalive`): a query for awareness."""
        if time.monotonic() - self.last_sent >= KEEPALIVE_EVERY / 2:
            await self.socket.send(self.prefix + b"\x03")
            self.last_sent = time.monotonic()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.socket.close(), 2)
        if self.reader is not None:
            self.reader.cancel()


def _payload(data: bytes, pos: int) -> bytes:
    length = 0
    shift = 0
    while True:
        byte = data[pos]
        pos += 1
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            return data[pos : pos + length]
        shift += 7


async def join(server: Server, note: str, count: int) -> list[Editor]:
    """``count`` editors on ``note``, connected in waves; those never answered with sync step 2 within 30 s are
    dropped (and counted: pycrdt-websocket leaves late joiners of a cold room unsynced)."""
    editors = [Editor(server, note) for _ in range(count)]
    for start in range(0, count, 100):  # connect in waves: the accept backlog of some servers is small
        await asyncio.gather(*(e.connect() for e in editors[start : start + 100]))
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(60):
            await asyncio.gather(*(e.synced.wait() for e in editors))
    synced = [e for e in editors if e.synced.is_set()]
    for editor in editors:
        if not editor.synced.is_set():
            await editor.close()
    UNSYNCED[server.name] = UNSYNCED.get(server.name, 0) + count - len(synced)
    return synced


UNSYNCED: dict[str, int] = {}


# -- scenarios -----------------------------------------------------------------------------------------------


@dataclass
class Room:
    """One server's note under test in the one-note scenario: its receivers (a load-generator process) and typist."""

    server: Server
    gen: LoadGenClient
    typist: Editor
    receivers: int
    seq: int = 0
    paced: list[float] = field(default_factory=list)  # delivery latencies, seconds, to the receiver's read
    paced_arrival: list[float] = field(default_factory=list)  # the same, to the kernel's queueing (`bench/wsload.py`)
    paced_to_first: list[float] = field(default_factory=list)  # per update: send -> the first socket's arrival
    paced_spread: list[float] = field(default_factory=list)  # per update: the first socket's arrival -> the last's
    paced_expected: int = 0
    lost: int = 0  # receivers whose socket closed during the phases
    burst_delivered: int = 0
    burst_expected: int = 0
    burst_cpu: float = 0.0
    burst_seconds: float = 0.0
    burst_frames: float = 0.0  # messages each receiver got in the burst rounds (how many fan-outs carried them)
    one_write_cpu: float = 0.0
    one_write_delivered: int = 0
    one_write_frames: float = 0.0
    client_cpu: dict[str, float] = field(default_factory=dict)  # the load generator's busiest round, per phase

    async def phase(self, updates: int, rate: float | None, one_write: bool = False) -> dict[str, Any]:
        """Type ``updates`` updates (at ``rate`` per second, or back to back, or all sent in one write) and collect
        their deliveries."""
        await self.gen.call("begin")
        await self.typist.keepalive()
        sent: dict[int, float] = {}
        start = time.perf_counter()
        if one_write:
            now = time.time()
            sent = {seq: now for seq in range(self.seq, self.seq + updates)}
            await self.typist.type_in_one_write(range(self.seq, self.seq + updates))
            self.seq += updates
            updates = 0
        for i in range(updates):
            if rate is not None:
                await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            sent[self.seq] = time.time()
            await self.typist.type(self.seq)
            self.seq += 1
        reply: dict[str, Any] = await self.gen.call("collect", sent, 120.0, timeout=180)
        phase = "paced" if rate is not None else "burst"
        self.client_cpu[phase] = max(self.client_cpu.get(phase, 0.0), reply["client_cpu"])
        return reply


async def one_note(servers: list[Server], editors: int, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """``editors`` on one note of every server at once; paced and burst typing in interleaved rounds.

    Within a round the servers take turns (alternating order between rounds), so a slow spell of the machine
    falls on all of them alike; latencies are pooled over the rounds.
    """
    rooms: list[Room] = []
    results: dict[str, dict[str, Any]] = {}
    try:
        for server in servers:
            (note,) = server.new_notes(1)
            rss_before = rss_bytes(server.pid)
            gen = LoadGenClient(Receivers, f"notes-{server.name}")
            hocuspocus = server.protocol == "hocuspocus"
            prefix = varbytes(note.encode()) if hocuspocus else b""
            try:
                joined = await gen.call("join", server.url(note), editors - 1, prefix, hocuspocus, 60.0, timeout=120)
                typist = (await join(server, note, 1))[0]
            except BaseException:
                gen.stop()
                raise
            typist.doc = pycrdt.Doc()
            await asyncio.sleep(0.5)
            live = int(joined["live"])
            UNSYNCED[server.name] = UNSYNCED.get(server.name, 0) + editors - 1 - live
            rooms.append(Room(server, gen, typist, live))
            results[server.name] = {
                "rss_per_connection_kb": (rss_bytes(server.pid) - rss_before) / (live + 1) / 1024,
                "synced_editors": live + 1,
            }
            print(f"  {server.name}: {live + 1} of {editors} editors synced", file=sys.stderr, flush=True)
        for index in range(args.rounds):
            for room in rooms if index % 2 == 0 else rooms[::-1]:
                reply = await room.phase(args.paced // args.rounds, PACED_RATE)
                room.paced.extend(reply["latencies"])
                room.paced_arrival.extend(reply["arrival_latencies"])
                room.paced_to_first.extend(reply["to_first"])
                room.paced_spread.extend(reply["spread"])
                room.paced_expected += reply["expected"]
                room.lost = reply["lost"]
        for index in range(args.burst_rounds):
            for room in rooms if index % 2 == 0 else rooms[::-1]:
                cpu0 = cpu_of(room.server.pid)
                t0 = time.perf_counter()
                reply = await room.phase(args.burst, None)
                room.burst_seconds += time.perf_counter() - t0
                room.burst_cpu += cpu_of(room.server.pid) - cpu0
                room.burst_delivered += len(reply["latencies"])
                room.burst_expected += reply["expected"]
                room.burst_frames += reply["messages"] / max(1, reply["live"])
                room.lost = reply["lost"]
        for index in range(args.one_write_rounds):
            for room in rooms if index % 2 == 0 else rooms[::-1]:
                cpu0 = cpu_of(room.server.pid)
                reply = await room.phase(args.burst, None, one_write=True)
                room.one_write_cpu += cpu_of(room.server.pid) - cpu0
                room.one_write_delivered += len(reply["latencies"])
                room.one_write_frames += reply["messages"] / max(1, reply["live"])
                room.lost = reply["lost"]
        for room in rooms:
            paced = sorted(room.paced)
            arrival = sorted(room.paced_arrival)
            results[room.server.name].update(
                paced_p50_ms=percentile(paced, 0.5) * 1000,
                paced_p99_ms=percentile(paced, 0.99) * 1000,
                paced_arrival_p50_ms=percentile(arrival, 0.5) * 1000,
                paced_arrival_p99_ms=percentile(arrival, 0.99) * 1000,
                paced_to_first_p50_ms=percentile(sorted(room.paced_to_first), 0.5) * 1000,
                paced_spread_p50_ms=percentile(sorted(room.paced_spread), 0.5) * 1000,
                paced_spread_p99_ms=percentile(sorted(room.paced_spread), 0.99) * 1000,
                paced_missing=room.paced_expected - len(paced),
                receivers_lost=room.lost,
                burst_cpu_us_per_delivered=room.burst_cpu * 1e6 / max(1, room.burst_delivered),
                burst_delivered_per_s=room.burst_delivered / max(1e-9, room.burst_seconds),
                burst_missing=room.burst_expected - room.burst_delivered,
                burst_frames_per_receiver=room.burst_frames,
                one_write_cpu_us_per_delivered=room.one_write_cpu * 1e6 / max(1, room.one_write_delivered),
                one_write_frames_per_receiver=room.one_write_frames,
                paced_client_cpu=room.client_cpu.get("paced", 0.0),
                burst_client_cpu=room.client_cpu.get("burst", 0.0),
            )
    finally:
        for room in rooms:
            await room.typist.close()
            room.gen.stop()
    return results


async def many_notes(servers: list[Server], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """``args.notes`` notes of ``args.per_note`` editors on every server at once, each note's first
    ``args.writers`` typing at ``args.note_rate`` updates/s; the servers take turns in interleaved rounds."""
    gens: list[tuple[Server, LoadGenClient]] = []
    results: dict[str, dict[str, Any]] = {}
    pooled: dict[str, dict[str, list[float]]] = {}
    try:
        for server in servers:
            names = server.new_notes(args.notes)
            hocuspocus = server.protocol == "hocuspocus"
            prefixes = [varbytes(name.encode()) if hocuspocus else b"" for name in names]
            rss_before = rss_bytes(server.pid)
            gen = LoadGenClient(ManyRooms, f"notes-many-{server.name}")
            gens.append((server, gen))
            joined = await gen.call(
                "join_rooms", [server.url(n) for n in names], prefixes, args.per_note, hocuspocus, 120.0, timeout=180
            )
            await asyncio.sleep(0.5)
            results[server.name] = {
                "editors_synced": joined["live"],
                "join_seconds": joined["seconds"],
                "join_failures": joined["failures"],
                "rss_per_room_kb": (rss_bytes(server.pid) - rss_before) / args.notes / 1024,
            }
            pooled[server.name] = {
                key: []
                for key in (
                    "read",
                    "arrival",
                    "delivered",
                    "expected",
                    "echoes",
                    "client",
                    "burst_cpu",
                    "burst_delivered",
                )
            }
            print(
                f"  {server.name}: {joined['live']} of {args.notes * args.per_note} editors synced in "
                f"{joined['seconds']:.1f} s",
                file=sys.stderr,
                flush=True,
            )
        paced = int(args.note_seconds * args.note_rate / args.rounds)
        rounds = [("paced", paced, args.note_rate)] * args.rounds + [
            ("burst", args.note_burst, None)
        ] * args.burst_rounds
        for index, (phase, updates, rate) in enumerate(rounds):
            for server, gen in gens if index % 2 == 0 else gens[::-1]:
                cpu0 = cpu_of(server.pid)
                reply = await gen.call(
                    "type_round", updates, rate, args.writers, 30.0, timeout=updates / (rate or 50) + 90
                )
                mine = pooled[server.name]
                mine["echoes"].append(reply["echoes"])
                mine["expected"].append(reply["expected"])
                mine["delivered"].append(len(reply["latencies"]))
                results[server.name]["receivers_lost"] = reply["lost"]
                if phase == "paced":
                    mine["read"].extend(reply["latencies"])
                    mine["arrival"].extend(reply["arrival_latencies"])
                    mine["client"].append(reply["client_cpu"])
                else:
                    mine["burst_cpu"].append(cpu_of(server.pid) - cpu0)
                    mine["burst_delivered"].append(len(reply["latencies"]))
                await asyncio.sleep(0.5)
        for name, mine in pooled.items():
            read, arrival = sorted(mine["read"]), sorted(mine["arrival"])
            delivered = sum(mine["delivered"])
            results[name].update(
                p50_ms=percentile(read, 0.5) * 1000,
                p99_ms=percentile(read, 0.99) * 1000,
                arrival_p50_ms=percentile(arrival, 0.5) * 1000,
                arrival_p99_ms=percentile(arrival, 0.99) * 1000,
                missing=sum(mine["expected"]) - delivered,
                echoes=sum(mine["echoes"]),
                burst_cpu_us_per_delivered=sum(mine["burst_cpu"]) * 1e6 / max(1, sum(mine["burst_delivered"])),
                paced_client_cpu_worst_round=max(mine["client"]),
            )
    finally:
        for _, gen in gens:
            gen.stop()
    return results


async def cold_load(server: Server, size: int) -> dict[str, Any]:
    content = ("The quick brown fox jumps over the lazy dog. " * (size // 45 + 1))[:size]
    # REST bodies stop at 1,000,000 bytes: seed 900 kB there, add the rest as an edit over the socket.
    (note,) = server.new_notes(1, content[:900_000])
    writer = Editor(server, note)
    writer.doc = pycrdt.Doc()
    await writer.connect()
    async with asyncio.timeout(60):
        await writer.synced.wait()
    rest = writer.doc.get("content", type=pycrdt.Text)
    updates: list[bytes] = []
    writer.doc.observe(lambda e: updates.append(e.update))
    rest.insert(len(rest), content[900_000:])
    for update in updates:
        await writer.socket.send(b"\x00\x02" + varbytes(update))
    await asyncio.sleep(1)
    await writer.close()
    await asyncio.sleep(11.5)  # the room unloads: the first load below is cold
    timings = []
    for _ in range(3):
        t0 = time.perf_counter()
        editor = Editor(server, note)
        await editor.connect()
        async with asyncio.timeout(60):
            await editor.synced.wait()
        timings.append((time.perf_counter() - t0) * 1000)
        await editor.close()
        # Wait until the room is unloaded again, so each load is cold.
        await asyncio.sleep(11.5)
    return {"cold_load_1mb_ms": statistics.median(timings)}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    servers: list[Server] = []
    try:
        for name in args.servers.split(","):
            server = await asyncio.to_thread(STARTERS[name])
            servers.append(server)
            pin(server.pid, SERVER_CORE)
            results[name] = {}
        for n in args.editors:
            print(f"{n} editors on one note of each server", file=sys.stderr, flush=True)
            for name, values in (await one_note(servers, n, args)).items():
                results[name][f"one_note_{n}"] = values
        if args.notes:
            print(
                f"{args.notes} notes x {args.per_note} editors ({args.writers} typing) on each server",
                file=sys.stderr,
                flush=True,
            )
            for name, values in (await many_notes(servers, args)).items():
                results[name]["many_notes"] = values
        for server in servers:
            if server.name == "tandem" and args.cold_load:
                results[server.name]["cold"] = await cold_load(server, 1_000_000)
    finally:
        for server in servers:
            server.stop()
    return results


def report(results: dict[str, Any]) -> None:
    rows = []
    for name, scenarios in results.items():
        for scenario, values in scenarios.items():
            rows.append((name, scenario, values))
    for name, scenario, values in rows:
        shown = ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
        print(f"{name:18} {scenario:14} {shown}")
    if "tandem" in results:
        print("\nratios (other / tandem; > 1 means Tandem is better):")
        for name in results:
            if name == "tandem":
                continue
            for scenario, values in results[name].items():
                mine = results["tandem"].get(scenario, {})
                for key in (
                    "paced_p99_ms",
                    "paced_arrival_p99_ms",
                    "burst_cpu_us_per_delivered",
                    "one_write_cpu_us_per_delivered",
                    "rss_per_connection_kb",
                    "p99_ms",
                    "arrival_p99_ms",
                    "join_seconds",
                ):
                    if key in values and key in mine and mine[key]:
                        print(f"  {name:18} {scenario:14} {key:28} {values[key] / mine[key]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", default="tandem,hocuspocus,ywss,pycrdt-websocket")
    parser.add_argument("--editors", type=lambda s: [int(x) for x in s.split(",") if x], default=[50, 200, 1000])
    parser.add_argument("--paced", type=int, default=400, help="updates typed at 20/s, over all rounds")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds the paced typing is split into")
    parser.add_argument("--burst", type=int, default=500, help="updates sent back to back in each burst round")
    parser.add_argument("--burst-rounds", type=int, default=3, help="interleaved rounds of burst typing")
    parser.add_argument(
        "--one-write-rounds",
        type=int,
        default=2,
        help="rounds of --burst updates sent in one write (the server can fan them out at once)",
    )
    parser.add_argument("--notes", type=int, default=100, help="notes of the many-notes scenario (0: skip it)")
    parser.add_argument("--per-note", type=int, default=10, help="editors on each note of the many-notes scenario")
    parser.add_argument("--writers", type=int, default=10, help="of those, how many type")
    parser.add_argument("--note-rate", type=float, default=2.0, help="updates/s each writer types")
    parser.add_argument(
        "--note-seconds", type=float, default=20.0, help="paced typing time of the many-notes scenario, over all rounds"
    )
    parser.add_argument(
        "--note-burst", type=int, default=10, help="updates each writer types back to back in a many-notes burst round"
    )
    parser.add_argument("--no-cold-load", dest="cold_load", action="store_false")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    raise_fd_limit()
    pin(os.getpid(), CLIENT_CORE)
    results = asyncio.run(run(args))
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
