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
- M notes of 3 editors each (one typing at 5/s), per server: latency and RSS per room.
- Tandem only: cold load of a 1 MB note (connect -> sync step 2 complete, room not in memory). The others keep
  notes in memory only (nothing to load cold).

Every update the typist sends carries a marker ``#NNNNNN;`` in its inserted text, so receivers match deliveries to
sends even when a server merges several updates into one frame. The receivers of the one-note scenario live in a
load-generator process per server (``bench/wsload.py``: one epoll loop, a minimal frame reader), pinned to the
client core with this controller; the servers are pinned to the other core. The typist and the many-notes editors
are asyncio ``websockets`` clients in this process, with a pycrdt document.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as PipeEnd
from pathlib import Path
from typing import Any

import httpx
import pycrdt
import websockets

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
PEERS = Path(__file__).resolve().parent / "notes_peers"
PYCRDT_VENV = ROOT / "var" / "bench" / "pycrdt-ws-venv"
MARKER = re.compile(rb"#(\d{6});")
PACED_RATE = 20.0
KEEPALIVE_EVERY = 20.0  # seconds between a silent editor's messages (see `Receivers.keepalive`)


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


def varuint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def varbytes(data: bytes) -> bytes:
    return varuint(len(data)) + data


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


class Receivers(EpollClients):
    """The receiving editors of one server, in the load-generator process (``bench/wsload.py``).

    Each sends (Hocuspocus: its auth message, then) sync step 1 with an empty state when it opens, answers the
    server's step 1 with an empty step 2, is live once it has the server's step 2, and records the wall-clock time
    at which each typed marker first reaches it.
    """

    commands = ("join", "begin", "collect", "close_all")

    def __init__(self, pipe: PipeEnd) -> None:
        super().__init__(pipe)
        self.prefix = b""
        self.hocuspocus = False
        self.arrivals: list[tuple[int, float]] = []
        self.seen: dict[int, int] = {}  # socket -> markers received in this phase
        self.messages = 0
        self.phase_cpu = 0.0
        self.phase_wall = 0.0

    def on_open(self, client: Client) -> None:
        if self.hocuspocus:
            client.ws.send_binary(self.prefix + b"\x02\x00" + varbytes(b""))  # auth with token ""
        client.send(self.prefix + b"\x00\x00" + varbytes(b"\x00"), binary=True)  # sync step 1, empty state

    def keepalive(self, client: Client, now: float) -> None:
        """Ask for the room's awareness every `KEEPALIVE_EVERY` seconds, as a live client says something at least
        that often (Hocuspocus closes a socket silent for 30 s with 4408; y-websocket clients renew their
        awareness every 15 s). A query is answered to the asker alone, so it adds no fan-out."""
        if now - client.last_ping >= KEEPALIVE_EVERY:
            client.last_ping = now
            client.send(self.prefix + b"\x03", binary=True)

    def on_message(self, client: Client, payload: bytes, binary: bool, now: float) -> None:
        skip = len(self.prefix)
        if not binary or len(payload) < skip + 2 or payload[skip] != 0:
            return  # awareness, auth answers, text
        kind = payload[skip + 1]
        if kind == 0:  # the server's step 1: answer with our (empty) state
            client.send(self.prefix + b"\x00\x01" + varbytes(b"\x00\x00"), binary=True)
            return
        if kind == 1:
            self.mark_live(client)
        self.messages += 1
        found = 0
        for match in MARKER.finditer(payload):
            self.arrivals.append((int(match.group(1)), now))
            found += 1
        if found:
            fd = client.sock.fileno()
            self.seen[fd] = self.seen.get(fd, 0) + found

    # -- commands -----------------------------------------------------------------------------------------------

    def join(self, url: str, count: int, prefix: bytes, hocuspocus: bool, timeout: float) -> dict[str, Any]:
        self.prefix, self.hocuspocus = prefix, hocuspocus
        return self.open_clients([url], count, timeout)

    def begin(self) -> None:
        self.arrivals.clear()
        self.seen.clear()
        self.messages = 0
        self.phase_cpu = time.process_time()
        self.phase_wall = time.monotonic()

    def collect(self, sent: dict[int, float], timeout: float) -> dict[str, Any]:
        """Read (bounded) until every live editor has every marker of ``sent``; the phase's deliveries."""
        deadline = time.monotonic() + timeout
        want = len(sent)
        while time.monotonic() < deadline and (len(self.seen) < self.live or min(self.seen.values(), default=0) < want):
            self.pump(0.02)
        latencies = array("d", (now - sent[seq] for seq, now in self.arrivals if seq in sent))
        return {
            "latencies": latencies,
            "expected": want * self.live,
            "messages": self.messages,
            "client_cpu": (time.process_time() - self.phase_cpu) / max(1e-9, time.monotonic() - self.phase_wall),
            "lost": self.lost,
            "live": self.live,
        }


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


