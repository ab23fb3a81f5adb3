"""Reports: a project's KPIs (per audience, with a staff preview of what the customer sees), the staff portfolio,
pivots of tasks and requests, and CSV of each (``?format=csv``). Definitions: docs/REPORTS.md."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints
from sqlmodel import col, select
from starlette.responses import Response

from server.api import api
from server.api.routing import ApiError
from server.audit.log import exported
from server.board.rules import project_for
from server.context import Context
from server.models import Client, Project
from server.policy import Action, Actor, Forbidden, visible_projects
from server.reports.kpis import Audience, Health, ProjectKpis, burnup, load_facts, project_kpis, weights_of
from server.reports.pivot import (
    REQUEST_DIMENSIONS,
    REQUEST_MEASURES,
    TASK_DIMENSIONS,
    TASK_MEASURES,
    PivotError,
    PivotOut,
    Source,
    metrics_csv,
    pivot,
    pivot_csv,
    table_csv,
)
from server.schemas import Id, In, Out


def _up_to_four_of(choices: tuple[str, ...]) -> str:
    """The pattern of up to four of ``choices``, comma separated: what the document states of such a list."""
    one = "(" + "|".join(sorted(set(choices))) + ")"
    return f"^{one}(,{one}){{0,3}}$"


# Which of them a source has (tasks or requests) is a rule across two fields, refused with ``not_for_source``.
Dimensions = Annotated[str, StringConstraints(pattern=_up_to_four_of(TASK_DIMENSIONS + REQUEST_DIMENSIONS))]
Measures = Annotated[str, StringConstraints(pattern=_up_to_four_of(TASK_MEASURES + REQUEST_MEASURES))]


class KpiQuery(In):
    model_config = ConfigDict(extra="forbid")
    audience: Audience | None = Field(None, description="Staff may ask for `shared`: what the customer sees.")
    milestone_id: Id | None = Field(None, description="Burn-up of this milestone's tasks only.")
    format: Literal["json", "csv"] = "json"


class PivotQuery(In):
    model_config = ConfigDict(extra="forbid")
    source: Source = Source.TASKS
    group_by: Dimensions = Field("status", description="Up to four dimensions, comma separated.")
    measures: Measures | None = Field(None, description="Numeric fields to sum and average, comma separated.")
    audience: Audience | None = None
    format: Literal["json", "csv"] = "json"


class PortfolioQuery(In):
    model_config = ConfigDict(extra="forbid")
    client_id: Id | None = None
    archived: bool = False
    format: Literal["json", "csv"] = "json"


class PortfolioPivotQuery(PivotQuery):
    client_id: Id | None = None


class PortfolioItem(Out):
    project_id: int
    name: str
    client_id: int
    client_name: str
    total: int
    done: int
    progress: float
    overdue: int
    waiting_on_customer: int
    waiting_oldest_days: float | None
    first_response_median_hours: float | None
    request_turnaround_median_hours: float | None
    feedback_score: float | None
    feedback_metric: float | None
    health: Health
    health_reasons: list[str]


class ClientHealth(Out):
    client_id: int
    client_name: str
    projects: int
    on_track: int
    at_risk: int
    late: int
    total: int
    done: int


class Portfolio(Out):
    computed_at: dt.datetime
    items: list[PortfolioItem]
    by_health: dict[str, int]
    by_client: list[ClientHealth]


def audience_for(actor: Actor, asked: Audience | None) -> Audience:
    """Customers always get the shared view; staff get theirs unless they preview the customer's."""
    if not actor.is_staff:
        if asked == Audience.STAFF:
            raise Forbidden
        return Audience.SHARED
    return asked or Audience.STAFF


def csv_response(ctx: Context, text: str, name: str) -> Response:
    exported(ctx, f"report {name}", "csv")
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}.csv"'},
    )


def _names(raw: str | None) -> list[str]:
    return [n for n in (raw or "").split(",") if n]


@api.route(
    "GET",
    "/api/projects/{project_id:int}/reports/kpis",
    summary="A project's KPIs as the caller's audience sees them (customers: shared items only)",
    tag="reports",
    query=KpiQuery,
    response=ProjectKpis,
    errors=(401, 403, 404, 422),
    produces={200: {"text/csv": {"type": "string"}}},  # ?format=csv
)
async def project_report(ctx: Context, query: KpiQuery) -> ProjectKpis | Response:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.PROJECT_READ)
    assert project.id is not None
    audience = audience_for(ctx.actor, query.audience)
    now = dt.datetime.now(dt.UTC)
    facts = (await load_facts(ctx.session, [project.id], audience))[project.id]
    kpis = project_kpis(project.id, facts, audience, now, weights_of(ctx.services.settings.feedback_weights))
    if query.milestone_id is not None:
        if query.milestone_id not in {m.id for m in facts.milestones}:
            raise ApiError(
                422, "invalid", "milestone_id names no milestone of this project.", reason="unknown_milestone"
            )
        kpis.burnup = burnup([t for t in facts.tasks if t.milestone_id == query.milestone_id], now)
    if query.format == "csv":
        return csv_response(ctx, metrics_csv(kpis), f"project-{project.id}-kpis")
    return kpis


