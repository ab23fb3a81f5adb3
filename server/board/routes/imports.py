"""Tasks in and out as CSV: the spreadsheet customers already have.

Import: ``POST /api/projects/{id}/tasks/import`` with a ``text/csv`` body. The first row names the columns
(case-insensitive, common aliases accepted): ``title`` (required), ``description``, ``status`` (a status name of
the project), ``assignee`` (an email), ``due`` (``YYYY-MM-DD``), ``priority``, ``milestone`` (a milestone name),
``visibility`` (``internal``, the default, or ``shared``). Every row goes through the same rules as
``POST /api/projects/{id}/tasks``. With ``?dry_run=true`` nothing is stored and the answer tells what would be
created; without it, either every row is created (201) or none is (422, with the errors per row).

Export: ``GET /api/projects/{id}/tasks.csv``, the same columns, of the tasks the caller may see.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from pydantic import ValidationError
from sqlmodel import col, select
from starlette.responses import Response

from server.api import api
from server.api.routing import MAX_JSON_BYTES, ApiError
from server.audit.log import exported
from server.board.rules import project_for
from server.board.tasks import add_task
from server.context import Context
from server.errors import DomainError
from server.models import Milestone, Project, Status, Task, User
from server.policy import Action, can_see_item, visible_items
from server.schemas import In, Out, TaskIn

COLUMNS = ("title", "description", "status", "assignee", "due", "priority", "milestone", "visibility")
ALIASES = {
    "task": "title",
    "name": "title",
    "summary": "title",
    "details": "description",
    "notes": "description",
    "state": "status",
    "owner": "assignee",
    "assigned to": "assignee",
    "due date": "due",
    "deadline": "due",
}
MAX_ROWS = 5000


class ImportQuery(In):
    dry_run: bool = False


class RowReport(Out):
    row: int
    title: str
    errors: list[str]


class ImportOut(Out):
    dry_run: bool
    created: int
    task_ids: list[int]
    rows: list[RowReport]


async def _read_csv(ctx: Context) -> list[dict[str, str]]:
    content_type = ctx.request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "text/csv":
        raise ApiError(415, "unsupported_media_type", "Send the file as text/csv.")
    body = bytearray()
    async for chunk in ctx.request.stream():
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise ApiError(413, "too_large", f"The file exceeds {MAX_JSON_BYTES} bytes.")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiError(400, "malformed_csv", "The file is not UTF-8 text.") from None
    try:
        reader = csv.DictReader(io.StringIO(text))
        header = [h.strip().lower() for h in reader.fieldnames or []]
        names = [ALIASES.get(h, h) for h in header]
        unknown = [h for h, n in zip(header, names, strict=True) if n not in COLUMNS]
        if unknown or "title" not in names:
            raise ApiError(
                422,
                "invalid_columns",
                f"Columns must be among {', '.join(COLUMNS)} and include title; unknown: {unknown}",
            )
        rows = []
        for raw in reader:
            values = list(raw.values())[: len(names)]
            rows.append({n: _uncell((v or "").strip()) for n, v in zip(names, values, strict=False)})
            if len(rows) > MAX_ROWS:
                raise ApiError(413, "too_large", f"At most {MAX_ROWS} rows per import.")
    except csv.Error as exc:
        raise ApiError(400, "malformed_csv", f"The file is not valid CSV: {exc}") from None
    return rows


async def _lookups(ctx: Context, project: Project) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    statuses = {
        s.name.lower(): s.id
        for s in (await ctx.session.exec(select(Status).where(Status.project_id == project.id))).all()
        if s.id is not None
    }
    milestones = {
        m.name.lower(): m.id
        for m in (await ctx.session.exec(select(Milestone).where(Milestone.project_id == project.id))).all()
        if m.id is not None
    }
    people = {
        u.email: u.id
        for u in (await ctx.session.exec(select(User).where(User.organization_id == project.organization_id))).all()
        if u.id is not None
    }
    return statuses, milestones, people


def _task_in(
    row: dict[str, str], statuses: dict[str, int], milestones: dict[str, int], people: dict[str, int]
) -> tuple[TaskIn | None, list[str]]:
    errors: list[str] = []
    fields: dict[str, Any] = {"title": row.get("title", ""), "description": row.get("description", "")}
    for column, table, key in (("status", statuses, "status_id"), ("milestone", milestones, "milestone_id")):
        name = row.get(column, "")
        if name:
            if name.lower() in table:
                fields[key] = table[name.lower()]
            else:
                errors.append(f"{column}: no {column} named {name!r} in this project")
    if email := row.get("assignee", "").lower():
        if email in people:
            fields["assignee_id"] = people[email]
        else:
            errors.append(f"assignee: no participant with the email {email!r}")
    for column, key in (("due", "due_date"), ("priority", "priority"), ("visibility", "visibility")):
        if row.get(column):
            fields[key] = row[column].lower() if column != "due" else row[column]
    try:
        return (TaskIn.model_validate(fields) if not errors else None), errors
    except ValidationError as exc:
        return None, errors + [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]


@api.route(
    "POST",
    "/api/projects/{project_id:int}/tasks/import",
    summary="Create tasks from a CSV file (text/csv); ?dry_run=true only checks",
    tag="tasks",
    query=ImportQuery,
    response=ImportOut,
    status=201,
    # ?dry_run=true answers 200 with the same report; rows that fail answer 422 with it.
    produces={200: {"application/json": ImportOut}, 422: {"application/json": ImportOut}},
    errors=(400, 401, 403, 404, 413, 415, 422),
)
async def import_tasks(ctx: Context, query: ImportQuery) -> ImportOut | Response:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.TASK_CREATE)
    rows = await _read_csv(ctx)
    statuses, milestones, people = await _lookups(ctx, project)
    reports: list[RowReport] = []
    created: list[int] = []
    # Everything happens in a savepoint: a dry run, or any failing row, rolls all of it back.
    outer = await ctx.session.begin_nested()
    for number, row in enumerate(rows, start=2):
        task_in, errors = _task_in(row, statuses, milestones, people)
        if task_in is not None:
            inner = await ctx.session.begin_nested()
            try:
                created.append((await add_task(ctx, project, task_in)).id)
                await inner.commit()
            except (ApiError, DomainError) as exc:
                await inner.rollback()
                errors.append(exc.message)
        reports.append(RowReport(row=number, title=row.get("title", ""), errors=errors))
    failed = any(r.errors for r in reports)
    if query.dry_run or failed:
        await outer.rollback()
    else:
        await outer.commit()
    result = ImportOut(
        dry_run=query.dry_run,
        created=0 if query.dry_run or failed else len(created),
        task_ids=[] if query.dry_run or failed else created,
        rows=reports,
    )
    if failed and not query.dry_run:
        return Response(result.model_dump_json(), status_code=422, media_type="application/json")
    if query.dry_run:
        return Response(result.model_dump_json(), status_code=200, media_type="application/json")
    return result


@api.route(
    "GET",
    "/api/projects/{project_id:int}/tasks.csv",
    summary="The project's tasks as CSV",
    tag="tasks",
    produces={200: {"text/csv": {"type": "string"}}},
    errors=(401, 404),
)
async def export_tasks(ctx: Context) -> Response:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.PROJECT_READ)
    rows = (
        await ctx.session.exec(
            select(Task, Status.name, User, Milestone)
            .join(Status, col(Status.id) == Task.status_id)
            .outerjoin(User, col(User.id) == Task.assignee_id)
            .outerjoin(Milestone, col(Milestone.id) == Task.milestone_id)
            .where(Task.project_id == project.id, visible_items(ctx.actor, Task))
            .order_by(col(Task.id))
        )
    ).all()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for task, status, assignee, milestone in rows:
        # As /members shows people: a customer reads only their own email; a milestone only if they may see it.
        email = (
            assignee.email if assignee is not None and (ctx.actor.is_staff or assignee.id == ctx.actor.user_id) else ""
        )
        milestone_name = (
            milestone.name if milestone is not None and can_see_item(ctx.actor, project, milestone.visibility) else ""
        )
        writer.writerow(
            [
                _cell(task.title),
                _cell(task.description),
                status,
                email,
                task.due_date.isoformat() if task.due_date else "",
                task.priority,
                milestone_name,
                task.visibility,
            ]
        )
    filename = f"tasks-project-{project.id}.csv"
    exported(ctx, "tasks", "csv", "project", project.id)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str) -> str:
    """Neutralise spreadsheet formulas (CSV injection): a cell starting with = + - @ is read as text."""
    return "'" + value if value[:1] in FORMULA_STARTS else value


def _uncell(value: str) -> str:
    """Undo `_cell`, so an exported file imports back to the same text."""
    return value[1:] if value[:1] == "'" and value[1:2] in FORMULA_STARTS else value