async def wait_all(receivers: list[Editor], seqs: range, timeout: float) -> bool:
    try:
        async with asyncio.timeout(timeout):
            for editor in receivers:
                while not all(s in editor.arrivals for s in (seqs[0], seqs[-1])) or len(editor.arrivals) < len(seqs):
                    editor.seen.clear()
                    await editor.seen.wait()
    except TimeoutError:
        return False
    return True


# -- scenarios -----------------------------------------------------------------------------------------------


@dataclass
class Room:
    """One server's note under test in the one-note scenario: its receivers (a load-generator process) and typist."""

    server: Server
    gen: LoadGenClient
    typist: Editor
    receivers: int
    seq: int = 0
    paced: list[float] = field(default_factory=list)  # delivery latencies, seconds
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
            results[room.server.name].update(
                paced_p50_ms=percentile(paced, 0.5) * 1000,
                paced_p99_ms=percentile(paced, 0.99) * 1000,
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


async def many_notes(server: Server, notes: int, per_note: int, seconds: float) -> dict[str, Any]:
    names = server.new_notes(notes)
    rss_before = rss_bytes(server.pid)
    unsynced_before = UNSYNCED.get(server.name, 0)
    rooms: list[list[Editor]] = []
    for start in range(0, len(names), 30):  # rooms join concurrently, 30 at a time: one unsynced room waits once
        rooms += await asyncio.gather(*(join(server, name, per_note) for name in names[start : start + 30]))
    await asyncio.sleep(0.5)
    rss_after = rss_bytes(server.pid)
    rooms = [room for room in rooms if len(room) >= 2]
    for room in rooms:
        room[0].doc = pycrdt.Doc()
    sent: dict[tuple[int, int], float] = {}
    count = int(seconds * 5)

    async def typist(index: int, room: list[Editor]) -> None:
        await asyncio.sleep(index / notes / 5)
        start = time.perf_counter()
        for seq in range(count):
            await asyncio.sleep(max(0.0, start + seq / 5 - time.perf_counter()))
            sent[(index, seq)] = time.perf_counter()
            await room[0].type(seq)

    await asyncio.gather(*(typist(i, room) for i, room in enumerate(rooms)))
    await asyncio.gather(*(wait_all(room[1:], range(count), 30) for room in rooms))
    latencies = [
        (e.arrivals[s] - sent[(i, s)]) * 1000
        for i, room in enumerate(rooms)
        for e in room[1:]
        for s in range(count)
        if s in e.arrivals
    ]
    for room in rooms:
        for editor in room:
            await editor.close()
    return {
        "unsynced_editors": UNSYNCED.get(server.name, 0) - unsynced_before,
        "rooms_measured": len(rooms),
        "rss_per_room_with_3_sockets_kb": (rss_after - rss_before) / len(names) / 1024,
        "p50_ms": percentile(sorted(latencies), 0.5),
        "p99_ms": percentile(sorted(latencies), 0.99),
    }


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
        for server in servers:
            if server.name == "tandem" and args.cold_load:
                results[server.name]["cold"] = await cold_load(server, 1_000_000)
            print(f"{server.name}: {args.notes} notes x 3 editors", file=sys.stderr, flush=True)
            results[server.name]["many_notes"] = await many_notes(server, args.notes, 3, args.seconds)
            print(json.dumps({server.name: results[server.name]}), file=sys.stderr, flush=True)
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
                    "burst_cpu_us_per_delivered",
                    "one_write_cpu_us_per_delivered",
                    "rss_per_connection_kb",
                    "p99_ms",
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
    parser.add_argument("--notes", type=int, default=100, help="notes of the many-notes scenario")
    parser.add_argument("--seconds", type=float, default=4.0, help="typing time of the many-notes scenario")
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
