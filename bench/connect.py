"""Connect benchmark: server CPU to connect, authenticate and subscribe one socket to three channels, against a floor.

Run ``python -m bench.connect --help``. Results and their reading are in ``bench/README.md``.

What a socket does, on every target: open the WebSocket, send three subscribe frames (a customer's board,
its presence room and the customer's own channel: what the web client subscribes to when it opens a project;
``--no-room`` takes the project's KPI stream instead of the room, so no socket announces itself to the others), and
count as connected when all three ``subscribed`` answers arrived. Sockets open ``--concurrency`` at a time (a
reconnect storm, bounded), from a load-generator process pinned to the client core (``bench/wsload.py``); the
servers are pinned to the other core.

- ``tandem``: one node (memory broker) on a copy of a seeded SQLite workspace; the customer's session token in the
  URL (``TANDEM_WS_URL_TOKENS``, benchmarks only), so each socket is authenticated and each subscribe asks the
  policy. Per-user and per-IP socket caps are lifted: every socket here is one customer's, from one address.
- ``uvicorn``: a plain ASGI app (`bare_app`) under the same uvicorn and WebSocket protocol as Tandem, answering
  subscribes without a question: what the server Tandem runs in costs, before anything of Tandem's.
- ``baseline``: the bare ``websockets`` server of ``bench/fanout.py``, the floor of the other benchmarks.

Each round connects ``--sockets`` sockets to each target in turn (alternating which goes first), reads the
server's CPU (utime + stime from ``/proc``) before and after, then closes them all and waits for the server to go
quiet before the next target. Reported per round: CPU per socket, wall time for all, failures; then the median and
the worst round, and the ratio to the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import select
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection as PipeEnd
from pathlib import Path
from typing import Any

from bench.fanout import Seed, Target, _kill, _noop, make_seed, spawn, start_baseline
from bench.presence import start_target
from bench.wsload import (
    CLIENT_CORE,
    SERVER_CORE,
    Client,
    EpollClients,
    LoadGenClient,
    cpu_seconds,
    free_port,
    pin,
    quiet,
    raise_fd_limit,
    wait_for_port,
)
from server.live.uvicorn_socket import WS_PROTOCOL

AIM_MS = 1.0  # issue #23: connect + authenticate + subscribe to 3 channels, per socket


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The ``uvicorn`` floor: a plain ASGI WebSocket app under the same server as Tandem, answering subscribes as the
    hub does and asking nothing. What uvicorn itself costs per socket, below anything Tandem does."""
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        frame = json.loads(message.get("text") or "{}")
        if frame.get("type") == "subscribe":
            reply = {
                "type": "subscribed",
                "id": frame.get("id"),
                "channel": frame.get("channel"),
                "position": {"offset": 0, "epoch": "bare"},
                "recovered": False,
                "reload": False,
            }
            await send({"type": "websocket.send", "text": json.dumps(reply, separators=(",", ":"))})


async def start_bare_uvicorn(tmp: Path) -> Target:
    port = free_port()
    argv = [
        sys.executable, "-m", "uvicorn", "bench.connect:bare_app", "--host", "127.0.0.1", "--port", str(port),
        "--ws", WS_PROTOCOL, "--ws-per-message-deflate", "false", "--log-level", "warning",
    ]  # fmt: skip
    process = spawn(argv, tmp / "uvicorn.log")
    wait_for_port(port, 20)
    pin(process.pid, SERVER_CORE)
    target = Target("uvicorn", [f"ws://127.0.0.1:{port}/ws"], [process.pid], publish=lambda w, s: _noop())
    target.closers.append(lambda: _kill(process))
    return target


