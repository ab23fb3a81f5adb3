"""Presence benchmark: N sockets in one project's presence room, a fraction churning, frames and CPU per change.

Run ``python -m bench.presence --help``. Results and their reading are in ``bench/README.md``.

What runs (all on this machine, every step under a deadline):

- **Targets.** Each target is a Tandem source tree (``--target NAME=PATH``, default: this tree as ``this``): one
  uvicorn node started from that tree (``--nodes 2`` adds a throwaway ``redis-server`` and a second node; sockets
  are split over the nodes), on its own copy of one seeded SQLite workspace. Comparing the main branch against a
  change is two targets in one run (``--target before=/work/wt-base --target after=.``), so both see the same
  machine at the same time.
- **Sockets.** ``--procs`` load-generator processes per target (``bench/wsload.py``'s epoll loop) hold the N
  sockets, as the customer and viewer users (tokens in the URL, ``TANDEM_WS_URL_TOKENS``; the per-user socket caps
  are lifted). Each socket subscribes to ``room:project:{px}``, and once subscribed does what the web board does:
  sets its presence data (``{"bench": tag}``, a tag unique to the socket) and asks for the list
  (``presence_list`` with ``limit`` ``--list-limit``, which servers that do not know ``limit`` ignore).
- **Churn.** For ``--seconds`` per round, ``--rate`` actions a second in all (spread over the load generators,
  on a fixed schedule): an action picks a subscribed socket at random and either *cycles* it (unsubscribe, and
  once that is answered subscribe again, set presence, ask for the list: a ``left``, a ``joined`` and an
  ``updated``) or *sets* its presence data (an ``updated``), half and half. Presence changes are counted where they
  are caused (one per unsubscribe, subscribe and presence set).
- **Cores.** Servers (nodes, redis-server) pinned to core 0, controller and load generators to core 1.
- **Interleaving.** All targets are connected at once; each round runs every target's churn in turn, the order
  alternating between rounds.

What is measured, per target, size N and round (then median and worst over rounds):

- **presence frames**: ``presence``/``presence_diff`` frames received over all sockets, from the start of the churn
  until the room is quiet again (no presence frame for 1 s), and per presence change. ``presence_list`` replies are
  counted apart (they answer a request), with their bytes.
- **server CPU per change**: utime+stime (``/proc/<pid>/stat``) of the node(s) (and redis-server) over the same
  span, divided by the changes.
- **exactness**: once quiet, every socket's view (its last list, with every frame after it applied) is compared with
  the truth the load generators know (which sockets are subscribed, by tag). ``exact`` counts sockets whose view
  holds exactly the subscribed tags, once each; when a list reply was a sample (``truncated``, past
  ``--list-limit``), the view must hold no one who left (``ghosts`` 0) and the last ``count``/``users`` it was told
  must equal the truth (``count ok``).
- **client CPU**: the load generators' CPU share during the churn (near 100 % would mean they set the pace).
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
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as PipeEnd
from pathlib import Path
from typing import Any

from bench.fanout import PING_EVERY, Seed, make_seed
from bench.wsload import (
    CLIENT_CORE,
    SERVER_CORE,
    Client,
    EpollClients,
    LoadGenClient,
    cpu_seconds,
    free_port,
    node_settings,
    pin,
    raise_fd_limit,
    wait_for_port,
)

ROOT = Path(__file__).resolve().parent.parent
QUIET_SECONDS = 1.0
SETTLE_TIMEOUT = 90.0


# -- load generator (its own process) ------------------------------------------------------------------------


class PresenceLoad(EpollClients):
    """Sockets in one presence room; each keeps its view of who is there, built from the frames it receives."""

    commands = ("connect", "churn", "settle", "truth", "check", "close_all")

    def __init__(self, pipe: PipeEnd) -> None:
        super().__init__(pipe)
        self.room = ""
        self.list_limit = 0
        self.gen = ""
        self.count = 0
        self.state: dict[int, str] = {}  # fd -> "joining" | "live" | "leaving"
        self.view: dict[int, dict[str, str | None]] = {}  # fd -> client_id -> bench tag (None until known)
        self.told: dict[int, tuple[int, int] | None] = {}  # fd -> last (count, users) the server told it
        self.sampled: dict[int, bool] = {}  # fd -> its last list reply was a sample
        self.counting = False
        self.changes = 0
        self.presence_frames = 0
        self.presence_bytes = 0
        self.list_frames = 0
        self.list_bytes = 0
        self.last_presence_at = 0.0
        self.next_id = 10
        self.sets = 0

    # -- socket events ----------------------------------------------------------------------------------------

    def on_open(self, client: Client) -> None:
        fd = client.sock.fileno()
        client.tag = f"{self.gen}-{self.count}"
        self.count += 1
        self.view[fd] = {}
        self.told[fd] = None
        self.sampled[fd] = False
        self._subscribe(client)

    def keepalive(self, client: Client, now: float) -> None:
        if now - client.last_ping >= PING_EVERY:
            client.last_ping = now
            client.send(b'{"type":"ping"}')

    def _send(self, client: Client, frame: dict[str, Any]) -> None:
        client.send(json.dumps(frame, separators=(",", ":")).encode())

    def _subscribe(self, client: Client) -> None:
        self.state[client.sock.fileno()] = "joining"
        if self.counting:
            self.changes += 1  # joined
        self._send(client, {"type": "subscribe", "id": 1, "channel": self.room})

    def _set(self, client: Client) -> None:
        self.sets += 1
        if self.counting:
            self.changes += 1  # updated
        self._send(client, {"type": "presence", "channel": self.room, "data": {"bench": client.tag, "n": self.sets}})

    def on_message(self, client: Client, payload: bytes, binary: bool, now: float, arrived: float) -> None:
        fd = client.sock.fileno()
        for line in payload.split(b"\n"):
            if line.startswith(b'{"type":"presence"') or line.startswith(b'{"type":"presence_diff"'):
                self.presence_frames += 1
                self.presence_bytes += len(line)
                self.last_presence_at = now
                self._apply(fd, json.loads(line))
            elif line.startswith(b'{"type":"presence_list"'):
                self.list_frames += 1
                self.list_bytes += len(line)
                self._apply_list(fd, json.loads(line))
            elif line.startswith(b'{"type":"subscribed"'):
                self.state[fd] = "live"
                self.mark_live(client)
                self._set(client)
                list_frame: dict[str, Any] = {"type": "presence_list", "id": 2, "channel": self.room}
                if self.list_limit:
                    list_frame["limit"] = self.list_limit
                self._send(client, list_frame)
            elif line.startswith(b'{"type":"unsubscribed"'):
                self.view[fd] = {}  # what a client does when it leaves a room
                self.told[fd] = None
                self._subscribe(client)
            elif line.startswith(b'{"type":"error"'):
                raise OSError(f"error frame: {line[:200]!r}")

    @staticmethod
    def _tag(info: dict[str, Any]) -> str | None:
        data = info.get("data") or {}
        return data.get("bench")

    def _apply(self, fd: int, frame: dict[str, Any]) -> None:
        view = self.view[fd]
        if self.state.get(fd) != "live":
            return  # not in the room (or not yet): what a client does is ignore it
        if frame["type"] == "presence":  # one change per frame (protocol 1)
            for kind in ("joined", "updated"):
                if kind in frame:
                    view[frame[kind]["client_id"]] = self._tag(frame[kind])
            if "left" in frame:
                view.pop(frame["left"]["client_id"], None)
            return
        for info in frame.get("left", ()):  # a batched diff (protocol 2)
            view.pop(info["client_id"], None)
        for info in [*frame.get("joined", ()), *frame.get("updated", ())]:
            view[info["client_id"]] = self._tag(info)
        if "count" in frame:
            self.told[fd] = (frame["count"], frame["users"])

    def _apply_list(self, fd: int, frame: dict[str, Any]) -> None:
        self.view[fd] = {c["client_id"]: self._tag(c) for c in frame["clients"]}
        self.sampled[fd] = bool(frame.get("truncated"))
        self.told[fd] = (frame["count"], frame["users"]) if "count" in frame else None

    # -- commands ---------------------------------------------------------------------------------------------

    def connect(self, urls: list[str], count: int, room: str, list_limit: int, gen: str) -> dict[str, Any]:
        self.room, self.list_limit, self.gen = room, list_limit, gen
        return self.open_clients(urls, count, 240.0)

    def churn(self, seconds: float, rate: float, seed: int) -> dict[str, Any]:
        """Act ``rate`` times a second for ``seconds`` (see the module docstring); count frames from the start."""
        rng = random.Random(seed)
        self.counting = True
        self.changes = self.presence_frames = self.presence_bytes = self.list_frames = self.list_bytes = 0
        cpu0, started = time.process_time(), time.monotonic()
        next_action = started
        while (now := time.monotonic()) < started + seconds:
            while next_action <= now:
                next_action += 1.0 / rate
                live = [c for c in self.clients.values() if self.state.get(c.sock.fileno()) == "live"]
                if not live:
                    continue
                client = rng.choice(live)
                try:
                    if rng.random() < 0.5:
                        self.state[client.sock.fileno()] = "leaving"
                        self.changes += 1  # left
                        self._send(client, {"type": "unsubscribe", "id": 3, "channel": self.room})
                    else:
                        self._set(client)
                except OSError:
                    self.drop(client)
            self.pump(max(0.0, min(0.05, next_action - time.monotonic())))
        return {"cpu": time.process_time() - cpu0, "wall": time.monotonic() - started}

    def settle(self, quiet: float, timeout: float) -> dict[str, Any]:
        """Read until no presence frame came for ``quiet`` seconds and nobody is mid-cycle; return the counts."""
        cpu0, started = time.process_time(), time.monotonic()
        self.last_presence_at = max(self.last_presence_at, time.time())
        while time.monotonic() - started < timeout:
            self.pump(0.05)
            busy = any(s != "live" for fd, s in self.state.items() if fd in self.clients)
            if not busy and time.time() - self.last_presence_at >= quiet:
                break
        self.counting = False
        return {
            "changes": self.changes,
            "presence_frames": self.presence_frames,
            "presence_bytes": self.presence_bytes,
            "list_frames": self.list_frames,
            "list_bytes": self.list_bytes,
            "lost": self.lost,
            "cpu": time.process_time() - cpu0,
            "settle_wall": time.monotonic() - started,
        }

    def truth(self) -> list[str]:
        return [c.tag for fd, c in self.clients.items() if self.state.get(fd) == "live"]

    def check(self, truth: list[str]) -> dict[str, Any]:
        expected = sorted(truth)
        users = 2  # the sockets are the customer's and the viewer's
        result: dict[str, Any] = {"sockets": 0, "exact": 0, "sampled": 0, "ghosts": 0, "count_ok": 0, "untold": 0}
        known = set(expected)
        for fd in self.clients:
            if self.state.get(fd) != "live":
                continue
            result["sockets"] += 1
            tags = sorted(str(t) for t in self.view[fd].values())
            result["ghosts"] += sum(1 for t in tags if t not in known)
            told = self.told[fd]
            if told is None:
                result["untold"] += 1
            elif told == (len(expected), min(users, len(expected))):
                result["count_ok"] += 1
            if self.sampled[fd]:
                result["sampled"] += 1
            elif tags == expected:
                result["exact"] += 1
            elif os.environ.get("BENCH_PRESENCE_DEBUG") and "example" not in result:
                extra = sorted(set(tags) - known)[:5]
                missing = sorted(known - set(tags))[:5]
                example = f"{len(tags)} seen, {len(expected)} here; extra {extra}, missing {missing}, told {told}"
                result["example"] = example
        return result


# -- servers ------------------------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    root: Path
    urls: list[str] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    gens: list[LoadGenClient] = field(default_factory=list)

    def close(self) -> None:
        for gen in self.gens:
            gen.stop()
        for process in reversed(self.processes):
            if process.poll() is None:
                process.kill()
                process.wait(10)


def _spawn(argv: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=out)
    return process


def start_target(name: str, root: Path, seed: Seed, tmp: Path, nodes: int) -> Target:
    """Node(s) of the Tandem tree at ``root`` on a copy of the seeded workspace (and a redis-server for two)."""
    import httpx

    target = Target(name, root)
    work = tmp / name
    work.mkdir()
    shutil.copy(seed.template, work / "tandem.db")
    env = {**os.environ, "PYTHONPATH": str(root), **node_settings(f"sqlite:///{work / 'tandem.db'}", work)}
    if nodes > 1:
        port = free_port()
        redis = _spawn(
            ["/usr/bin/redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            ROOT,
            dict(os.environ),
            work / "redis.log",
        )
        target.processes.append(redis)
        wait_for_port(port, 10)
        pin(redis.pid, SERVER_CORE)
        target.pids.append(redis.pid)
        env["TANDEM_REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    for index in range(nodes):
        port = free_port()
        argv = [sys.executable, "-m", "uvicorn", "--factory", "server.main:create", "--host", "127.0.0.1"]
        argv += ["--port", str(port), "--ws-per-message-deflate", "false", "--log-level", "warning"]
        node_env = {**env, "TANDEM_BASE_URL": f"http://127.0.0.1:{port}"}
        process = _spawn(argv, root, node_env, work / f"node{index}.log")
        target.processes.append(process)
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{name} node {index} did not start: see {work / f'node{index}.log'}")
            time.sleep(0.1)
        pin(process.pid, SERVER_CORE)
        target.pids.append(process.pid)
        target.urls += [f"ws://127.0.0.1:{port}/ws?token={token}" for token in seed.customer_tokens]
    return target


# -- one round -----------------------------------------------------------------------------------------------


async def churn_round(target: Target, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    gens = target.gens
    cpu0 = cpu_seconds(target.pids)
    wall0 = time.monotonic()
    churned = await asyncio.gather(
        *(
            g.call("churn", args.seconds, args.rate / len(gens), seed + i, timeout=args.seconds + 60)
            for i, g in enumerate(gens)
        )
    )
    settled = await asyncio.gather(
        *(g.call("settle", QUIET_SECONDS, SETTLE_TIMEOUT, timeout=SETTLE_TIMEOUT + 30) for g in gens)
    )
    cpu = cpu_seconds(target.pids) - cpu0
    wall = time.monotonic() - wall0
    truth: list[str] = []
    for gen in gens:
        truth += await gen.call("truth")
    checks = await asyncio.gather(*(g.call("check", truth, timeout=120) for g in gens))
    total: dict[str, Any] = {k: sum(s[k] for s in settled) for k in settled[0] if k not in ("settle_wall", "cpu")}
    total.update({k: sum(c[k] for c in checks) for k in checks[0] if k != "example"})
    for c in checks:
        if "example" in c:
            print(f"    {target.name}: {c['example']}", flush=True)
    total["server_cpu"] = cpu
    total["wall"] = wall
    total["present"] = len(truth)
    total["client_cpu"] = sum(c["cpu"] for c in churned) / max(1e-9, max(c["wall"] for c in churned))
    return total


def per_change(r: dict[str, Any]) -> tuple[float, float]:
    changes = max(1, r["changes"])
    return r["presence_frames"] / changes, 1e3 * r["server_cpu"] / changes


async def run(args: argparse.Namespace) -> str:
    targets = [(name, Path(path)) for name, path in (t.split("=", 1) for t in args.target)]
    sizes = [int(s) for s in args.sizes.split(",")]
    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tandem-presence-") as tmp_name:
        tmp = Path(tmp_name)
        seed = await asyncio.to_thread(make_seed, tmp)
        room = f"room:project:{seed.px}"
        running: list[Target] = []
        try:
            for name, root in targets:
                print(f"{name}: starting from {root}", flush=True)
                running.append(await asyncio.to_thread(start_target, name, root, seed, tmp, args.nodes))
            for size in sizes:
                for target in running:
                    target.gens = [
                        LoadGenClient(PresenceLoad, f"presence-{target.name}-{i}") for i in range(args.procs)
                    ]
                    shares = [size // args.procs + (1 if i < size % args.procs else 0) for i in range(args.procs)]
                    for i, (gen, share) in enumerate(zip(target.gens, shares, strict=True)):
                        reply = await gen.call(
                            "connect", target.urls, share, room, args.list_limit, f"{target.name}{i}", timeout=300
                        )
                        if reply["live"] != share:
                            raise RuntimeError(f"{target.name}: {reply['live']} of {share} sockets connected")
                    for gen in target.gens:
                        await gen.call("settle", QUIET_SECONDS, SETTLE_TIMEOUT, timeout=SETTLE_TIMEOUT + 30)
                    print(f"  {target.name}: {size} sockets in {room}", flush=True)
                results: dict[str, list[dict[str, Any]]] = {t.name: [] for t in running}
                for index in range(args.rounds):
                    order = running if index % 2 == 0 else running[::-1]
                    for target in order:
                        r = await churn_round(target, args, seed=1000 * index + size)
                        results[target.name].append(r)
                        frames, cpu_ms = per_change(r)
                        print(
                            f"  {target.name} N={size} round {index + 1}: {r['changes']} changes, "
                            f"{r['presence_frames']} presence frames ({frames:.1f}/change), "
                            f"{cpu_ms:.2f} ms server CPU/change, {r['list_frames']} lists "
                            f"({r['list_bytes'] / 1e6:.1f} MB), exact {r['exact']}/{r['sockets']} "
                            f"(sampled {r['sampled']}, ghosts {r['ghosts']}, counts ok {r['count_ok']}), "
                            f"lost {r['lost']}, client CPU {100 * r['client_cpu']:.0f}%, {r['wall']:.1f}s",
                            flush=True,
                        )
                        await asyncio.sleep(0.5)
                for target in running:
                    rows += render_rows(target.name, size, results[target.name])
                    for gen in target.gens:
                        gen.stop()
                    target.gens = []
        finally:
            for target in running:
                target.close()
    return "\n".join(HEADER + rows)


HEADER = [
    "| target | N | round | changes | presence frames | frames/change | KB presence | lists (MB) "
    "| server CPU ms/change | exact / sockets (sampled, ghosts, counts ok) | client CPU |",
    "|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|",
]


def render_rows(name: str, size: int, rounds: list[dict[str, Any]]) -> list[str]:
    rows = []
    for index, r in enumerate(rounds):
        frames, cpu_ms = per_change(r)
        rows.append(
            f"| {name} | {size} | {index + 1} | {r['changes']} | {r['presence_frames']} | {frames:.1f} | "
            f"{r['presence_bytes'] / 1e3:,.0f} | {r['list_frames']} ({r['list_bytes'] / 1e6:.1f}) | {cpu_ms:.2f} | "
            f"{r['exact']} / {r['sockets']} ({r['sampled']}, {r['ghosts']}, {r['count_ok']}) | "
            f"{100 * r['client_cpu']:.0f}% |"
        )
    fpc = [per_change(r)[0] for r in rounds]
    cpus = [per_change(r)[1] for r in rounds]
    rows.append(
        f"| **{name}** | {size} | median (worst) | | | **{statistics.median(fpc):.1f}** ({max(fpc):.1f}) | | | "
        f"**{statistics.median(cpus):.2f}** ({max(cpus):.2f}) | | |"
    )
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.presence", description=__doc__.split("\n")[0])
    parser.add_argument("--target", action="append", help="NAME=PATH of a Tandem tree (repeat); default this tree")
    parser.add_argument("--sizes", default="300,1000", help="sockets in the room, comma separated")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved churn rounds per size")
    parser.add_argument("--seconds", type=float, default=15.0, help="churn per round")
    parser.add_argument("--rate", type=float, default=10.0, help="actions a second (half cycles, half sets)")
    parser.add_argument("--procs", type=int, default=2, help="load-generator processes per target")
    parser.add_argument("--nodes", type=int, default=1, help="1: memory broker; 2: two nodes on a redis-server")
    parser.add_argument("--list-limit", type=int, default=100, help="the 'limit' of presence_list (0: none)")
    args = parser.parse_args(argv)
    args.target = [
        f"{name}={Path(path).resolve()}" for name, path in (t.split("=", 1) for t in args.target or [f"this={ROOT}"])
    ]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    raise_fd_limit()
    pin(os.getpid(), CLIENT_CORE)
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    table = asyncio.run(run(args))
    print()
    print(table)
    print(
        f"\n(total {time.monotonic() - started:.0f}s, {os.cpu_count()} cores, rate {args.rate}/s for {args.seconds}s "
        f"a round, {args.nodes} node(s), 1-min load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after)"
    )


if __name__ == "__main__":
    main()
