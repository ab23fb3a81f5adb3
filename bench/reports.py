"""Report latency: one project with 10,000 tasks and a portfolio of 200 projects, on SQLite and PostgreSQL.

Run ``python -m bench.reports [--tasks 10000] [--projects 200] [--per-project 50] [--runs 9] [--skip-postgres]``.
Results and their reading are in ``bench/README.md`` (section "Reports").

What runs: a fresh migrated database per engine (a temporary SQLite file; a throwaway database on the machine's
PostgreSQL at 127.0.0.1:5432, trust auth, dropped afterwards) seeded with bulk inserts: project "big" with
``--tasks`` tasks (a third internal, spread over 4 statuses, 10 milestones, due dates, a quarter assigned to a
customer), one customer comment + one staff reply per 10 tasks, one request per 20 tasks; and ``--projects``
projects of ``--per-project`` tasks each over 20 clients. Each measurement is the in-process call the endpoint
makes (same session type, same queries), timed over ``--runs`` runs after one warm-up; median and p90 in ms:

- ``kpis staff`` / ``kpis shared``: ``load_facts`` + ``project_kpis`` of the big project (what
  ``GET /api/projects/{id}/reports/kpis`` does, and what one live ``kpi.changed`` costs per audience);
- ``pivot status,week``: the pivot of the big project's tasks (``GET .../reports/pivot``);
- ``portfolio``: facts + KPIs of all ``--projects`` projects (``GET /api/reports/portfolio``);
- baseline ``project_summaries``: the existing one-query grouped counts of the home page over the same projects
  (the cheapest aggregate Tandem already runs over these rows), so the ratio shows what full KPIs cost on top.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, text

from server import migrate
from server.board.rules import project_summaries
from server.db import Database, sync_url
from server.models import (
    Client,
    Comment,
    Membership,
    Milestone,
    Organization,
    OrgRole,
    Project,
    ProjectRole,
    Request,
    Status,
    Task,
    User,
)
from server.policy import Actor
from server.reports.kpis import Audience, load_facts, project_kpis
from server.reports.pivot import Source, pivot

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
WEIGHTS = (0.5, 0.3, 0.2)
CATEGORIES = ("todo", "active", "blocked", "done")


@contextlib.contextmanager
def postgres_url() -> Iterator[str]:
    name = f"tandem_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(sync_url(POSTGRES_ADMIN), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def seed(url: str, tasks: int, projects: int, per_project: int) -> dict[str, Any]:
    """Bulk-insert the workload; returns the ids the measurements need."""
    engine = create_engine(sync_url(url))
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:

        def one(table: Any, **values: Any) -> int:
            return int(conn.execute(insert(table).values(**values).returning(table.id)).scalar_one())

        org = one(Organization, name="Bench", slug=f"bench-{uuid.uuid4().hex[:6]}", created_at=now)
        clients = [one(Client, organization_id=org, name=f"Client {i}", created_at=now) for i in range(20)]
        staff = one(User, organization_id=org, email="s@b.test", name="Staff", role=OrgRole.STAFF, password_hash="x",
                    created_at=now)  # fmt: skip
        customer = one(User, organization_id=org, client_id=clients[0], email="c@b.test", name="Cust",
                       role=OrgRole.CUSTOMER, password_hash="x", created_at=now)  # fmt: skip

        def project(name: str, client: int, count: int) -> int:
            pid = one(Project, organization_id=org, client_id=client, name=name, created_at=now, updated_at=now)
            conn.execute(insert(Membership).values(project_id=pid, user_id=customer, role=ProjectRole.CUSTOMER))
            statuses = [
                one(Status, project_id=pid, name=c, category=c, colour="#000000", position=i)
                for i, c in enumerate(CATEGORIES)
            ]
            milestones = [
                one(
                    Milestone,
                    project_id=pid,
                    name=f"M{i}",
                    visibility="shared",
                    created_at=now,
                    due_date=(now + dt.timedelta(days=30 * i - 60)).date(),
                )
                for i in range(min(10, max(1, count // 5)))
            ]
            rows = []
            for i in range(count):
                shared = i % 3 != 0
                category = i % 4
                created = now - dt.timedelta(days=i % 180, hours=i % 24)
                rows.append(
                    dict(
                        project_id=pid,
                        title=f"Task {i}",
                        description="",
                        status_id=statuses[category],
                        assignee_id=customer if shared and i % 4 == 2 else (staff if i % 5 == 0 else None),
                        due_date=(now + dt.timedelta(days=(i % 60) - 20)).date() if i % 2 else None,
                        priority=("low", "normal", "high", "urgent")[i % 4],
                        milestone_id=milestones[i % len(milestones)] if shared or i % 2 else None,
                        visibility="shared" if shared else "internal",
                        position=i,
                        version=1,
                        created_at=created,
                        updated_at=created,
                        completed_at=created + dt.timedelta(days=3) if category == 3 else None,
                    )
                )
            for start in range(0, len(rows), 2000):
                conn.execute(insert(Task), rows[start : start + 2000])
            task_ids = [r[0] for r in conn.execute(text("SELECT id FROM tasks WHERE project_id = :p"), {"p": pid})]
            comments = []
            for n, task_id in enumerate(task_ids[::10]):
                at = now - dt.timedelta(days=n % 90)
                for author, delay in ((customer, 0), (staff, 1 + n % 30)):
                    comments.append(
                        dict(task_id=task_id, project_id=pid, author_id=author, body="b", body_html="<p>b</p>",
                             visibility="shared", version=1, created_at=at + dt.timedelta(hours=delay))
                    )  # fmt: skip
            if comments:
                conn.execute(insert(Comment), comments)
            requests = [
                dict(project_id=pid, title=f"R{n}", description="", priority="normal", status="accepted", fields="{}",
                     created_by_id=customer, decline_reason="", version=1, created_at=now - dt.timedelta(days=n % 60),
                     updated_at=now, first_response_at=now - dt.timedelta(days=n % 60) + dt.timedelta(hours=2),
                     resolved_at=now - dt.timedelta(days=n % 60) + dt.timedelta(hours=30))
                for n in range(count // 20)
            ]  # fmt: skip
            if requests:
                conn.execute(insert(Request), requests)
            return pid

        big = project("big", clients[0], tasks)
        many = [project(f"P{i}", clients[i % 20], per_project) for i in range(projects)]
    engine.dispose()
    return {"org": org, "staff": staff, "big": big, "many": many}


async def timed(fn: Callable[[], Awaitable[object]], runs: int) -> list[float]:
    await fn()  # warm-up: caches, connection pool
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await fn()
        times.append((time.perf_counter() - started) * 1000)
    return times


async def measure(url: str, ids: dict[str, Any], runs: int) -> dict[str, list[float]]:
    db = Database(url)
    now = dt.datetime.now(dt.UTC)
    actor = Actor(ids["staff"], ids["org"], OrgRole.STAFF, None)
    big, many = ids["big"], ids["many"]
    results: dict[str, list[float]] = {}
    try:

        async def kpis(audience: Audience) -> None:
            async with db.session() as session:
                facts = await load_facts(session, [big], audience)
                project_kpis(big, facts[big], audience, now, WEIGHTS)

        async def pivot_big() -> None:
            async with db.session() as session:
                facts = await load_facts(session, [big], Audience.STAFF, with_feedback=False, with_threads=False)
                pivot(facts, {big: ("big", "Client 0")}, Source.TASKS, ["status", "week"], ["age_days"], "staff", now)

        async def portfolio() -> None:
            async with db.session() as session:
                facts = await load_facts(session, many, Audience.STAFF)
                for pid in many:
                    project_kpis(pid, facts[pid], Audience.STAFF, now, WEIGHTS)

        async def summaries(project_ids: list[int]) -> None:
            async with db.session() as session:
                await project_summaries(session, actor, project_ids, 3)

        results["big: kpis staff"] = await timed(lambda: kpis(Audience.STAFF), runs)
        results["big: kpis shared"] = await timed(lambda: kpis(Audience.SHARED), runs)
        results["big: pivot status,week"] = await timed(pivot_big, runs)
        results["big: baseline project_summaries"] = await timed(lambda: summaries([big]), runs)
        results["portfolio: kpis of all"] = await timed(portfolio, runs)
        results["portfolio: baseline project_summaries"] = await timed(lambda: summaries(many), runs)
    finally:
        await db.close()
    return results


def report(engine: str, results: dict[str, list[float]]) -> None:
    print(f"\n### {engine}\n\n| measurement | median ms | p90 ms |\n|---|---|---|")
    for name, values in results.items():
        ordered = sorted(values)
        p90 = ordered[max(0, int(0.9 * len(ordered) + 0.5) - 1)]
        print(f"| {name} | {statistics.median(ordered):.1f} | {p90:.1f} |")


def run(url: str, args: argparse.Namespace) -> dict[str, list[float]]:
    migrate.upgrade(url)
    started = time.perf_counter()
    ids = seed(url, args.tasks, args.projects, args.per_project)
    print(f"seeded in {time.perf_counter() - started:.1f}s", flush=True)
    return asyncio.run(measure(url, ids, args.runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--projects", type=int, default=200)
    parser.add_argument("--per-project", type=int, default=50)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        report("SQLite", run(f"sqlite:///{Path(folder) / 'bench.db'}", args))
    if not args.skip_postgres:
        with postgres_url() as url:
            report("PostgreSQL", run(url, args))


if __name__ == "__main__":
    main()
