"""Pivoting tasks and requests by any of their dimensions, and every report as CSV (docs/REPORTS.md).

A pivot groups the facts an audience may see (``server/reports/kpis.py`` loads them, so a customer's pivot is built
from shared items only) by one or more dimensions and gives, per group, the count and the sum and average of
each requested numeric measure. Averages skip items without a value (e.g. ``cycle_days`` of open tasks).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from server.reports.kpis import ProjectFacts, RequestFact, TaskFact, iso_week
from server.schemas import Out


class Source(StrEnum):
    TASKS = "tasks"
    REQUESTS = "requests"


NONE_LABEL = "(none)"

TASK_DIMENSIONS = ("status", "category", "assignee", "milestone", "priority", "visibility", "client", "week", "project")
REQUEST_DIMENSIONS = ("status", "priority", "visibility", "client", "week", "project")
TASK_MEASURES = ("age_days", "cycle_days")
REQUEST_MEASURES = ("first_response_hours", "turnaround_hours")


class PivotRow(Out):
    key: dict[str, str]
    count: int
    sums: dict[str, float]
    averages: dict[str, float | None]


class PivotOut(Out):
    source: Source
    audience: str
    group_by: list[str]
    measures: list[str]
    rows: list[PivotRow]
    total: PivotRow = Field(description="All items together (key is empty).")


class PivotError(ValueError):
    """A dimension or measure the source does not have."""


def _task_value(t: TaskFact, measure: str, now: dt.datetime) -> float | None:
    if measure == "age_days":
        return (now - t.created_at).total_seconds() / 86400
    if t.done and t.completed_at is not None:  # cycle_days
        return (t.completed_at - t.created_at).total_seconds() / 86400
    return None


def _request_value(r: RequestFact, measure: str) -> float | None:
    end = r.first_response_at if measure == "first_response_hours" else r.resolved_at
    return None if end is None else (end - r.created_at).total_seconds() / 3600


def pivot(
    facts: Mapping[int, ProjectFacts],
    projects: Mapping[int, tuple[str, str]],
    source: Source,
    group_by: Sequence[str],
    measures: Sequence[str],
    audience: str,
    now: dt.datetime,
) -> PivotOut:
    """Group ``source`` items of ``facts`` by ``group_by``.

    Args:
        facts: per project, what the audience may see.
        projects: project id -> (project name, client name).

    Raises:
        PivotError: an unknown dimension or measure for this source.
    """
    dims, allowed_measures = (
        (TASK_DIMENSIONS, TASK_MEASURES) if source == Source.TASKS else (REQUEST_DIMENSIONS, REQUEST_MEASURES)
    )
    for name in group_by:
        if name not in dims:
            raise PivotError(f"{source} cannot be grouped by {name!r}; use {', '.join(dims)}")
    for name in measures:
        if name not in allowed_measures:
            raise PivotError(f"{source} has no measure {name!r}; use {', '.join(allowed_measures)}")
    items: list[tuple[dict[str, str], dict[str, float | None]]] = []
    for project_id, f in facts.items():
        project_name, client_name = projects.get(project_id, ("", ""))
        common = {"project": project_name, "client": client_name}
        if source == Source.TASKS:
            milestones = {m.id: m.name for m in f.milestones}
            for t in f.tasks:
                labels = {
                    **common,
                    "status": t.status_name,
                    "category": t.category,
                    "assignee": t.assignee_name or NONE_LABEL,
                    "milestone": milestones.get(t.milestone_id, NONE_LABEL) if t.milestone_id else NONE_LABEL,
                    "priority": t.priority,
                    "visibility": t.visibility,
                    "week": iso_week(t.created_at.date()),
                }
                items.append(({d: labels[d] for d in group_by}, {m: _task_value(t, m, now) for m in measures}))
        else:
            for r in f.requests:
                labels = {
                    **common,
                    "status": r.status,
                    "priority": r.priority,
                    "visibility": "shared",
                    "week": iso_week(r.created_at.date()),
                }
                items.append(({d: labels[d] for d in group_by}, {m: _request_value(r, m) for m in measures}))
    groups: dict[tuple[str, ...], list[dict[str, float | None]]] = defaultdict(list)
    keys: dict[tuple[str, ...], dict[str, str]] = {}
    for key, values in items:
        ident = tuple(key[d] for d in group_by)
        groups[ident].append(values)
        keys[ident] = key
    rows = [_row(keys[ident], groups[ident], measures) for ident in sorted(groups)]
    total = _row({}, [values for _, values in items], measures)
    return PivotOut(
        source=source, audience=audience, group_by=list(group_by), measures=list(measures), rows=rows, total=total
    )


def _row(key: dict[str, str], values: list[dict[str, float | None]], measures: Sequence[str]) -> PivotRow:
    sums: dict[str, float] = {}
    averages: dict[str, float | None] = {}
    for m in measures:
        present = [v[m] for v in values if v[m] is not None]
        total = sum(x for x in present if x is not None)
        sums[m] = round(total, 4)
        averages[m] = round(total / len(present), 4) if present else None
    return PivotRow(key=key, count=len(values), sums=sums, averages=averages)


# -- CSV ----------------------------------------------------------------------------------------------------


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """RFC 4180 CSV (CRLF line ends). Cells starting with = + - @ get a leading ' so spreadsheets do not run them."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else _safe(v) for v in row])
    return out.getvalue()


def _safe(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def pivot_csv(p: PivotOut) -> str:
    header = [*p.group_by, "count", *(f"sum_{m}" for m in p.measures), *(f"avg_{m}" for m in p.measures)]
    return to_csv(
        header,
        (
            [*(r.key[d] for d in p.group_by), r.count, *(r.sums[m] for m in p.measures)]
            + [r.averages[m] for m in p.measures]
            for r in p.rows
        ),
    )


def flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """A JSON-like value as (dotted path, scalar) pairs: ``by_category.done``, ``burnup.3.scope``."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in flatten(v, f"{prefix}{k}.")]
    if isinstance(value, list):
        return [pair for i, v in enumerate(value) for pair in flatten(v, f"{prefix}{i}.")]
    return [(prefix[:-1], value)]


def metrics_csv(report: BaseModel) -> str:
    """Any report as two columns, ``metric,value``, one row per scalar (see :func:`flatten`)."""
    return to_csv(["metric", "value"], flatten(report))


def table_csv(items: Sequence[BaseModel], columns: Sequence[str], cell: Callable[[Any, str], Any]) -> str:
    return to_csv(columns, ([cell(item, c) for c in columns] for item in items))
