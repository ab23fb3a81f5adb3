"""Server CPU of one task move (a status PATCH, with its outbox row), source trees interleaved.

    .venv/bin/python -m bench.patch_cpu                                   # this tree, SQLite and PostgreSQL
    .venv/bin/python -m bench.patch_cpu --target before=/work/wt-base --target after=. --databases sqlite
    .venv/bin/python -m bench.patch_cpu --sessions 3000                   # every PATCH by a session not seen before

Each target is a source tree: its own seeded workspace (migrated and seeded by that tree, so an older tree runs on
the schema it knows) and one uvicorn node started from it, pinned to the server core; this process, the client, runs
on the other. A round sends ``--patches`` PATCHes one after another, each moving the seeded shared task between
"To do" and "In progress" as staff (what a drag on the board sends), and reads the node's CPU (utime + stime of
every thread, from ``/proc``) before and after: CPU per PATCH. PostgreSQL's own processes are reported apart. The
targets take turns in every round, each going first in turn, so a slow spell of a shared machine falls on all.
Reported per round, then the median and the worst round per target and database, against the aim.

By default every PATCH carries the same session, as one person moving cards does; a node that read that session
since the last control message does not read it again (server/accounts/session_cache.py). ``--sessions N`` has the
PATCHes take N sessions in turn: with N above the PATCHes sent, each is the first its node sees of its session.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.fanout import postgres_pids
from bench.wsload import CLIENT_CORE, SERVER_CORE, cpu_seconds, free_port, percentile, pin, quiet, wait_for_port

AIM_MS = 2.5  # issue #23: a task PATCH (status change, with its outbox row), on SQLite and on PostgreSQL
ROOT = Path(__file__).resolve().parent.parent
ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"

# Run by each tree's own Python path: migrate and seed, print what the benchmark needs.
SEED = """
import asyncio, datetime as dt, json, sys
from tests.workspace import seed_database
from server.db import Database, utcnow
from server.models import AuthSession
from server.security import new_token, token_hash
ws = seed_database(sys.argv[1])
tokens = [ws.token("staff")]

async def more_sessions(count):
    # More sessions of the staff user, used ahead (no PATCH is due to record a use).
    db = Database(sys.argv[1])
    try:
        async with db.session() as session:
            now = utcnow()
            fresh = [new_token() for _ in range(count)]
            session.add_all(
                AuthSession(user_id=ws.users["staff"], token_hash=token_hash(token), created_at=now,
                            last_seen_at=now + dt.timedelta(days=1), expires_at=now + dt.timedelta(days=14),
                            user_agent="bench.patch_cpu")
                for token in fresh
            )
            await session.commit()
        return fresh
    finally:
        await db.close()

if int(sys.argv[2]) > 1:
    tokens = asyncio.run(more_sessions(int(sys.argv[2])))
print(json.dumps({"task": ws.ids["px_shared_task"], "statuses": [ws.ids["px_todo"], ws.ids["px_active"]],
                  "tokens": tokens}))
