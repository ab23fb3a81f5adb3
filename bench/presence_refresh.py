"""Presence heartbeat benchmark: what one node's heartbeat of N presence entries costs Redis, source trees interleaved.

Run ``python -m bench.presence_refresh --help``. Results and their reading are in ``bench/README.md``.

    .venv/bin/python -m bench.presence_refresh --target before=/work/wt-before --target after=.
    .venv/bin/python -m bench.presence_refresh --target before=/work/wt-before --target after=. --cluster

What runs: one real Redis (``--redis-url``, default the machine's 127.0.0.1:6379; a ``redis+cluster://`` URL
measures a Redis Cluster, its counters summed over the primaries; ``--cluster`` starts a throwaway three-primary one,
tests/conftest.py's, with AOF off), every key under a prefix unique to the run and target (deleted at the end). Each
target is a source tree: one process per target, started with that tree on its Python path, plays a node: N
`channels.connection.Connection` objects on a transport that sends nothing, each joined to one presence room
(``--rooms`` rooms, round-robin) through the tree's own `channels.hub_presence.HubPresence`, and heartbeats them when
told to, as the hub's housekeeping does every ttl/3. No sockets are opened. Both nodes stay live, so both see the
same store state.

Each round runs one heartbeat of each target, the order alternating between rounds, after one warm-up heartbeat of
each. Measured around each heartbeat, from the Redis server:

- **scripts**: ``EVALSHA`` (and ``EVAL``) calls in ``INFO commandstats``: the scripts the heartbeat costs Redis.
- **commands**: ``INFO commandstats`` calls of every command, minus the two ``INFO`` calls of the measurement itself;
  the commands a script runs from Lua are counted too, so this is the work inside the scripts as well.
- **Redis CPU**: ``used_cpu_user + used_cpu_sys`` of ``INFO cpu``.

The Redis server is shared: other clients' commands and CPU during the heartbeat are counted too. An idle window
per round (``--idle`` seconds, no heartbeat) measures that background rate, printed beside the results, so it can
be subtracted. Also measured: the heartbeat's wall time and the node process's CPU (client side).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from channels.backends.redis_cluster import redis_client

TTL_SECONDS = 30.0  # the default TANDEM_PRESENCE_TTL_SECONDS: a heartbeat every 10 s

# A node, run by each tree's own Python path; only what every tree since the batched heartbeat has (a join, a leave,
# a heartbeat). Prints "ready" once its entries are stored, then per line on stdin ("beat" or "churn") one heartbeat
# or one leave and join again of every entry: "wall cpu".
NODE = """
import asyncio, sys, time
from channels.backends.memory import MemoryBroker
from channels.backends.redis_presence import RedisPresence
from channels.connection import Connection, Subscription
from channels.hub_presence import HubPresence, default_describe

class Silent:
    async def send_text(self, text): return None
    def write_frame(self, frame): return True
    async def close(self, code, reason): return None

async def main(url, prefix, entries, rooms, ttl):
    manager = RedisPresence(url, prefix)
    hub = HubPresence(manager, MemoryBroker(), ttl, default_describe, flush_seconds=0.2)
    conns = []
    for n in range(entries):
        conn = Connection(Silent(), f"user-{n % 997}", connection_id=f"c-{n}")
        channel = f"room:project:{n % rooms}"
        conn.subscriptions[channel] = Subscription(channel, live=True)
        conns.append(conn)
    async def join_all():
        for start in range(0, entries, 50):
            await asyncio.gather(*(hub.join(c, s) for c in conns[start:start + 50] for s in c.subscriptions.values()))

    async def churn():  # every socket leaves its room and joins it again: what a reconnecting node costs
        for start in range(0, entries, 50):
            await asyncio.gather(*(hub.leave(name, s.presence) for c in conns[start:start + 50]
                                   for name, s in c.subscriptions.items()))
        await join_all()

    await join_all()
    print("ready", flush=True)
    for line in sys.stdin:  # blocking between commands: nothing else runs here
        wall, cpu = time.perf_counter(), time.process_time()
        await (churn() if line.strip() == "churn" else hub.heartbeat(conns))
        print(f"{time.perf_counter() - wall} {time.process_time() - cpu}", flush=True)
    await manager.close()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])))
