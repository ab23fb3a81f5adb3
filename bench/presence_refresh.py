"""Presence heartbeat benchmark: what one node's heartbeat of N presence entries costs Redis, per-entry against batched.

Run ``python -m bench.presence_refresh --help``. Results and their reading are in ``bench/README.md``.

What runs: one process, one real Redis (``--redis-url``, default the machine's 127.0.0.1:6379; a
``redis+cluster://`` URL measures a Redis Cluster, its counters summed over the primaries; ``--cluster`` starts a
throwaway three-primary one, tests/conftest.py's, with AOF off), every key under a prefix unique to the run
(deleted at the end). No sockets are opened: N `channels.connection.Connection` objects on
a transport that sends nothing each hold one presence subscription (entries spread over ``--rooms`` rooms), and
`channels.hub_presence.HubPresence` heartbeats them as the hub's housekeeping would every ttl/3. Two paths, each on
its own keys (both sets stay live, so both see the same store state):

- **per-entry** (main before this change): main's heartbeat loop, kept here verbatim: ``PresenceManager.refresh``
  (one Redis script) per entry, 50 in flight at a time.
- **batched**: ``HubPresence.heartbeat``, which hands every entry to ``PresenceManager.refresh_many`` (one script per
  1,000 entries, one call at a time).

Each round runs one heartbeat of each path, the order alternating between rounds, after one warm-up heartbeat of
each (which writes the entries). Measured around each heartbeat, from the Redis server:

- **scripts**: ``EVALSHA`` (and ``EVAL``) calls in ``INFO commandstats``: the round trips the heartbeat costs Redis.
- **commands**: ``INFO commandstats`` calls of every command, minus the two ``INFO`` calls of the measurement itself;
  the commands a script runs from Lua are counted too, so this is the work inside the scripts as well.
- **Redis CPU**: ``used_cpu_user + used_cpu_sys`` of ``INFO cpu``.

The Redis server is shared: other clients' commands and CPU during the heartbeat are counted too. An idle window
per round (``--idle`` seconds, no heartbeat) measures that background rate, printed beside the results, so it can
be subtracted. Also measured: the heartbeat's wall time and this process's CPU (client side).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from channels.backends.memory import MemoryBroker
from channels.backends.redis_cluster import redis_client
from channels.backends.redis_presence import RedisPresence
from channels.connection import Connection, Subscription
from channels.hub_presence import HubPresence, default_describe
from channels.presence import PresenceInfo

TTL_SECONDS = 30.0  # the default TANDEM_PRESENCE_TTL_SECONDS: a heartbeat every 10 s
HEARTBEAT_BATCH = 50  # main's _HEARTBEAT_BATCH


class SilentTransport:
    """A socket that takes everything and sends nothing (the heartbeat never writes to sockets)."""

    async def send_text(self, text: str) -> None:
        return None

    def write_frame(self, frame: bytes) -> bool:
        return True

    async def close(self, code: int, reason: str) -> None:
        return None


def connections(count: int, rooms: int, tag: str) -> list[Connection]:
    """``count`` connections, each with one presence entry, spread round-robin over ``rooms`` rooms."""
    made = []
    for n in range(count):
        conn = Connection(SilentTransport(), f"user-{n % 997}", connection_id=f"{tag}-{n}")
        channel = f"room:project:{n % rooms}"
        info = PresenceInfo(conn.id, str(n % 997), f"User {n % 997}", "staff", {"viewing": f"task:{n}"})
        conn.subscriptions[channel] = Subscription(channel, live=True, presence=info)
        made.append(conn)
    return made


async def per_entry_heartbeat(presence: HubPresence, conns: Iterable[Connection]) -> None:
    """Main's `HubPresence.heartbeat` (8e0802c): one `PresenceManager.refresh` per entry, 50 at a time."""
    entries = [
        (conn, sub, sub.presence)
        for conn in list(conns)
        for sub in list(conn.subscriptions.values())
        if sub.presence is not None and not conn.closed
    ]
    for start in range(0, len(entries), HEARTBEAT_BATCH):
        batch = entries[start : start + HEARTBEAT_BATCH]
        results = await asyncio.gather(
            *(presence.manager.refresh(sub.channel, info, presence.ttl_seconds) for _, sub, info in batch),
            return_exceptions=True,
        )
        follow_ups = []
        for (conn, sub, info), result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                continue
            new, expired = result
            if new:
                follow_ups.append(presence._after_refresh(conn, sub, info))
            follow_ups.extend(presence._announce_expired(sub.channel, gone) for gone in expired)
        await asyncio.gather(*follow_ups)


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


