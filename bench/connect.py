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

    def on_message(self, client: Client, payload: bytes, binary: bool, now: float) -> None:
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
        return self.open_clients(urls, count, timeout)

    def close_all(self) -> None:
        super().close_all()
        self.acks.clear()

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


async def quiet(pids: list[int], timeout: float = 20.0) -> None:
    """Wait until the server processes spend under 2 % of a core over 0.25 s (closing sockets costs CPU too)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = cpu_seconds(pids)
        await asyncio.sleep(0.25)
        if cpu_seconds(pids) - before < 0.005:
            return


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


async def run(args: argparse.Namespace) -> str:
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="tandem-connect-") as tmp_name:
        tmp = Path(tmp_name)
        seed = await asyncio.to_thread(make_seed, tmp)
        tokens = await asyncio.to_thread(add_sessions, seed, args.sessions or args.sockets)
        trees = [(name, Path(path)) for name, path in (t.split("=", 1) for t in args.target)]
        targets: dict[str, Target] = {}
        gen = LoadGenClient(Connector, "connect-loadgen")
        try:
            for name, root in trees:
                targets[name] = await asyncio.to_thread(start_tree, name, root, seed, tmp)
            targets["uvicorn"] = await start_bare_uvicorn(tmp)
            targets["baseline"] = await start_baseline(tmp)
            names = list(targets)
            import httpx

            first_ws = targets[trees[0][0]].ws_urls[0]
            async with httpx.AsyncClient(base_url=first_ws.replace("ws://", "http://").removesuffix("/ws")) as http:
                me = (await http.get("/api/me", headers={"authorization": f"Bearer {tokens[0]}"})).json()
            second = f"room:project:{seed.px}" if args.room else f"report:project:{seed.px}:shared"
            channels = [f"project:{seed.px}:shared", second, f"user:{me['user']['id']}"]
            urls = {name: target.ws_urls for name, target in targets.items()}
            for name, _ in trees:
                urls[name] = [f"{targets[name].ws_urls[0]}?token={token}" for token in tokens]
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
    table = asyncio.run(run(args))
    print()
    print(table)
    print(
        f"\n(total {time.monotonic() - started:.0f}s, "
        f"1-min load average {load:.2f} before, {os.getloadavg()[0]:.2f} after)"
    )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