class Connector(EpollClients):
    """Clients that subscribe to ``channels`` when they open and count as live once every one is answered."""

    commands = ("connect", "close_all", "live_count")

    def __init__(self, pipe: PipeEnd) -> None:
        super().__init__(pipe)
        self.frames: list[bytes] = []
        self.acks: dict[int, int] = {}

    def on_open(self, client: Client) -> None:
        self.acks[client.sock.fileno()] = 0
        for frame in self.frames:
            client.send(frame)

    def on_message(self, client: Client, payload: bytes, binary: bool, now: float, arrived: float) -> None:
        for line in payload.split(b"\n"):
            if line.startswith(b'{"type":"subscribed"'):
                fd = client.sock.fileno()
                self.acks[fd] = self.acks.get(fd, 0) + 1
                if self.acks[fd] == len(self.frames):
                    self.mark_live(client)

    def keepalive(self, client: Client, now: float) -> None:
        if now - client.last_ping >= 30:
            client.last_ping = now
            client.send(b'{"type":"ping"}')

    def connect(
        self, urls: list[str], count: int, channels: list[str], concurrency: int, timeout: float
    ) -> dict[str, Any]:
        self.frames = [
            json.dumps({"type": "subscribe", "id": i + 1, "channel": c}, separators=(",", ":")).encode()
            for i, c in enumerate(channels)
        ]
        import bench.wsload as wsload

        wsload.CONNECT_CONCURRENCY = concurrency
        cpu = time.process_time()
        result = self.open_clients(urls, count, timeout)
        result["generator_busy"] = (time.process_time() - cpu) / max(result["seconds"], 1e-9)  # of one core
        return result

    def close_all(self) -> None:
        super().close_all()
        self.acks.clear()

    def live_count(self) -> int:
        return self.live


class StormClients(EpollClients):
    """``--storm``: sockets that keep their channels' positions, drop together and resume together.

    Each logical socket ``i`` (its client's ``tag``) subscribes to ``channels`` and keeps, per channel, the last
    ``(offset, epoch)`` it holds: from its ``subscribed`` answer, then from each event in order. After `drop_all`,
    `resume` opens every one again at once (at most ``concurrency`` handshakes in flight), subscribing with
    ``since`` its positions, as the web client does after a blip. A socket counts as **resumed** once every channel
    answered ``recovered`` and its events reached the channel's head (``heads``, read by a fresh socket after the
    missed events were published) with no gap and no duplicate. A socket the server closes (1013 busy, or any
    failure) reconnects after the web client's backoff (``web/src/live.ts``: 125-250 ms doubling, 15 s at most).
    """

    commands = ("open_all", "drop_all", "resume", "live_count")

    def __init__(self, pipe: PipeEnd) -> None:
        super().__init__(pipe)
        self.channels: list[str] = []
        self.urls: list[str] = []
        self.positions: list[dict[str, tuple[int, str]]] = []
        self.acks: dict[int, int] = {}  # per logical socket, answers to this connection's subscribes
        self.resuming = False
        self.heads: dict[str, int] = {}
        self.resumed: set[int] = set()
        self.recovered: dict[int, int] = {}
        self.reloads = 0
        self.gaps = 0
        self.duplicates = 0
        self.retries = 0
        self.events = 0  # in order, past the position held: missed events (while resuming) and live ones

    def on_open(self, client: Client) -> None:
        index = int(client.tag)
        self.acks[index] = 0
        self.recovered[index] = 0
        for n, channel in enumerate(self.channels):
            frame: dict[str, Any] = {"type": "subscribe", "id": n + 1, "channel": channel}
            held = self.positions[index].get(channel)
            if self.resuming and held is not None:
                frame["since"] = {"offset": held[0], "epoch": held[1]}
            client.send(json.dumps(frame, separators=(",", ":")).encode())

    def on_message(self, client: Client, payload: bytes, binary: bool, now: float, arrived: float) -> None:
        index = int(client.tag)
        held = self.positions[index]
        for line in payload.split(b"\n"):
            if not line:
                continue
            frame = json.loads(line)
            kind = frame.get("type")
            if kind == "subscribed":
                channel = frame["channel"]
                self.acks[index] += 1
                if frame.get("reload"):
                    self.reloads += 1
                if frame.get("recovered"):
                    self.recovered[index] += 1
                if not self.resuming or channel not in held:
                    position = frame["position"]
                    held[channel] = (int(position["offset"]), str(position["epoch"]))
            elif kind == "event":
                channel = frame["channel"]
                offset = int(frame["offset"])
                last = held.get(channel, (offset - 1, ""))[0]
                if offset <= last:
                    self.duplicates += 1
                    continue
                if offset > last + 1:
                    self.gaps += 1
                self.events += 1
                held[channel] = (offset, str(frame["epoch"]))
            else:
                continue
            self._check(client, index)

    def _check(self, client: Client, index: int) -> None:
        if self.acks[index] < len(self.channels) or client.state == "live":
            return
        if not self.resuming:
            self.mark_live(client)
            return
        held = self.positions[index]
        if self.recovered[index] == len(self.channels) and all(
            held.get(c, (-1, ""))[0] >= head for c, head in self.heads.items()
        ):
            self.resumed.add(index)
            self.mark_live(client)

    def keepalive(self, client: Client, now: float) -> None:
        if now - client.last_ping >= 30:
            client.last_ping = now
            client.send(b'{"type":"ping"}')

    def _start(self, index: int) -> None:
        client = Client(self.urls[index % len(self.urls)], str(index))
        self.clients[client.sock.fileno()] = client
        self.epoll.register(client.sock.fileno(), select.EPOLLOUT | select.EPOLLIN)

    def _run(self, count: int, concurrency: int, timeout: float) -> dict[str, Any]:
        """Open logical sockets ``0..count-1`` until each is live; a failed one retries after the backoff."""
        started = time.monotonic()
        cpu = time.process_time()
        deadline = started + timeout
        waiting = list(range(count))  # not open, due now
        later: list[tuple[float, int, int]] = []  # (due, index, attempt) of sockets backing off
        attempts: dict[int, int] = {}
        index_of: dict[int, int] = {}  # fd -> logical socket, of the clients in flight
        while self.live < count and time.monotonic() < deadline:
            now = time.monotonic()
            due = [item for item in later if item[0] <= now]
            if due:
                later = [item for item in later if item[0] > now]
                waiting += [index for _, index, _ in due]
            in_flight = sum(1 for c in self.clients.values() if c.state != "live")
            while waiting and in_flight < concurrency:
                index = waiting.pop()
                self._start(index)
                in_flight += 1
            before = {fd: int(c.tag) for fd, c in self.clients.items()}
            index_of.update(before)
            self.pump(0.02)
            for fd, index in before.items():
                if fd not in self.clients or self.clients[fd].tag != str(index):  # dropped: back off, retry
                    attempt = attempts.get(index, 0)
                    attempts[index] = attempt + 1
                    self.retries += 1
                    ceiling = min(15.0, 0.25 * 2**attempt)
                    later.append((time.monotonic() + ceiling / 2 + random.random() * ceiling / 2, index, attempt + 1))
        seconds = time.monotonic() - started
        busy = (time.process_time() - cpu) / max(seconds, 1e-9)
        return {"live": self.live, "seconds": seconds, "generator_busy": busy, "retries": self.retries}

    def open_all(
        self, urls: list[str], count: int, channels: list[str], concurrency: int, timeout: float
    ) -> dict[str, Any]:
        self.urls, self.channels, self.resuming = urls, channels, False
        self.positions = [{} for _ in range(count)]
        self.retries = 0
        return self._run(count, concurrency, timeout)

    def drop_all(self) -> None:
        self.close_all()

    def resume(self, heads: dict[str, int], concurrency: int, timeout: float) -> dict[str, Any]:
        self.resuming, self.heads = True, heads
        self.resumed.clear()
        self.reloads = self.gaps = self.duplicates = self.retries = self.events = 0
        result = self._run(len(self.positions), concurrency, timeout)
        missed = sum(1 for index in range(len(self.positions)) if index not in self.resumed)
        return {
            **result,
            "resumed": len(self.resumed),
            "not_resumed": missed,
            "reloads": self.reloads,
            "gaps": self.gaps,
            "duplicates": self.duplicates,
            "events": self.events,
        }

    def live_count(self) -> int:
        return self.live


