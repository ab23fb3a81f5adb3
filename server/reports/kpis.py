"""Reports: a project's KPIs and the staff portfolio, computed per audience (docs/REPORTS.md).

Everything is computed from *facts* loaded in a handful of grouped queries per call (tasks, milestones, customer
comments and staff replies, requests, feedback), whatever the number of projects, then folded in Python. The
audience decides which facts are loaded at all: for ``shared`` (what a customer sees) internal tasks and
milestones never leave the database, so they cannot appear in any total.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import Field
from sqlalchemy import select as sa_select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from server.feedback.marks import load_marks
from server.feedback.rules import (
    ActionFact,
    AnswerFact,
    FeedbackSummary,
    MarkFact,
    load_feedback,
    parse_weights,
    summarize,
)
from server.models import (
    STAFF_ROLES,
    Comment,
    Milestone,
    Request,
    Status,
    StatusCategory,
    Task,
    User,
    Visibility,
)
from server.schemas import Out
from server.waiting.rules import task_waits_on_customer

BURNUP_WEEKS = 26
# Health rule thresholds (docs/REPORTS.md).
LATE_OVERDUE_SHARE = 0.25
AT_RISK_WAITING_DAYS = 7.0
AT_RISK_FEEDBACK_SCORE = 2.5


class Audience(StrEnum):
    STAFF = "staff"
    SHARED = "shared"


class Health(StrEnum):
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    LATE = "late"


@dataclass(frozen=True)
class TaskFact:
    id: int
    project_id: int
    status_id: int
    status_name: str
    category: str
    assignee_id: int | None
    assignee_name: str | None
    assignee_role: str | None
    due_date: dt.date | None
    priority: str
    milestone_id: int | None
    visibility: str
    created_at: dt.datetime
    completed_at: dt.datetime | None
    updated_at: dt.datetime
    # As server/waiting/rules.py defines it, computed by the query that loads the fact.
    waiting_on_customer: bool = False

    @property
    def done(self) -> bool:
        return self.category == StatusCategory.DONE


@dataclass(frozen=True)
class MilestoneFact:
    id: int
    project_id: int
    name: str
    due_date: dt.date | None
    visibility: str
    completed_at: dt.datetime | None


@dataclass(frozen=True)
class RequestFact:
    id: int
    project_id: int
    status: str
    priority: str
    created_at: dt.datetime
    first_response_at: dt.datetime | None
    resolved_at: dt.datetime | None


@dataclass
class ProjectFacts:
    tasks: list[TaskFact] = field(default_factory=list)
    milestones: list[MilestoneFact] = field(default_factory=list)
    # Hours from each customer comment to the next shared staff comment on its task; None: not answered yet.
    comment_responses: list[float | None] = field(default_factory=list)
    requests: list[RequestFact] = field(default_factory=list)
    answers: list[AnswerFact] = field(default_factory=list)
    actions: list[ActionFact] = field(default_factory=list)
    # Customer comments staff marked as feedback: loaded for the staff audience only.
    marks: list[MarkFact] = field(default_factory=list)


# -- output ---------------------------------------------------------------------------------------------------


class Durations(Out):
    count: int = Field(description="How many were measured.")
    pending: int = Field(description="Not answered (or not resolved) yet: not in the statistics.")
    median_hours: float | None
    p90_hours: float | None


class MilestoneProgress(Out):
    milestone_id: int | None = Field(description="null: tasks without a milestone")
    name: str
    due_date: dt.date | None
    completed_at: dt.datetime | None
    done: int
    total: int


class BurnupPoint(Out):
    week: str = Field(description="ISO week, e.g. 2026-W07; counts as of the end of that week")
    scope: int
    done: int


class FeedbackKpi(Out):
    responses: int
    score: float | None
    trend: float | None
    metric: float | None = Field(description="Staff only; null for customers and without answers.")


class ProjectKpis(Out):
    project_id: int
    audience: Audience
    computed_at: dt.datetime
    total: int
    done: int
    progress: float = Field(description="done / total, 0-1 (0 for no tasks)")
    by_category: dict[str, int]
    by_milestone: list[MilestoneProgress]
    overdue: int
    waiting_on_customer: int
    waiting_median_days: float | None
    waiting_oldest_days: float | None
    first_response_comments: Durations
    first_response_requests: Durations
    first_response: Durations = Field(description="Comments and requests together.")
    request_turnaround: Durations
    burnup: list[BurnupPoint]
    feedback: FeedbackKpi
    health: Health
    health_reasons: list[str]


# -- statistics -------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least ``p`` percent of values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def durations(values: Sequence[float | None]) -> Durations:
    measured = [v for v in values if v is not None]
    median = statistics.median(measured) if measured else None
    p90 = percentile(measured, 90)
    return Durations(
        count=len(measured),
        pending=len(values) - len(measured),
        median_hours=None if median is None else round(median, 2),
        p90_hours=None if p90 is None else round(p90, 2),
    )


def _hours(start: dt.datetime, end: dt.datetime | None) -> float | None:
    return None if end is None else max(0.0, (end - start).total_seconds() / 3600)


def iso_week(day: dt.date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


# -- loading ----------------------------------------------------------------------------------------------


async def load_facts(
    session: AsyncSession,
    project_ids: Sequence[int],
    audience: Audience,
    *,
    with_feedback: bool = True,
    with_threads: bool = True,
) -> dict[int, ProjectFacts]:
    """The facts of ``project_ids`` that ``audience`` may see, by project (five grouped queries)."""
    facts: dict[int, ProjectFacts] = {pid: ProjectFacts() for pid in project_ids}
    if not project_ids:
        return facts
    shared_only = audience == Audience.SHARED
    task_stmt = (
        sa_select(
            col(Task.id),
            col(Task.project_id),
            col(Task.status_id),
            col(Status.name),
            col(Status.category),
            col(Task.assignee_id),
            col(User.name),
            col(User.role),
            col(Task.due_date),
            col(Task.priority),
            col(Task.milestone_id),
            col(Task.visibility),
            col(Task.created_at),
            col(Task.completed_at),
            col(Task.updated_at),
            task_waits_on_customer(),
        )
        .join(Status, col(Status.id) == Task.status_id)
        .outerjoin(User, col(User.id) == Task.assignee_id)
        .where(col(Task.project_id).in_(project_ids))
    )
    if shared_only:
        task_stmt = task_stmt.where(col(Task.visibility) == Visibility.SHARED)
    for row in (await session.exec(task_stmt)).all():  # type: ignore[call-overload]
        facts[row[1]].tasks.append(TaskFact(*row))
    ms_stmt = sa_select(Milestone).where(col(Milestone.project_id).in_(project_ids))
    if shared_only:
        ms_stmt = ms_stmt.where(col(Milestone.visibility) == Visibility.SHARED)
    for (m,) in (await session.exec(ms_stmt.order_by(col(Milestone.id)))).all():  # type: ignore[call-overload]
        assert m.id is not None
        facts[m.project_id].milestones.append(
            MilestoneFact(m.id, m.project_id, m.name, m.due_date, m.visibility, m.completed_at)
        )
    if with_threads:
        await _load_comment_responses(session, project_ids, facts)
    req_stmt = sa_select(
        col(Request.id), col(Request.project_id), col(Request.status), col(Request.priority),
        col(Request.created_at), col(Request.first_response_at), col(Request.resolved_at),
    ).where(col(Request.project_id).in_(project_ids))  # fmt: skip
    for row in (await session.exec(req_stmt)).all():  # type: ignore[call-overload]
        facts[row[1]].requests.append(RequestFact(*row))
    if with_feedback:
        answers, actions = await load_feedback(session, project_ids)
        for pid, items in answers.items():
            facts[pid].answers = items
        for pid, acts in actions.items():
            facts[pid].actions = acts
        if not shared_only:
            for pid, marked in (await load_marks(session, project_ids)).items():
                facts[pid].marks = marked
    return facts


async def _load_comment_responses(
    session: AsyncSession, project_ids: Sequence[int], facts: dict[int, ProjectFacts]
) -> None:
    # Only shared comments on shared tasks: a customer wrote them, and only a shared staff comment answers them.
    rows = (
        await session.exec(  # type: ignore[call-overload]
            sa_select(col(Comment.project_id), col(Comment.task_id), col(Comment.created_at), col(User.role))
            .join(Task, col(Task.id) == Comment.task_id)
            .join(User, col(User.id) == Comment.author_id)
            .where(
                col(Comment.project_id).in_(project_ids),
                col(Comment.visibility) == Visibility.SHARED,
                col(Task.visibility) == Visibility.SHARED,
                col(Comment.deleted_at).is_(None),
            )
            .order_by(col(Comment.task_id), col(Comment.created_at), col(Comment.id))
        )
    ).all()
    waiting: list[dt.datetime] = []
    current: tuple[int, int] | None = None
    for project_id, task_id, created_at, role in rows:
        if current != (project_id, task_id):
            if current is not None:
                facts[current[0]].comment_responses.extend(None for _ in waiting)
            waiting, current = [], (project_id, task_id)
        if role in STAFF_ROLES:
            facts[project_id].comment_responses.extend(_hours(w, created_at) for w in waiting)
            waiting = []
        else:
            waiting.append(created_at)
    if current is not None:
        facts[current[0]].comment_responses.extend(None for _ in waiting)


# -- KPIs -------------------------------------------------------------------------------------------------


def project_kpis(
    project_id: int, facts: ProjectFacts, audience: Audience, now: dt.datetime, weights: tuple[float, float, float]
) -> ProjectKpis:
    """The KPIs of one project from its facts, as ``audience`` sees them (definitions: docs/REPORTS.md)."""
    today = now.date()
    tasks = facts.tasks
    done = sum(1 for t in tasks if t.done)
    by_category = {c.value: 0 for c in StatusCategory}
    for t in tasks:
        by_category[t.category] = by_category.get(t.category, 0) + 1
    overdue = sum(1 for t in tasks if not t.done and t.due_date is not None and t.due_date < today)
    waiting_ages = [(now - t.updated_at).total_seconds() / 86400 for t in tasks if t.waiting_on_customer]
    comment_d = facts.comment_responses
    request_d = [_hours(r.created_at, r.first_response_at) for r in facts.requests]
    summary = summarize(facts.answers, facts.actions, weights, facts.marks)
    kpis = ProjectKpis(
        project_id=project_id,
        audience=audience,
        computed_at=now,
        total=len(tasks),
        done=done,
        progress=round(done / len(tasks), 4) if tasks else 0.0,
        by_category=by_category,
        by_milestone=_milestones(facts),
        overdue=overdue,
        waiting_on_customer=len(waiting_ages),
        waiting_median_days=round(statistics.median(waiting_ages), 2) if waiting_ages else None,
        waiting_oldest_days=round(max(waiting_ages), 2) if waiting_ages else None,
        first_response_comments=durations(comment_d),
        first_response_requests=durations(request_d),
        first_response=durations([*comment_d, *request_d]),
        request_turnaround=durations([_hours(r.created_at, r.resolved_at) for r in facts.requests]),
        burnup=burnup(tasks, now),
        feedback=_feedback_kpi(summary, audience),
        health=Health.ON_TRACK,
        health_reasons=[],
    )
    kpis.health, kpis.health_reasons = health(kpis, facts.milestones, today)
    return kpis


def _feedback_kpi(summary: FeedbackSummary, audience: Audience) -> FeedbackKpi:
    return FeedbackKpi(
        responses=summary.responses,
        score=summary.score,
        trend=summary.trend,
        metric=summary.metric if audience == Audience.STAFF else None,
    )


def _milestones(facts: ProjectFacts) -> list[MilestoneProgress]:
    counts: dict[int | None, list[int]] = defaultdict(lambda: [0, 0])
    for t in facts.tasks:
        counts[t.milestone_id][1] += 1
        if t.done:
            counts[t.milestone_id][0] += 1
    out = [
        MilestoneProgress(
            milestone_id=m.id,
            name=m.name,
            due_date=m.due_date,
            completed_at=m.completed_at,
            done=counts[m.id][0],
            total=counts[m.id][1],
        )
        for m in facts.milestones
    ]
    if None in counts:
        out.append(
            MilestoneProgress(
                milestone_id=None,
                name="",
                due_date=None,
                completed_at=None,
                done=counts[None][0],
                total=counts[None][1],
            )
        )
    return out


def burnup(tasks: Sequence[TaskFact], now: dt.datetime, weeks: int = BURNUP_WEEKS) -> list[BurnupPoint]:
    """Scope (tasks created) and done (tasks completed) at the end of each of the last ``weeks`` ISO weeks.

    Only tasks that exist now count; a task moved back out of done loses its completion.
    """
    if not tasks:
        return []
    created = sorted(t.created_at for t in tasks)
    completed = sorted(t.completed_at for t in tasks if t.done and t.completed_at is not None)
    this_monday = now.date() - dt.timedelta(days=now.date().weekday())
    first_monday = created[0].date() - dt.timedelta(days=created[0].date().weekday())
    start = max(first_monday, this_monday - dt.timedelta(weeks=weeks - 1))
    points = []
    monday = start
    while monday <= this_monday:
        end = dt.datetime.combine(monday + dt.timedelta(days=7), dt.time(), tzinfo=dt.UTC)
        points.append(
            BurnupPoint(
                week=iso_week(monday), scope=bisect.bisect_left(created, end), done=bisect.bisect_left(completed, end)
            )
        )
        monday += dt.timedelta(days=7)
    return points


def health(kpis: ProjectKpis, milestones: Sequence[MilestoneFact], today: dt.date) -> tuple[Health, list[str]]:
    """On track, at risk or late, with the reasons (the rule is in docs/REPORTS.md).

    Late: an open milestone is past its due date, or at least 25 % of open tasks are overdue.
    At risk: any overdue task, a task waiting on the customer for more than 7 days, or a mean feedback
    score below 2.5.
    """
    late, risk = [], []
    if any(m.completed_at is None and m.due_date is not None and m.due_date < today for m in milestones):
        late.append("milestone_overdue")
    open_tasks = kpis.total - kpis.done
    if open_tasks and kpis.overdue / open_tasks >= LATE_OVERDUE_SHARE:
        late.append("many_tasks_overdue")
    if kpis.overdue:
        risk.append("tasks_overdue")
    if kpis.waiting_oldest_days is not None and kpis.waiting_oldest_days > AT_RISK_WAITING_DAYS:
        risk.append("waiting_on_customer")
    if kpis.feedback.score is not None and kpis.feedback.score < AT_RISK_FEEDBACK_SCORE:
        risk.append("low_feedback")
    if late:
        return Health.LATE, late + risk
    if risk:
        return Health.AT_RISK, risk
    return Health.ON_TRACK, []


async def kpis_for(
    session: AsyncSession,
    project_ids: Sequence[int],
    audience: Audience,
    weights: tuple[float, float, float],
    now: dt.datetime | None = None,
) -> dict[int, ProjectKpis]:
    """KPIs of every project in ``project_ids`` for ``audience``, with one set of queries for them all."""
    now = now or dt.datetime.now(dt.UTC)
    facts = await load_facts(session, project_ids, audience)
    return {pid: project_kpis(pid, f, audience, now, weights) for pid, f in facts.items()}


@functools.cache
def weights_of(raw: str) -> tuple[float, float, float]:
    return parse_weights(raw)