async def measure(servers: list[Redis], action: Callable[[], Awaitable[Any]]) -> Sample:
    scripts0, calls0, cpu0 = await server_counters(servers)
    client0, wall0 = time.process_time(), time.perf_counter()
    await action()
    wall, client = time.perf_counter() - wall0, time.process_time() - client0
    scripts1, calls1, cpu1 = await server_counters(servers)
    infos = 2 * len(servers)  # the INFOs of server_counters
    return Sample(scripts1 - scripts0, calls1 - calls0 - infos, cpu1 - cpu0, wall, client)


async def primaries(client: Redis | RedisCluster) -> list[Redis]:
    """A plain client per server to read counters from: the server itself, or every primary of the cluster."""
    if isinstance(client, Redis):
        return [client]
    await client.initialize()
    return [Redis(host=node.host, port=node.port) for node in client.get_primaries()]


async def run(args: argparse.Namespace) -> str:
    redis = redis_client(args.redis_url)
    servers = await primaries(redis)
    prefix = f"bench:presence-refresh:{uuid.uuid4().hex[:8]}:"
    rows: list[str] = []
    try:
        for rooms in [int(r) for r in args.rooms.split(",")]:
            paths: dict[str, tuple[HubPresence, list[Connection], Callable[[HubPresence, list[Connection]], Any]]] = {}
            for name, heartbeat in (
                ("per-entry", per_entry_heartbeat),
                ("batched", lambda p, c: p.heartbeat(c)),
            ):
                manager = RedisPresence(redis, f"{prefix}{name}:{rooms}:", retention_seconds=args.retention)
                hub = HubPresence(manager, MemoryBroker(), TTL_SECONDS, default_describe, flush_seconds=0.2)
                paths[name] = (hub, connections(args.entries, rooms, f"{name}-{rooms}"), heartbeat)
            for hub, conns, heartbeat in paths.values():  # warm-up: writes the entries (all new)
                await heartbeat(hub, conns)
            samples: dict[str, list[Sample]] = {name: [] for name in paths}
            idle: list[Sample] = []
            for index in range(args.rounds):
                order = list(paths) if index % 2 == 0 else list(paths)[::-1]
                for name in order:
                    hub, conns, heartbeat = paths[name]
                    samples[name].append(await measure(servers, lambda h=hub, c=conns, b=heartbeat: b(h, c)))
                idle.append(await measure(servers, lambda: asyncio.sleep(args.idle)))
                line = ", ".join(
                    f"{name} {s.scripts} scripts {s.commands} commands {1e3 * s.redis_cpu:.1f} ms Redis CPU "
                    f"{1e3 * s.wall:.0f} ms wall"
                    for name, s in ((n, samples[n][-1]) for n in paths)
                )
                print(
                    f"  rooms={rooms} round {index + 1}: {line}; idle {args.idle}s: {idle[-1].commands} commands "
                    f"{1e3 * idle[-1].redis_cpu:.1f} ms Redis CPU",
                    flush=True,
                )
            rows += render(args.entries, rooms, samples, idle, args.idle)
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
    return "\n".join(HEADER + rows)


HEADER = [
    "| path | entries | rooms | scripts / heartbeat | Redis commands / heartbeat | Redis CPU ms / heartbeat "
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
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--cluster", action="store_true", help="measure a throwaway three-primary Redis Cluster")
    parser.add_argument("--entries", type=int, default=10_000, help="presence entries on the node (sockets' worth)")
    parser.add_argument("--rooms", default="10000,100", help="rooms the entries are spread over, comma separated")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per room count")
    parser.add_argument("--idle", type=float, default=1.0, help="seconds of the idle window per round")
    parser.add_argument(
        "--retention",
        type=float,
        default=60.0,
        help="RedisPresence retention (s); the batched script extends a room's keys once their TTL fell below "
        "ttl + retention/2, which back-to-back rounds never reach at 60: a tiny one extends them every round",
    )
    return parser.parse_args(argv)


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