@dataclass
class Round:
    target: str
    sockets: int
    failures: int
    seconds: float
    cpu: float

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu / max(1, self.sockets)


async def one_round(
    target: Target, gen: LoadGenClient, urls: list[str], args: argparse.Namespace, channels: list[str]
) -> Round:
    await quiet(target.server_pids)
    before = cpu_seconds(target.server_pids)
    result = await gen.call(
        "connect", urls, args.sockets, channels, args.concurrency, args.timeout, timeout=args.timeout + 30
    )
    cpu = cpu_seconds(target.server_pids) - before
    await gen.call("close_all")
    return Round(target.name, result["live"], result["failures"], result["seconds"], cpu)


FLOORS = ("uvicorn", "baseline")


def render(rounds: list[Round], names: list[str]) -> str:
    lines = [
        "| round | target | sockets | failed | connect all (s) | CPU per socket (ms) |",
        "|---|---|---|---|---|---|",
    ]
    for index, r in enumerate(rounds):
        lines.append(
            f"| {index // len(names) + 1} | {r.target} | {r.sockets} | {r.failures} | {r.seconds:.2f} "
            f"| {r.cpu_ms:.3f} |"
        )
    lines.append("")
    by = {name: [r for r in rounds if r.target == name] for name in names}
    lines.append("| target | CPU per socket median (ms) | worst (ms) | connect all median (s) | worst (s) |")
    lines.append("|---|---|---|---|---|")
    for name, rs in by.items():
        cpu = [r.cpu_ms for r in rs]
        wall = [r.seconds for r in rs]
        lines.append(
            f"| {name} | {statistics.median(cpu):.3f} | {max(cpu):.3f} "
            f"| {statistics.median(wall):.2f} | {max(wall):.2f} |"
        )
    lines.append("")
    for name in [n for n in names if n not in FLOORS]:
        for floor in ("baseline", "uvicorn"):
            cpu = [t.cpu_ms / f.cpu_ms for t, f in zip(by[name], by[floor], strict=True) if f.cpu_ms > 0]
            wall = [t.seconds / f.seconds for t, f in zip(by[name], by[floor], strict=True) if f.seconds > 0]
            lines.append(
                f"{name} / {floor} per round: CPU {', '.join(f'{x:.1f}x' for x in cpu)}; "
                f"connect all {', '.join(f'{x:.1f}x' for x in wall)}"
            )
        worst = max(r.cpu_ms for r in by[name])
        lines.append(
            f"{name}: aim <= {AIM_MS} ms of server CPU per socket, worst round {worst:.3f} ms: "
            + ("met" if worst <= AIM_MS else "not met")
        )
    return "\n".join(lines)


