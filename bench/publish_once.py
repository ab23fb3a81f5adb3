"""The cost of the broker's idempotency key on the publish path: `Broker.publish` with and without one.

    .venv/bin/python -m bench.publish_once                    # 20,000 publishes per variant, 5 rounds
    .venv/bin/python -m bench.publish_once --count 5000 --rounds 3

Variants, interleaved per round (so a slow spell of this shared machine falls on all of them alike):

- ``memory``: `MemoryBroker.publish`, wall time per call.
- ``redis``: `RedisBroker.publish` against a throwaway ``redis-server --save "" --appendonly no`` on a free port,
  one publish at a time: client round-trip latency per call (p50, p99), Redis's own time per script call
  (``INFO commandstats``, the ``evalsha`` delta) and redis-server's CPU time per call (``INFO cpu``), medians over
  the rounds: a private server, so nobody else's calls are counted.

Each variant publishes to 64 channels in turn (history 1,000 / 600 s, as the hub's default), a payload the size of a
``task.updated`` event (~600 bytes); the keyed variant passes a fresh uuid per publication, as the outbox does.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from channels.backends.memory import MemoryBroker
from channels.backends.redis import RedisBroker
from channels.broker import Broker, HistoryOptions

HISTORY = HistoryOptions(size=1000, ttl_seconds=600)
PAYLOAD = b'{"type":"task.updated","task":{"id":7,"title":"' + b"x" * 520 + b'","version":5}}'
CHANNELS = [f"project:{n}:shared" for n in range(64)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run(broker: Broker, count: int, keyed: bool) -> list[float]:
    """Publish ``count`` times, one at a time; the wall time of each call in µs."""
    took: list[float] = []
    for n in range(count):
        key = uuid.uuid4().hex if keyed else None
        start = time.perf_counter()
        await broker.publish(CHANNELS[n % len(CHANNELS)], PAYLOAD, HISTORY, idempotency_key=key)
        took.append((time.perf_counter() - start) * 1e6)
    return took


async def evalsha_usec(client: Redis) -> tuple[int, int, float]:
    """Script calls so far, Redis's time in them (µs), and the server's CPU time (µs, user + system)."""
    stats = await client.info("commandstats")
    entry = stats.get("cmdstat_evalsha", {"calls": 0, "usec": 0})
    cpu = await client.info("cpu")
    return int(entry["calls"]), int(entry["usec"]), (cpu["used_cpu_user"] + cpu["used_cpu_sys"]) * 1e6


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def start_redis(directory: str) -> tuple[subprocess.Popen[bytes], str]:
    """A private redis-server without persistence on a free port, and its URL."""
    binary = shutil.which("redis-server")
    assert binary, "needs redis-server"
    port = free_port()
    options = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory]
    server = subprocess.Popen([binary, *options], stdout=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return server, f"redis://127.0.0.1:{port}/0"


async def main(url: str, count: int, rounds: int) -> None:
    stats = Redis.from_url(url)
    memory = MemoryBroker()
    redis = RedisBroker(url, "bench:")
    await redis.start()
    results: dict[str, list[float]] = {}
    server_us: dict[str, list[float]] = {"redis": [], "redis+key": []}
    server_cpu: dict[str, list[float]] = {"redis": [], "redis+key": []}
    variants: list[tuple[str, Callable[[], Awaitable[list[float]]]]] = [
        ("memory", lambda: run(memory, count, False)),
        ("memory+key", lambda: run(memory, count, True)),
        ("redis", lambda: run(redis, count, False)),
        ("redis+key", lambda: run(redis, count, True)),
    ]
    await run(redis, 2000, True)  # warm up: scripts loaded, streams at their size bound
    for round_ in range(rounds):
        order = variants if round_ % 2 == 0 else variants[::-1]
        for name, variant in order:
            before = await evalsha_usec(stats)
            results.setdefault(name, []).extend(await variant())
            after = await evalsha_usec(stats)
            if name in server_us:
                calls = max(1, after[0] - before[0])
                server_us[name].append((after[1] - before[1]) / calls)
                server_cpu[name].append((after[2] - before[2]) / calls)
    print(f"{count:,} publishes x {rounds} rounds per variant (µs per publish)")
    print(f"{'variant':<12} {'p50':>8} {'p99':>8} {'mean':>8} {'script µs':>10} {'redis CPU µs':>13}")
    for name, took in results.items():
        inside = f"{statistics.median(server_us[name]):.1f}" if name in server_us else "-"
        cpu = f"{statistics.median(server_cpu[name]):.1f}" if name in server_cpu else "-"
        p50, p99, mean = pct(took, 0.5), pct(took, 0.99), statistics.mean(took)
        print(f"{name:<12} {p50:8.1f} {p99:8.1f} {mean:8.1f} {inside:>10} {cpu:>13}")
    await redis.close()
    await stats.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        server, url = start_redis(directory)
        try:
            asyncio.run(main(url, args.count, args.rounds))
        finally:
            server.terminate()
            server.wait(timeout=10)