"""


@dataclass
class Node:
    name: str
    database: str
    process: subprocess.Popen[bytes]
    http: httpx.AsyncClient
    task: int
    statuses: list[int]
    log: Path
    tokens: list[str]  # the sessions the PATCHes take in turn
    sent: int = 0

    @property
    def pids(self) -> list[int]:
        return [self.process.pid]


@dataclass
class Round:
    target: str
    database: str
    cpu_ms: float
    postgres_ms: float
    p50_ms: float
    p99_ms: float


def _tree_env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree)}


def _postgres_database() -> str:
    from sqlalchemy import create_engine, text

    from server.db import sync_url

    name = f"bench_patch_{uuid.uuid4().hex[:12]}"
    admin = create_engine(sync_url(ADMIN), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def _drop_postgres_database(url: str) -> None:
    from sqlalchemy import create_engine, text

    from server.db import sync_url

    admin = create_engine(sync_url(ADMIN), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()


def _start_node(
    tree: Path, database: str, work: Path, sessions: int
) -> tuple[subprocess.Popen[bytes], dict[str, Any], str]:
    work.mkdir(parents=True)
    url = f"sqlite:///{work / 'tandem.db'}" if database == "sqlite" else _postgres_database()
    seeded = subprocess.run(
        [sys.executable, "-c", SEED, url, str(sessions)],
        cwd=tree,
        env=_tree_env(tree),
        capture_output=True,
        check=True,
    )
    seed = json.loads(seeded.stdout.decode().strip().splitlines()[-1])
    port = free_port()
    env = {
        **_tree_env(tree),
        "TANDEM_DATABASE_URL": url,
        "TANDEM_SECRET_KEY": "bench-" + "s" * 40,
        "TANDEM_DATA_DIR": str(work),
        "TANDEM_AUTO_MIGRATE": "false",
        # One staff user PATCHes far faster than a person may: limits that never refuse, still counted.
        "TANDEM_API_WRITES_PER_MINUTE_PER_USER": "1000000",
        "TANDEM_API_REQUESTS_PER_MINUTE_PER_USER": "1000000",
        "TANDEM_API_REQUESTS_PER_MINUTE_PER_IP": "1000000",
    }
    argv = [sys.executable, "-m", "uvicorn", "--factory", "server.main:create", "--port", str(port)]
    with (work / "node.log").open("ab") as out:
        process = subprocess.Popen(
            [*argv, "--log-level", "warning", "--no-access-log"], cwd=tree, env=env, stdout=out, stderr=out
        )
    wait_for_port(port, 60)
    pin(process.pid, SERVER_CORE)
    seed["port"] = port
    return process, seed, url


async def start(name: str, tree: Path, database: str, work: Path, sessions: int) -> Node:
    process, seed, url = await asyncio.to_thread(_start_node, tree, database, work, sessions)
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{seed['port']}", timeout=15)
    task, statuses, tokens = seed["task"], seed["statuses"], seed["tokens"]
    assert isinstance(task, int) and isinstance(statuses, list) and isinstance(tokens, list)
    database = database if database == "sqlite" else url
    return Node(name, database, process, http, task, statuses, work / "node.log", tokens)


async def patches(node: Node, count: int) -> list[float]:
    """``count`` moves, one after another; their round trips in ms."""
    times = []
    for i in range(count):
        token = node.tokens[node.sent % len(node.tokens)]
        node.sent += 1
        headers = {"authorization": f"Bearer {token}"}
        sent = time.perf_counter()
        answer = await node.http.patch(
            f"/api/tasks/{node.task}", json={"status_id": node.statuses[i % 2]}, headers=headers
        )
        times.append((time.perf_counter() - sent) * 1000)
        if answer.status_code != 200:
            raise RuntimeError(f"{node.name}: PATCH {answer.status_code} {answer.text[:200]}")
    return times


async def one_round(node: Node, count: int) -> Round:
    await quiet(node.pids)
    before, pg_before = cpu_seconds(node.pids), cpu_seconds(postgres_pids())
    times = sorted(await patches(node, count))
    await quiet(node.pids)  # the relay's publish and delete of each outbox row belong to the PATCH
    cpu = cpu_seconds(node.pids) - before
    pg = cpu_seconds(postgres_pids()) - pg_before if node.database != "sqlite" else 0.0
    return Round(
        node.name,
        "sqlite" if node.database == "sqlite" else "postgresql",
        cpu / count * 1000,
        pg / count * 1000,
        percentile(times, 0.50),
        percentile(times, 0.99),
    )


def render(rounds: list[Round]) -> str:
    lines = [
        "| round | database | target | CPU per PATCH (ms) | PostgreSQL per PATCH (ms) | round trip p50 / p99 (ms) |",
        "|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str], list[Round]] = {}
    for r in rounds:
        groups.setdefault((r.database, r.target), []).append(r)
        n = len(groups[(r.database, r.target)])
        trip = f"{r.p50_ms:.1f} / {r.p99_ms:.1f}"
        lines.append(f"| {n} | {r.database} | {r.target} | {r.cpu_ms:.2f} | {r.postgres_ms:.2f} | {trip} |")
    lines += ["", "| database | target | CPU per PATCH median (ms) | worst round (ms) | aim |", "|---|---|---|---|---|"]
    for (database, target), rs in groups.items():
        cpu = [r.cpu_ms for r in rs]
        met = "met" if max(cpu) <= AIM_MS else "not met"
        lines.append(f"| {database} | {target} | {statistics.median(cpu):.2f} | {max(cpu):.2f} | <= {AIM_MS}: {met} |")
    return "\n".join(lines)


def _targets(given: list[str]) -> list[tuple[str, Path]]:
    return [(t.split("=", 1)[0], Path(t.split("=", 1)[1]).resolve()) for t in given] or [("this", ROOT)]


async def run(args: argparse.Namespace) -> str:
    targets = _targets(args.target)
    pin(os.getpid(), CLIENT_CORE)
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="tandem-patch-") as tmp:
        for database in args.databases.split(","):
            work = Path(tmp) / database
            nodes = [await start(name, tree, database, work / name, args.sessions) for name, tree in targets]
            try:
                for node in nodes:
                    await patches(node, args.warmup)
                for index in range(args.rounds):
                    for node in nodes[index % len(nodes) :] + nodes[: index % len(nodes)]:
                        result = await one_round(node, args.patches)
                        rounds.append(result)
                        print(f"{database} round {index + 1} {node.name}: {result.cpu_ms:.2f} ms/PATCH", flush=True)
            finally:
                for node in nodes:
                    await node.http.aclose()
                    node.process.kill()
                    node.process.wait(10)
                    if node.database != "sqlite":
                        _drop_postgres_database(node.database)
    return render(rounds)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", action="append", default=[], help="NAME=PATH of a source tree (repeatable)")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--patches", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--sessions",
        type=int,
        default=1,
        help="distinct staff sessions the PATCHes take in turn (default 1: one person moving cards; more than the"
        " PATCHes sent makes every PATCH the first its node sees of its session)",
    )
    print(asyncio.run(run(parser.parse_args(argv))))


if __name__ == "__main__":
    main()