def add_sessions(seed: Seed, count: int) -> list[str]:
    """``count`` more sessions of the seeded customer in the template (each target's copy has them): a reconnect
    storm is many people's sessions, each read once at admission, not one session read again and again. Their
    ``last_seen_at`` lies ahead, so no admission is due to record a use (what a write on connect costs is apart)."""
    import datetime as dt

    from sqlmodel import select

    from server.db import Database, utcnow
    from server.models import AuthSession
    from server.security import new_token, token_hash

    async def add() -> list[str]:
        db = Database(f"sqlite:///{seed.template}")
        try:
            async with db.session() as session:
                hashed = token_hash(seed.customer_tokens[0])
                user_id = (
                    await session.exec(select(AuthSession.user_id).where(AuthSession.token_hash == hashed))
                ).one()
                now = utcnow()
                tokens = [new_token() for _ in range(count)]
                session.add_all(
                    AuthSession(
                        user_id=user_id,
                        token_hash=token_hash(token),
                        created_at=now,
                        last_seen_at=now + dt.timedelta(days=1),
                        expires_at=now + dt.timedelta(days=14),
                        user_agent="bench.connect",
                    )
                    for token in tokens
                )
                await session.commit()
            return tokens
        finally:
            await db.close()

    tokens = asyncio.run(add())
    with sqlite3.connect(seed.template) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return tokens


def start_tree(name: str, root: Path, seed: Seed, tmp: Path) -> Target:
    """One node (memory broker) of the Tandem tree at ``root`` on a copy of the seeded workspace."""
    started = start_target(name, root, seed, tmp, nodes=1)
    url = started.urls[0].split("?")[0]
    target = Target(name, [url], started.pids, publish=lambda w, s: _noop())
    target.closers.append(started.close)
    return target


async def start_targets(
    args: argparse.Namespace, seed: Any, token: str, tmp: Path, targets: dict[str, Target]
) -> list[str]:
    """Start a node of every ``--target`` tree, then the two floors, into ``targets`` (the caller closes them, also
    those started before one failed); return the three channels each socket subscribes to (the board, the presence
    room or a report, and the user's own, read as ``token``'s user)."""
    import httpx

    trees = [(name, Path(path)) for name, path in (t.split("=", 1) for t in args.target)]
    for name, root in trees:
        targets[name] = await asyncio.to_thread(start_tree, name, root, seed, tmp)
    targets["uvicorn"] = await start_bare_uvicorn(tmp)
    targets["baseline"] = await start_baseline(tmp)
    first_ws = targets[trees[0][0]].ws_urls[0]
    async with httpx.AsyncClient(base_url=first_ws.replace("ws://", "http://").removesuffix("/ws")) as http:
        me = (await http.get("/api/me", headers={"authorization": f"Bearer {token}"})).json()
    second = f"room:project:{seed.px}" if args.room else f"report:project:{seed.px}:shared"
    return [f"project:{seed.px}:shared", second, f"user:{me['user']['id']}"]


