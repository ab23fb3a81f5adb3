"""Requests: customer intake. A customer files a request; staff accept it (a shared task is created and linked),
merge it into an existing task, ask for information, or decline it with a reason. Every step is kept in the
request's history and published live on the project's streams (requests are shared by nature).

Queues: per project and across projects, each with the first-response and resolution times reports use.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints
from sqlalchemy import update
from sqlmodel import col, select

from server.accounts.people import person_out
from server.activity import rules as activity
from server.api import api
from server.api.routing import ApiError
from server.board.rules import project_for
from server.board.tasks import add_task
from server.context import Context
from server.db import utcnow
from server.inbox import notify
from server.models import (
    RESOLVED_REQUEST_STATUSES,
    FieldKind,
    Priority,
    Project,
    Request,
    RequestEvent,
    RequestField,
    RequestStatus,
    StoredFile,
    Task,
    User,
    Visibility,
)
from server.policy import Action, NotFound, authorize, effective_visibility, visible_projects
from server.schemas import Id, In, Out, Page, PageQuery, PersonOut, TaskIn, Text, Title, omittable
from server.waiting import rules as waiting

MAX_FIELDS = 30
FieldValue = str | int | float | None


class RequestFieldIn(In):
    key: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
    label: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    kind: FieldKind
    required: bool = False
    options: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=50, description="The allowed values of a choice field."
    )


class RequestFieldPatch(In):
    """What may change on a field once requests may have answered it: its label, whether it is required, a choice's
    options and its place in the form. Its ``key`` and ``kind`` never change, so every stored answer keeps its
    meaning; answers already given are kept as written (an option taken away stays on the requests that chose it,
    and making a field required asks it of new requests only)."""

    label: Annotated[str, StringConstraints(min_length=1, max_length=120)] | None = omittable()
    required: bool | None = omittable()
    options: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] | None = omittable(
        "A choice field's allowed values (at least one).", max_length=50
    )
    position: Annotated[int, Field(ge=0)] | None = omittable(
        "The field's place in the form, 0 first; the others move to make room."
    )


class RequestFieldOut(Out):
    id: int
    project_id: int
    key: str
    label: str
    kind: FieldKind
    required: bool
    options: list[str]
    position: int


class RequestFieldList(Out):
    items: list[RequestFieldOut]


class RequestIn(In):
    title: Title
    description: Text = ""
    priority: Priority = Priority.NORMAL
    fields: dict[str, FieldValue] = Field(default_factory=dict, description="Custom field key -> value.")


class RequestEventOut(Out):
    id: int
    kind: str = Field(description="filed, asked, replied, accepted, merged or declined")
    actor: PersonOut | None
    text: str
    task_id: int | None
    created_at: dt.datetime


class RequestOut(Out):
    id: int
    project_id: int
    title: str
    description: str
    priority: Priority
    status: RequestStatus
    fields: dict[str, FieldValue]
    created_by: PersonOut | None
    task_id: int | None = Field(description="The task it became (accepted) or was merged into.")
    decline_reason: str
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    first_response_at: dt.datetime | None = Field(description="When staff first answered (any triage step).")
    resolved_at: dt.datetime | None = Field(description="When it was accepted, merged or declined.")
    history: list[RequestEventOut] = Field(default_factory=list, description="Oldest first; empty in lists.")


class RequestQuery(PageQuery):
    status: RequestStatus | None = None
    open: bool | None = Field(None, description="true: open or waiting for information; false: resolved.")


class AllRequestsQuery(RequestQuery):
    project_id: Id | None = None


class TriageIn(In):
    action: Literal["accept", "merge", "ask", "decline"]
    message: Annotated[str, StringConstraints(max_length=5000)] = Field(
        "", description="ask: the question (required); accept/merge: an optional note to the customer."
    )
    reason: Annotated[str, StringConstraints(max_length=2000)] = Field("", description="decline: required.")
    task_id: Id | None = Field(None, description="merge: the shared task the request joins.")
    status_id: Id | None = Field(None, description="accept: the new task's status (default: the first).")
    assignee_id: Id | None = Field(None, description="accept: who takes the new task.")


class ReplyIn(In):
    message: Annotated[str, StringConstraints(min_length=1, max_length=5000)]
    fields: dict[str, FieldValue] | None = Field(None, description="Corrected custom field values.")


def _field_out(field: RequestField) -> RequestFieldOut:
    return RequestFieldOut.model_validate({**field.model_dump(), "options": json.loads(field.options)})


def validate_fields(definitions: Sequence[RequestField], values: dict[str, FieldValue]) -> dict[str, FieldValue]:
    """Check ``values`` against the project's custom fields and return them normalized.

    Raises:
        ApiError: 422 naming every unknown, missing or malformed field.
    """
    by_key = {f.key: f for f in definitions}
    problems: list[dict[str, str]] = []
    clean: dict[str, FieldValue] = {}

    def refuse(key: str, message: str, kind: str) -> None:
        problems.append({"field": f"fields.{key}", "message": message, "type": kind})

    for key in values:
        if key not in by_key:
            refuse(key, "No such field on this project.", "unknown_field")
    for key, field in by_key.items():
        value = values.get(key)
        if value is None or value == "":
            if field.required:
                refuse(key, f"{field.label} is required.", "missing")
            continue
        match field.kind:
            case FieldKind.TEXT:
                if not isinstance(value, str) or len(value) > 2000:
                    refuse(key, "Expected text of at most 2000 characters.", "text")
                    continue
                clean[key] = value.strip()
            case FieldKind.CHOICE:
                if value not in json.loads(field.options):
                    refuse(key, "Expected one of the field's options.", "choice")
                    continue
                clean[key] = value
            case FieldKind.DATE:
                try:
                    clean[key] = dt.date.fromisoformat(value).isoformat() if isinstance(value, str) else None
                except ValueError:
                    clean[key] = None
                if clean[key] is None:
                    del clean[key]
                    refuse(key, "Expected a date like 2026-05-12.", "date")
            case FieldKind.NUMBER:
                if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                    refuse(key, "Expected a number.", "number")
                    continue
                clean[key] = value
    if problems:
        raise ApiError(422, "invalid", "Some fields are invalid.", problems, reason="fields")
    return clean


async def request_for(ctx: Context, request_id: int, action: Action) -> tuple[Request, Project]:
    """The request and its project, if ``ctx.actor`` may see it and do ``action`` to it.

    Raises:
        NotFound: no such request, or one on a project the actor may not see.
        Forbidden: visible, but the action is not allowed.
    """
    request = await ctx.session.get(Request, request_id)
    if request is None:
        raise NotFound
    project = await ctx.session.get(Project, request.project_id)
    if project is None:
        raise NotFound
    authorize(ctx.actor, action, project)
    return request, project


async def _hidden_tasks(ctx: Context, task_ids: set[int | None], customers: bool) -> set[int]:
    """The tasks among ``task_ids`` a request must not name to its audience: internal ones, for customers."""
    task_ids.discard(None)
    if not customers or not task_ids:
        return set()
    rows = await ctx.session.exec(select(Task.id, Task.visibility).where(col(Task.id).in_(task_ids)))
    return {
        i for i, visibility in rows.all() if i is not None and effective_visibility(visibility) != Visibility.SHARED
    }


async def requests_out(
    ctx: Context, requests: Sequence[Request], history: bool = False, *, for_customers: bool | None = None
) -> list[RequestOut]:
    """Serialize requests for ``ctx.actor`` (or, with ``for_customers=True``, for the shared stream): a request is
    shared by nature but the task it became is not, so a task customers may not see is named as none."""
    ids = [r.id for r in requests]
    events: dict[int, list[RequestEvent]] = {}
    if history and ids:
        for event in (
            await ctx.session.exec(
                select(RequestEvent).where(col(RequestEvent.request_id).in_(ids)).order_by(col(RequestEvent.id))
            )
        ).all():
            events.setdefault(event.request_id, []).append(event)
    customers = not ctx.actor.is_staff if for_customers is None else for_customers
    hidden = await _hidden_tasks(
        ctx, {r.task_id for r in requests} | {e.task_id for es in events.values() for e in es}, customers
    )

    def task_id(value: int | None) -> int | None:
        return None if value in hidden else value

    people_ids = {r.created_by_id for r in requests} | {e.actor_id for es in events.values() for e in es}
    people_ids.discard(None)
    people = (
        {u.id: u for u in (await ctx.session.exec(select(User).where(col(User.id).in_(people_ids)))).all()}
        if people_ids
        else {}
    )

    def person(user_id: int | None) -> PersonOut | None:
        return person_out(people.get(user_id) if user_id else None)

    out = []
    for r in requests:
        assert r.id is not None
        data = r.model_dump(exclude={"fields", "created_by_id"})
        out.append(
            RequestOut.model_validate(
                {
                    **data,
                    "task_id": task_id(r.task_id),
                    "fields": json.loads(r.fields),
                    "created_by": person(r.created_by_id),
                    "history": [
                        RequestEventOut.model_validate(
                            {
                                **e.model_dump(exclude={"actor_id", "request_id"}),
                                "task_id": task_id(e.task_id),
                                "actor": person(e.actor_id),
                            }
                        )
                        for e in events.get(r.id, [])
                    ],
                }
            )
        )
    return out


async def _publish(ctx: Context, request: Request, kind: str) -> RequestOut:
    await ctx.session.flush()
    out = (await requests_out(ctx, [request], history=True))[0]
    shared_view = (await requests_out(ctx, [request], history=True, for_customers=True))[0]
    await ctx.services.live.request_changed(ctx, request.project_id, out, kind, shared_view=shared_view)
    activity.request_changed(ctx, request, filed=kind == "request.created")
    return out


def _record(ctx: Context, request: Request, kind: str, text: str = "", task_id: int | None = None) -> None:
    assert request.id is not None
    ctx.session.add(
        RequestEvent(request_id=request.id, kind=kind, actor_id=ctx.actor.user_id, text=text, task_id=task_id)
    )


async def _project_fields(ctx: Context, project_id: int) -> list[RequestField]:
    rows = await ctx.session.exec(
        select(RequestField)
        .where(RequestField.project_id == project_id)
        .order_by(col(RequestField.position), col(RequestField.id))
    )
    return list(rows.all())


@api.route(
    "GET",
    "/api/projects/{project_id:int}/request-fields",
    summary="The custom fields of the project's requests",
    tag="requests",
    response=RequestFieldList,
    errors=(401, 404),
)
async def list_request_fields(ctx: Context) -> RequestFieldList:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.PROJECT_READ)
    assert project.id is not None
    return RequestFieldList(items=[_field_out(f) for f in await _project_fields(ctx, project.id)])


@api.route(
    "POST",
    "/api/projects/{project_id:int}/request-fields",
    summary="Add a custom field to the project's requests (text, choice, date, number)",
    tag="requests",
    body=RequestFieldIn,
    response=RequestFieldOut,
    status=201,
    errors=(401, 403, 404, 409, 422),
)
async def create_request_field(ctx: Context, body: RequestFieldIn) -> RequestFieldOut:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.SETTINGS_MANAGE)
    assert project.id is not None
    existing = await _project_fields(ctx, project.id)
    if len(existing) >= MAX_FIELDS:
        raise ApiError(
            409, "too_many_fields", f"A project has at most {MAX_FIELDS} request fields.", params={"limit": MAX_FIELDS}
        )
    if any(f.key == body.key for f in existing):
        raise ApiError(409, "field_exists", f"The project already has a field {body.key!r}.")
    if body.kind == FieldKind.CHOICE and not body.options:
        raise ApiError(422, "invalid", "A choice field needs options.", reason="choice_needs_options")
    field = RequestField(
        project_id=project.id,
        key=body.key,
        label=body.label,
        kind=body.kind,
        required=body.required,
        options=json.dumps(body.options if body.kind == FieldKind.CHOICE else []),
        position=len(existing),
    )
    ctx.session.add(field)
    await ctx.session.flush()
    return _field_out(field)


@api.route(
    "PATCH",
    "/api/projects/{project_id:int}/request-fields/{field_id:int}",
    summary="Change a custom field: label, required, a choice's options, its place (key and kind are fixed)",
    tag="requests",
    body=RequestFieldPatch,
    response=RequestFieldOut,
    errors=(401, 403, 404, 422),
)
async def update_request_field(ctx: Context, body: RequestFieldPatch) -> RequestFieldOut:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.SETTINGS_MANAGE)
    assert project.id is not None
    fields = await _project_fields(ctx, project.id)
    field = next((f for f in fields if f.id == ctx.path_int("field_id")), None)
    if field is None:
        raise NotFound
    changes = body.model_dump(exclude_unset=True)
    if "options" in changes:
        if field.kind != FieldKind.CHOICE:
            raise ApiError(422, "invalid", "Only a choice field has options.", reason="options_not_choice")
        if not body.options:
            raise ApiError(422, "invalid", "A choice field needs options.", reason="choice_needs_options")
        field.options = json.dumps(list(dict.fromkeys(body.options)))
    if body.label is not None:
        field.label = body.label
    if body.required is not None:
        field.required = body.required
    if body.position is not None:
        # Re-number every field of the project so positions stay 0..n-1 in the new order.
        order = [f for f in fields if f.id != field.id]
        order.insert(min(body.position, len(order)), field)
        for index, each in enumerate(order):
            each.position = index
    await ctx.session.flush()
    return _field_out(field)


@api.route(
    "DELETE",
    "/api/projects/{project_id:int}/request-fields/{field_id:int}",
    summary="Remove a custom field (requests keep the values they have)",
    tag="requests",
    status=204,
    errors=(401, 403, 404),
)
async def delete_request_field(ctx: Context) -> None:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.SETTINGS_MANAGE)
    field = await ctx.session.get(RequestField, ctx.path_int("field_id"))
    if field is None or field.project_id != project.id:
        raise NotFound
    await ctx.session.delete(field)


def _filtered(stmt: Any, query: RequestQuery) -> Any:
    if query.status is not None:
        stmt = stmt.where(col(Request.status) == query.status)
    if query.open is not None:
        resolved = col(Request.status).in_([s.value for s in RESOLVED_REQUEST_STATUSES])
        stmt = stmt.where(~resolved if query.open else resolved)
    if query.cursor:
        stmt = stmt.where(col(Request.id) < int(query.cursor))
    return stmt.order_by(col(Request.id).desc()).limit(query.limit + 1)


async def _page(ctx: Context, stmt: Any, query: RequestQuery) -> Page[RequestOut]:
    rows = list((await ctx.session.exec(_filtered(stmt, query))).all())
    items = await requests_out(ctx, rows[: query.limit])
    return Page[RequestOut](items=items, next_cursor=str(items[-1].id) if len(rows) > query.limit else None)


@api.route(
    "GET",
    "/api/projects/{project_id:int}/requests",
    summary="The project's request queue, newest first",
    tag="requests",
    query=RequestQuery,
    response=Page[RequestOut],
    errors=(401, 404, 422),
)
async def list_project_requests(ctx: Context, query: RequestQuery) -> Page[RequestOut]:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.PROJECT_READ)
    return await _page(ctx, select(Request).where(Request.project_id == project.id), query)


@api.route(
    "GET",
    "/api/requests",
    summary="Requests across every project I can see, newest first (the staff queue)",
    tag="requests",
    query=AllRequestsQuery,
    response=Page[RequestOut],
    errors=(401, 422),
)
async def list_all_requests(ctx: Context, query: AllRequestsQuery) -> Page[RequestOut]:
    stmt = select(Request).join(Project, col(Project.id) == Request.project_id).where(visible_projects(ctx.actor))
    if query.project_id is not None:
        stmt = stmt.where(col(Request.project_id) == query.project_id)
    return await _page(ctx, stmt, query)


@api.route(
    "POST",
    "/api/projects/{project_id:int}/requests",
    summary="File a request (customers, unless the project turned requests off; staff on their behalf)",
    tag="requests",
    body=RequestIn,
    response=RequestOut,
    status=201,
    errors=(401, 403, 404, 422),
)
async def create_request(ctx: Context, body: RequestIn) -> RequestOut:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.REQUEST_CREATE)
    assert project.id is not None
    values = validate_fields(await _project_fields(ctx, project.id), body.fields)
    request = Request(
        project_id=project.id,
        title=body.title,
        description=body.description,
        priority=body.priority,
        fields=json.dumps(values),
        created_by_id=ctx.actor.user_id,
    )
    ctx.session.add(request)
    await ctx.session.flush()
    _record(ctx, request, "filed")
    await notify.request_changed(ctx, request, notify.RequestStep.FILED, to_staff=True)
    out = await _publish(ctx, request, "request.created")
    await ctx.services.webhooks.request_filed(ctx, project.id, out)
    return out


@api.route(
    "GET",
    "/api/requests/{request_id:int}",
    summary="A request with its history",
    tag="requests",
    response=RequestOut,
    errors=(401, 404),
)
async def get_request(ctx: Context) -> RequestOut:
    request, _ = await request_for(ctx, ctx.path_int("request_id"), Action.PROJECT_READ)
    return (await requests_out(ctx, [request], history=True))[0]


async def _accept(ctx: Context, request: Request, project: Project, body: TriageIn) -> Task:
    """The request becomes a shared task, created by the same path (rules, live events, notifications) as any."""
    out = await add_task(
        ctx,
        project,
        TaskIn(
            title=request.title,
            description=request.description,
            status_id=body.status_id,
            assignee_id=body.assignee_id,
            priority=request.priority,
            visibility=Visibility.SHARED,
        ),
    )
    task = await ctx.session.get(Task, out.id)
    assert task is not None
    return task


async def _merge_target(ctx: Context, project: Project, task_id: int | None) -> Task:
    task = await ctx.session.get(Task, task_id) if task_id is not None else None
    if task is None or task.project_id != project.id or task.visibility != Visibility.SHARED:
        raise ApiError(422, "invalid", "task_id names no shared task of this project.", reason="unknown_task")
    return task


@api.route(
    "POST",
    "/api/requests/{request_id:int}/triage",
    summary="Accept (becomes a shared task), merge into a task, ask for information, or decline with a reason",
    tag="requests",
    body=TriageIn,
    response=RequestOut,
    errors=(401, 403, 404, 409, 422),
)
async def triage_request(ctx: Context, body: TriageIn) -> RequestOut:
    request, project = await request_for(ctx, ctx.path_int("request_id"), Action.REQUEST_TRIAGE)
    if request.status in RESOLVED_REQUEST_STATUSES:
        raise ApiError(409, "resolved", f"The request is already {request.status}.")
    status_before = request.status
    now = utcnow()
    merged_into = ""
    match body.action:
        case "accept":
            task = await _accept(ctx, request, project, body)
            request.status, request.task_id, request.resolved_at = RequestStatus.ACCEPTED, task.id, now
            _record(ctx, request, "accepted", body.message, task.id)
            step = notify.RequestStep.ACCEPTED
        case "merge":
            task = await _merge_target(ctx, project, body.task_id)
            request.status, request.task_id, request.resolved_at = RequestStatus.MERGED, task.id, now
            _record(ctx, request, "merged", body.message, task.id)
            step = notify.RequestStep.MERGED
            # The filer is told the task's name only when they may see the task.
            merged_into = task.title if effective_visibility(task.visibility) == Visibility.SHARED else ""
        case "ask":
            if not body.message.strip():
                raise ApiError(422, "invalid", "Say what you need to know (message).", reason="message_required")
            request.status = RequestStatus.NEEDS_INFO
            _record(ctx, request, "asked", body.message)
            step = notify.RequestStep.ASKED
        case "decline":
            if not body.reason.strip():
                raise ApiError(422, "invalid", "Give the customer a reason (reason).", reason="reason_required")
            request.status, request.decline_reason, request.resolved_at = RequestStatus.DECLINED, body.reason, now
            _record(ctx, request, "declined", body.reason)
            step = notify.RequestStep.DECLINED
    if request.task_id is not None:
        # The request's attachments follow it onto the task.
        await ctx.session.exec(
            update(StoredFile).where(col(StoredFile.request_id) == request.id).values(task_id=request.task_id)
        )
    request.first_response_at = request.first_response_at or now
    request.updated_at = now
    request.version += 1
    ctx.session.add(request)
    await notify.request_changed(ctx, request, step, task_title=merged_into)
    if RequestStatus.NEEDS_INFO in (status_before, request.status):
        await waiting.hint_project(ctx, request.project_id)
    out = await _publish(ctx, request, "request.updated")
    await ctx.services.webhooks.request_triaged(ctx, request.project_id, out, body.action)
    return out


@api.route(
    "POST",
    "/api/requests/{request_id:int}/reply",
    summary="Answer on a request (the customer giving the information asked for, or staff)",
    tag="requests",
    body=ReplyIn,
    response=RequestOut,
    errors=(401, 403, 404, 409, 422),
)
async def reply_request(ctx: Context, body: ReplyIn) -> RequestOut:
    return await reply_to_request(ctx, ctx.path_int("request_id"), body)


async def reply_to_request(ctx: Context, request_id: int, body: ReplyIn) -> RequestOut:
    """Answer on a request as ``ctx.actor`` (the API's route, and a reply by email to a request without a task).

    Raises:
        NotFound, Forbidden: the actor may not see or answer the request.
        ApiError: 409 when it is resolved, 422 for invalid fields.
    """
    request, project = await request_for(ctx, request_id, Action.REQUEST_REPLY)
    assert project.id is not None
    if request.status in RESOLVED_REQUEST_STATUSES:
        raise ApiError(409, "resolved", f"The request is already {request.status}.")
    if body.fields is not None:
        request.fields = json.dumps(validate_fields(await _project_fields(ctx, project.id), body.fields))
    now = utcnow()
    if ctx.actor.is_staff:
        request.first_response_at = request.first_response_at or now
    elif request.status == RequestStatus.NEEDS_INFO:
        request.status = RequestStatus.OPEN
        await waiting.hint_project(ctx, request.project_id)
    _record(ctx, request, "replied", body.message)
    request.updated_at = now
    request.version += 1
    ctx.session.add(request)
    await notify.request_changed(ctx, request, notify.RequestStep.REPLY, to_staff=not ctx.actor.is_staff)
    return await _publish(ctx, request, "request.updated")