@api.route(
    "GET",
    "/api/projects/{project_id:int}/reports/pivot",
    summary="Group a project's tasks or requests by dimensions, with counts, sums and averages",
    tag="reports",
    query=PivotQuery,
    response=PivotOut,
    errors=(401, 403, 404, 422),
    produces={200: {"text/csv": {"type": "string"}}},  # ?format=csv
)
async def project_pivot(ctx: Context, query: PivotQuery) -> PivotOut | Response:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.PROJECT_READ)
    assert project.id is not None
    client = await ctx.session.get(Client, project.client_id)
    names = {project.id: (project.name, client.name if client else "")}
    return await _pivot(ctx, query, names, f"project-{project.id}-pivot")


async def _pivot(
    ctx: Context, query: PivotQuery, names: dict[int, tuple[str, str]], filename: str
) -> PivotOut | Response:
    audience = audience_for(ctx.actor, query.audience)
    facts = await load_facts(ctx.session, list(names), audience, with_feedback=False, with_threads=False)
    try:
        result = pivot(
            facts,
            names,
            query.source,
            _names(query.group_by),
            _names(query.measures),
            audience,
            dt.datetime.now(dt.UTC),
        )
    except PivotError as exc:
        raise ApiError(422, "invalid", str(exc), reason="not_for_source") from None
    if query.format == "csv":
        return csv_response(ctx, pivot_csv(result), filename)
    return result


async def _staff_projects(ctx: Context, client_id: int | None, archived: bool) -> dict[int, tuple[str, int, str]]:
    if not ctx.actor.is_staff:
        raise Forbidden
    stmt = (
        select(Project.id, Project.name, Project.client_id, Client.name)
        .join(Client, col(Client.id) == Project.client_id)
        .where(visible_projects(ctx.actor), col(Project.archived).is_(archived))
    )
    if client_id is not None:
        stmt = stmt.where(col(Project.client_id) == client_id)
    rows = (await ctx.session.exec(stmt.order_by(col(Project.id)))).all()
    return {pid: (name, cid, cname) for pid, name, cid, cname in rows if pid is not None}


@api.route(
    "GET",
    "/api/reports/portfolio",
    summary="Every project of the organization with its KPIs and health (staff only)",
    tag="reports",
    query=PortfolioQuery,
    response=Portfolio,
    errors=(401, 403, 422),
    produces={200: {"text/csv": {"type": "string"}}},  # ?format=csv
)
async def portfolio(ctx: Context, query: PortfolioQuery) -> Portfolio | Response:
    projects = await _staff_projects(ctx, query.client_id, query.archived)
    now = dt.datetime.now(dt.UTC)
    weights = weights_of(ctx.services.settings.feedback_weights)
    facts = await load_facts(ctx.session, list(projects), Audience.STAFF)
    items = []
    for pid, (name, client_id, client_name) in projects.items():
        k = project_kpis(pid, facts[pid], Audience.STAFF, now, weights)
        items.append(
            PortfolioItem(
                project_id=pid,
                name=name,
                client_id=client_id,
                client_name=client_name,
                total=k.total,
                done=k.done,
                progress=k.progress,
                overdue=k.overdue,
                waiting_on_customer=k.waiting_on_customer,
                waiting_oldest_days=k.waiting_oldest_days,
                first_response_median_hours=k.first_response.median_hours,
                request_turnaround_median_hours=k.request_turnaround.median_hours,
                feedback_score=k.feedback.score,
                feedback_metric=k.feedback.metric,
                health=k.health,
                health_reasons=k.health_reasons,
            )
        )
    if query.format == "csv":
        columns = list(PortfolioItem.model_fields)
        return csv_response(ctx, table_csv(items, columns, lambda item, c: _cell(getattr(item, c))), "portfolio")
    clients: dict[int, ClientHealth] = {}
    for item in items:
        c = clients.setdefault(
            item.client_id,
            ClientHealth(
                client_id=item.client_id, client_name=item.client_name, projects=0, on_track=0, at_risk=0, late=0,
                total=0, done=0,
            ),
        )  # fmt: skip
        c.projects += 1
        setattr(c, item.health.value, getattr(c, item.health.value) + 1)
        c.total += item.total
        c.done += item.done
    counts = Counter(item.health.value for item in items)
    return Portfolio(
        computed_at=now,
        items=items,
        by_health={h.value: counts.get(h.value, 0) for h in Health},
        by_client=sorted(clients.values(), key=lambda c: c.client_name),
    )


def _cell(value: object) -> object:
    return ";".join(str(v) for v in value) if isinstance(value, list) else value


@api.route(
    "GET",
    "/api/reports/pivot",
    summary="Pivot tasks or requests across the organization's projects (staff only)",
    tag="reports",
    query=PortfolioPivotQuery,
    response=PivotOut,
    errors=(401, 403, 422),
    produces={200: {"text/csv": {"type": "string"}}},  # ?format=csv
)
async def portfolio_pivot(ctx: Context, query: PortfolioPivotQuery) -> PivotOut | Response:
    projects = await _staff_projects(ctx, query.client_id, False)
    names = {pid: (name, client_name) for pid, (name, _, client_name) in projects.items()}
    return await _pivot(ctx, query, names, "portfolio-pivot")