async def run(args: argparse.Namespace) -> str:
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="tandem-connect-") as tmp_name:
        tmp = Path(tmp_name)
        seed = await asyncio.to_thread(make_seed, tmp)
        tokens = await asyncio.to_thread(add_sessions, seed, args.sessions or args.sockets)
        targets: dict[str, Target] = {}
        gen = LoadGenClient(Connector, "connect-loadgen")
        try:
            channels = await start_targets(args, seed, tokens[0], tmp, targets)
            names = list(targets)
            # The floors take any socket; a Tandem node signs each in with its own session.
            urls = {
                name: target.ws_urls if name in FLOORS else [f"{target.ws_urls[0]}?token={token}" for token in tokens]
                for name, target in targets.items()
            }
            for index in range(args.rounds):
                order = names[index % len(names) :] + names[: index % len(names)]  # each goes first in turn
                done = {}
                for name in order:
                    done[name] = await one_round(targets[name], gen, urls[name], args, channels)
                    print(
                        f"round {index + 1} {name}: {done[name].cpu_ms:.3f} ms/socket, {done[name].seconds:.2f} s",
                        flush=True,
                    )
                rounds += [done[name] for name in names]
        finally:
            gen.stop()
            for target in targets.values():
                await target.close()
    return render(rounds, names)


async def heads_of(ws_url: str, token: str, channels: list[str]) -> dict[str, int]:
    """Each channel's newest offset, as a fresh socket is told when it subscribes."""
    from websockets.asyncio.client import connect

    heads: dict[str, int] = {}
    async with connect(f"{ws_url}?token={token}") as ws:
        for n, channel in enumerate(channels):
            await ws.send(json.dumps({"type": "subscribe", "id": n + 1, "channel": channel}))
        while len(heads) < len(channels):
            for line in str(await asyncio.wait_for(ws.recv(), 10)).split("\n"):
                frame = json.loads(line)
                if frame.get("type") == "subscribed":
                    heads[frame["channel"]] = int(frame["position"]["offset"])
    return heads