"""


class Node:
    """One target's node process."""

    def __init__(self, name: str, tree: Path, url: str, prefix: str, entries: int, rooms: int) -> None:
        self.name = name
        self._args = (sys.executable, "-c", NODE, url, prefix, str(entries), str(rooms), str(TTL_SECONDS))
        self._env = {**os.environ, "PYTHONPATH": str(tree)}
        self._tree = tree  # also its working directory: ``-c`` puts that first on the path
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, timeout: float = 300) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self._args, env=self._env, cwd=self._tree, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        assert (await asyncio.wait_for(self._line(), timeout)) == "ready", f"{self.name} did not start"

    async def _line(self) -> str:
        assert self.process is not None and self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name}'s node exited (code {await self.process.wait()})")
        return line.decode().strip()

    async def do(self, command: str, timeout: float = 300) -> tuple[float, float]:
        """One ``beat`` or ``churn``: (wall seconds, the node's CPU seconds)."""
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(f"{command}\n".encode())
        await self.process.stdin.drain()
        wall, cpu = (await asyncio.wait_for(self._line(), timeout)).split()
        return float(wall), float(cpu)

    async def stop(self) -> None:
        if self.process is not None and self.process.stdin is not None:
            self.process.stdin.close()
            await asyncio.wait_for(self.process.wait(), 30)


@dataclass
class Sample:
    scripts: int
    commands: int
    redis_cpu: float
    wall: float
    client_cpu: float


async def server_counters(servers: list[Redis]) -> tuple[int, int, float]:
    """(scripts run so far, commands served so far, Redis CPU seconds so far), summed over ``servers``."""
    scripts, calls, cpu_seconds = 0, 0, 0.0
    for server in servers:
        stats = await server.info("commandstats")
        cpu = await server.info("cpu")
        calls += sum(int(value["calls"]) for value in stats.values())
        scripts += sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval"))
        cpu_seconds += float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])
    return scripts, calls, cpu_seconds


async def measure(servers: list[Redis], node: Node | None, command: str = "beat", idle: float = 0.0) -> Sample:
    """Redis's counters around one ``command`` of ``node`` (or, with None, an idle window of ``idle`` seconds)."""
    scripts0, calls0, cpu0 = await server_counters(servers)
    if node is None:
        started = time.perf_counter()
        await asyncio.sleep(idle)
        wall, client = time.perf_counter() - started, 0.0
    else:
        wall, client = await node.do(command)
    scripts1, calls1, cpu1 = await server_counters(servers)
    infos = 2 * len(servers)  # the INFOs of server_counters
    return Sample(scripts1 - scripts0, calls1 - calls0 - infos, cpu1 - cpu0, wall, client)


async def primaries(client: Redis | RedisCluster) -> list[Redis]:
    """A plain client per server to read counters from: the server itself, or every primary of the cluster."""
    if isinstance(client, Redis):
        return [client]
    await client.initialize()
    return [Redis(host=node.host, port=int(node.port)) for node in client.get_primaries()]


async def run(args: argparse.Namespace) -> str:
    redis = redis_client(args.redis_url)
    servers = await primaries(redis)
    prefix = f"bench:presence-refresh:{uuid.uuid4().hex[:8]}:"
    targets: list[tuple[str, Path]] = args.targets
    rows: list[str] = []
    churn_rows: list[str] = []
    try:
        for rooms in [int(r) for r in args.rooms.split(",")]:
            nodes = [
                Node(name, tree, args.redis_url, f"{prefix}{name}:{rooms}:", args.entries, rooms)
                for name, tree in targets
            ]
            try:
                for node in nodes:
                    await node.start()
                    await node.do("beat")  # warm-up
                samples: dict[str, list[Sample]] = {node.name: [] for node in nodes}
                churns: dict[str, list[Sample]] = {node.name: [] for node in nodes}
                idle: list[Sample] = []
                for index in range(args.rounds):
                    for node in nodes if index % 2 == 0 else nodes[::-1]:
                        samples[node.name].append(await measure(servers, node))
                        if args.churn:
                            churns[node.name].append(await measure(servers, node, "churn"))
                    idle.append(await measure(servers, None, idle=args.idle))
                    line = ", ".join(
                        f"{name} {s.scripts} scripts {s.commands} commands {1e3 * s.redis_cpu:.1f} ms Redis CPU "
                        f"{1e3 * s.wall:.0f} ms wall"
                        for name, s in ((n, samples[n][-1]) for n in samples)
                    )
                    print(
                        f"  rooms={rooms} round {index + 1}: {line}; idle {args.idle}s: {idle[-1].commands} commands "
                        f"{1e3 * idle[-1].redis_cpu:.1f} ms Redis CPU",
                        flush=True,
                    )
            finally:
                for node in nodes:
                    await node.stop()
            rows += render(args.entries, rooms, samples, idle, args.idle)
            if args.churn:
                churn_rows += render(args.entries, rooms, churns, idle, args.idle)
    finally:
        for server in servers:  # each server's own keys (a cluster's are spread over its primaries)
            keys = [key async for key in server.scan_iter(match=f"{prefix}*", count=1000)]
            for start in range(0, len(keys), 1000):
                chunk = keys[start : start + 1000]
                if server is redis:
                    await server.delete(*chunk)
                else:  # a cluster node deletes one slot's keys at a time
                    async with server.pipeline(transaction=False) as pipe:
                        for key in chunk:
                            pipe.delete(key)
                        await pipe.execute()
            if server is not redis:
                await server.aclose()
        await redis.aclose()
    churned = ["", "Every entry leaving and joining again (one leave and one join each, 50 at a time):", ""]
    churn_header = [HEADER[0].replace("/ heartbeat", "/ churn of all"), HEADER[1]]
    return "\n".join(HEADER + rows + (churned + churn_header + churn_rows if churn_rows else []))