async def run_storm(args: argparse.Namespace) -> str:
    """``--storm N``: per round, each Tandem target's N sockets drop, miss ``--missed`` events and all resume at
    once; each floor accepts N sockets (and answers their subscribes) at the same concurrency."""
    import httpx

    n = args.storm
    lines = [
        "| round | target | sockets | resumed (not) | missed events got | reloads | gaps | dups | retries "
        "| all done (s) | x baseline | x uvicorn | server CPU (s) | generator busy |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="tandem-storm-") as tmp_name:
        tmp = Path(tmp_name)
        seed = await asyncio.to_thread(make_seed, tmp)
        tokens = await asyncio.to_thread(add_sessions, seed, args.sessions or n)
        targets: dict[str, Target] = {}
        gen = LoadGenClient(StormClients, "storm-loadgen")
        floor_gen = LoadGenClient(Connector, "storm-floor-loadgen")
        try:
            channels = await start_targets(args, seed, tokens[0], tmp, targets)
            names = list(targets)
            for index in range(args.rounds):
                order = names[index % len(names) :] + names[: index % len(names)]
                floor_seconds: dict[str, float] = {}
                done: dict[str, dict[str, Any]] = {}
                for name in order:
                    target = targets[name]
                    await quiet(target.server_pids)
                    if name in FLOORS:
                        before = cpu_seconds(target.server_pids)
                        reply = await floor_gen.call(
                            "connect", target.ws_urls, n, channels, args.storm_concurrency, args.timeout,
                            timeout=args.timeout + 30,
                        )  # fmt: skip
                        reply = {**reply, "cpu": cpu_seconds(target.server_pids) - before, "resumed": reply["live"]}
                        await floor_gen.call("close_all")
                        floor_seconds[name] = reply["seconds"]
                    else:
                        urls = [f"{target.ws_urls[0]}?token={token}" for token in tokens]
                        opened = await gen.call(
                            "open_all", urls, n, channels, args.concurrency, args.timeout, timeout=args.timeout + 30
                        )
                        if opened["live"] < n:
                            raise RuntimeError(f"{name}: only {opened['live']} of {n} sockets opened")
                        await gen.call("drop_all")
                        await quiet(target.server_pids)
                        base = target.ws_urls[0].replace("ws://", "http://").removesuffix("/ws")
                        headers = {"authorization": f"Bearer {seed.staff_token}"}
                        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=15) as http:
                            for k in range(args.missed):
                                task = seed.tasks[k % len(seed.tasks)]
                                answer = await http.patch(f"/api/tasks/{task}", json={"title": f"missed {index} {k}"})
                                answer.raise_for_status()
                        await asyncio.sleep(1.0)  # the outbox relay publishes right after the commit
                        heads = await heads_of(target.ws_urls[0], tokens[0], channels)
                        await quiet(target.server_pids)
                        before = cpu_seconds(target.server_pids)
                        reply = await gen.call(
                            "resume", heads, args.storm_concurrency, args.timeout, timeout=args.timeout + 30
                        )
                        reply["cpu"] = cpu_seconds(target.server_pids) - before
                        await gen.call("drop_all")
                    done[name] = reply
                    print(f"round {index + 1} {name}: {json.dumps(reply)}", flush=True)
                for name in names:
                    r = done[name]
                    results.setdefault(name, []).append(r)
                    x_base = r["seconds"] / floor_seconds["baseline"]
                    x_uv = r["seconds"] / floor_seconds["uvicorn"]
                    lines.append(
                        f"| {index + 1} | {name} | {n} | {r['resumed']} ({n - r['resumed']}) | {r.get('events', '')} "
                        f"| {r.get('reloads', '')} "
                        f"| {r.get('gaps', '')} | {r.get('duplicates', '')} | {r.get('retries', 0)} "
                        f"| {r['seconds']:.2f} | {x_base:.2f}x | {x_uv:.2f}x | {r['cpu']:.2f} "
                        f"| {100 * r['generator_busy']:.0f}% |"
                    )
        finally:
            gen.stop()
            floor_gen.stop()
            for target in targets.values():
                await target.close()
    lines.append("")
    for name in [x for x in results if x not in FLOORS]:
        worst = max(r["seconds"] for r in results[name])
        floors = [r["seconds"] for r in results["baseline"]]
        ratios = [r["seconds"] / f for r, f in zip(results[name], floors, strict=True)]
        complete = all(r["resumed"] == n for r in results[name])
        lines.append(
            f"{name}: aim all {n} resumed within 2x the baseline's accept time: per round "
            f"{', '.join(f'{x:.2f}x' for x in ratios)} (worst {worst:.2f} s), every socket resumed: {complete}: "
            + ("met" if complete and max(ratios) <= 2.0 else "not met")
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.connect", description=__doc__.split("\n")[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50, help="sockets opening at once")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--no-room",
        dest="room",
        action="store_false",
        help="subscribe to the project's KPI stream instead of its presence room (what presence costs, apart)",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to connect all sockets of a round")
    parser.add_argument(
        "--target",
        action="append",
        metavar="NAME=PATH",
        help="a Tandem source tree to measure (repeatable; default: this tree as 'tandem')",
    )
    parser.add_argument(
        "--storm",
        type=int,
        default=0,
        metavar="N",
        help="instead: N sockets drop, miss --missed events and all resume at once; against the floors' accept",
    )
    parser.add_argument("--missed", type=int, default=5, help="events published while a storm's sockets are away")
    parser.add_argument(
        "--storm-concurrency", type=int, default=1000, help="handshakes in flight at once while a storm resumes"
    )
    parser.add_argument(
        "--sessions",
        type=int,
        default=0,
        help="distinct customer sessions the sockets take in turn (default: one per socket, as a reconnect storm)",
    )
    args = parser.parse_args(argv)
    args.target = [
        f"{name}={Path(path).resolve()}"
        for name, path in (t.split("=", 1) for t in args.target or [f"tandem={Path(__file__).parent.parent}"])
    ]
    if any(name in FLOORS for name, _, _ in (t.partition("=") for t in args.target)):
        parser.error(f"a target may not be named {' or '.join(FLOORS)}")
    raise_fd_limit()
    pin(os.getpid(), CLIENT_CORE)
    load = os.getloadavg()[0]
    started = time.monotonic()
    table = asyncio.run(run_storm(args) if args.storm else run(args))
    print()
    print(table)
    print(
        f"\n(total {time.monotonic() - started:.0f}s, "
        f"1-min load average {load:.2f} before, {os.getloadavg()[0]:.2f} after)"
    )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