HEADER = [
    "| target | entries | rooms | scripts / heartbeat | Redis commands / heartbeat | Redis CPU ms / heartbeat "
    "| Redis CPU % of a core (every 10 s) | wall ms | client CPU ms "
    "| background during the heartbeat (commands, CPU ms) |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
]


def render(entries: int, rooms: int, samples: dict[str, list[Sample]], idle: list[Sample], idle_s: float) -> list[str]:
    rows = []
    cmd_rate = statistics.median(s.commands / idle_s for s in idle)
    cpu_rate = statistics.median(s.redis_cpu / idle_s for s in idle)
    for name, got in samples.items():

        def stat(values: list[float], fmt: str) -> str:
            return f"{format(statistics.median(values), fmt)} ({format(max(values), fmt)})"

        wall = statistics.median(s.wall for s in got)
        rows.append(
            f"| {name} | {entries:,} | {rooms:,} | {stat([s.scripts for s in got], ',.0f')} | "
            f"{stat([s.commands for s in got], ',.0f')} | "
            f"{stat([1e3 * s.redis_cpu for s in got], '.1f')} | {stat([10 * s.redis_cpu for s in got], '.2f')} | "
            f"{stat([1e3 * s.wall for s in got], '.0f')} | {stat([1e3 * s.client_cpu for s in got], '.0f')} | "
            f"~{cmd_rate * wall:,.0f}, ~{1e3 * cpu_rate * wall:.1f} |"
        )
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.presence_refresh", description=__doc__.split("\n")[0])
    parser.add_argument("--target", action="append", default=[], help="NAME=PATH of a source tree (repeatable)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--cluster", action="store_true", help="measure a throwaway three-primary Redis Cluster")
    parser.add_argument("--entries", type=int, default=10_000, help="presence entries on the node (sockets' worth)")
    parser.add_argument("--rooms", default="10000,100", help="rooms the entries are spread over, comma separated")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per room count")
    parser.add_argument("--churn", action="store_true", help="also measure every entry leaving and joining again")
    parser.add_argument("--idle", type=float, default=1.0, help="seconds of the idle window per round")
    args = parser.parse_args(argv)
    args.targets = [(name, Path(tree).resolve()) for name, tree in (t.split("=", 1) for t in args.target or ["this=."])]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    if args.cluster:
        from redis import Redis as SyncRedis

        from tests.conftest import throwaway_cluster

        with throwaway_cluster() as shards:
            for server in shards.servers:  # as the single Redis runs: no append-only file
                with SyncRedis(port=server.port) as node:
                    node.config_set("appendonly", "no")
            args.redis_url = shards.url
            table = asyncio.run(run(args))
    else:
        table = asyncio.run(run(args))
    print()
    print(table)
    print(
        f"\n(total {time.monotonic() - started:.0f}s, {os.cpu_count()} cores, {args.rounds} rounds, median (worst); "
        f"1-min load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after)"
    )


if __name__ == "__main__":
    main()
