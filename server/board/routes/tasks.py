"""Tasks: the cards on a project's board."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from server.api import api
from server.api.routing import ApiError
from server.audit.log import visibility_changed
from server.board.rules import TaskView, check_wip_limit, project_for, status_in, task_for, task_out
from server.context import Context
from server.db import bump_version, utcnow
from server.files.rules import purge_blobs_after_commit
from server.inbox import notify
from server.models import (
    Membership,
    Milestone,
    Project,
    ProjectRole,
    Status,
    StatusCategory,
    StoredFile,
    Task,
    User,
    Visibility,
)
from server.policy import Action, visible_items
from server.schemas import Page, TaskIn, TaskOut, TaskPatch, TaskQuery
from server.waiting import rules as waiting

# What a customer may change on a task assigned to them: where it stands, nothing else.
CUSTOMER_MOVABLE = frozenset({"status_id", "position"})


async def check_assignee(ctx: Context, project: Project, user_id: int, visibility: str) -> User:
    user = await ctx.session.get(User, user_id)
    if user is None or user.organization_id != project.organization_id or not user.is_active:
        raise ApiError(422, "invalid", "assignee_id names no participant of this project.", reason="unknown_assignee")
    if user.is_staff:
        return user
    membership = (
        await ctx.session.exec(
            select(Membership).where(Membership.project_id == project.id, Membership.user_id == user.id)
        )
    ).first()
    if membership is None or membership.role != ProjectRole.CUSTOMER or user.client_id != project.client_id:
        raise ApiError(422, "invalid", "assignee_id names no participant of this project.", reason="unknown_assignee")
    if visibility != Visibility.SHARED:
        raise ApiError(
            422,
            "invalid",
            "An internal task cannot be assigned to a customer: share it first.",
            reason="internal_to_customer",
        )
    return user


async def check_milestone(ctx: Context, project: Project, milestone_id: int, visibility: str) -> None:
    milestone = await ctx.session.get(Milestone, milestone_id)
    if milestone is None or milestone.project_id != project.id:
        raise ApiError(422, "invalid", "milestone_id names no milestone of this project.", reason="unknown_milestone")
    if visibility == Visibility.SHARED and milestone.visibility != Visibility.SHARED:
        raise ApiError(
            422, "invalid", "A shared task cannot belong to an internal milestone.", reason="shared_under_internal"
        )


# Changes that may make a task start or stop waiting on someone (due dates reorder their lists).
WAITING_FIELDS = frozenset({"status_id", "assignee_id", "visibility", "due_date"})


def _waiting_state(task: Task, status: Status) -> tuple[str, str, bool, int | None]:
    return task.visibility, status.category, status.waits_on_customer, task.assignee_id


@api.route(
    "GET",
    "/api/projects/{project_id:int}/tasks",
    summary="List a project's tasks, filtered",
    tag="tasks",
    query=TaskQuery,
    response=Page[TaskOut],
    errors=(401, 404, 422),
)
async def list_tasks(ctx: Context, query: TaskQuery) -> Page[TaskOut]:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.PROJECT_READ)
    stmt = select(Task).where(Task.project_id == project.id, visible_items(ctx.actor, Task))
    filters: dict[str, Any] = {
        "status_id": Task.status_id,
        "assignee_id": Task.assignee_id,
        "visibility": Task.visibility,
        "milestone_id": Task.milestone_id,
    }
    for name, column in filters.items():
        value = getattr(query, name)
        if value is not None:
            stmt = stmt.where(column == value)
    if query.due_before is not None:
        stmt = stmt.where(col(Task.due_date) < query.due_before)
    if query.due_after is not None:
        stmt = stmt.where(col(Task.due_date) > query.due_after)
    if query.waiting_on_customer is not None:
        waits = waiting.task_waits_on_customer()
        stmt = stmt.join(Status, col(Status.id) == Task.status_id).where(waits if query.waiting_on_customer else ~waits)
    if query.cursor:
        stmt = stmt.where(col(Task.id) > int(query.cursor))
    rows = list((await ctx.session.exec(stmt.order_by(col(Task.id)).limit(query.limit + 1))).all())
    page = rows[: query.limit]
    view = await TaskView.for_tasks(ctx.session, page, ctx.services.settings.due_soon_days)
    items = [view.out(t) for t in page]
    return Page[TaskOut](items=items, next_cursor=str(items[-1].id) if len(rows) > query.limit else None)


@api.route(
    "POST",
    "/api/projects/{project_id:int}/tasks",
    summary="Create a task",
    tag="tasks",
    body=TaskIn,
    response=TaskOut,
    status=201,
    errors=(401, 403, 404, 422),
)
async def create_task(ctx: Context, body: TaskIn) -> TaskOut:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.TASK_CREATE)
    return await add_task(ctx, project, body)


async def add_task(ctx: Context, project: Project, body: TaskIn) -> TaskOut:
    """Create a task in ``project`` (the caller checked the actor may) with every rule and live event of the API.

    Raises:
        ApiError: 409/422 when the task breaks a rule of the project (status, assignee, milestone, WIP limit).
    """
    assert project.id is not None
    if body.status_id is not None:
        status = await status_in(ctx.session, project.id, body.status_id)
    else:
        first = (
            await ctx.session.exec(
                select(Status).where(Status.project_id == project.id).order_by(col(Status.position), col(Status.id))
            )
        ).first()
        if first is None:
            raise ApiError(409, "no_workflow", "The project has no statuses.")
        status = first
    await check_wip_limit(ctx.session, ctx.actor, status)
    if body.assignee_id is not None:
        await check_assignee(ctx, project, body.assignee_id, body.visibility)
    if body.milestone_id is not None:
        await check_milestone(ctx, project, body.milestone_id, body.visibility)
    assert status.id is not None
    top = (await ctx.session.exec(select(func.max(Task.position)).where(Task.status_id == status.id))).one()
    task = Task(
        project_id=project.id,
        title=body.title,
        description=body.description,
        status_id=status.id,
        assignee_id=body.assignee_id,
        due_date=body.due_date,
        priority=body.priority,
        milestone_id=body.milestone_id,
        visibility=body.visibility,
        position=(top or 0) + 1,
        created_by_id=ctx.actor.user_id,
        completed_at=utcnow() if status.category == StatusCategory.DONE else None,
    )
    ctx.session.add(task)
    await ctx.session.flush()
    out = await task_out(ctx, task, status)
    await ctx.services.live.task_changed(ctx, out, previous_visibility=None)
    await notify.task_changed(ctx, task, assignee_before=None, status_before=None)
    await waiting.task_moved(ctx, project.id, before=None, after=_waiting_state(task, status))
    return out


@api.route("GET", "/api/tasks/{task_id:int}", summary="A task", tag="tasks", response=TaskOut, errors=(401, 404))
async def get_task(ctx: Context) -> TaskOut:
    task, _, status = await task_for(ctx.session, ctx.actor, ctx.path_int("task_id"), Action.ITEM_READ)
    return await task_out(ctx, task, status)


@api.route(
    "PATCH",
    "/api/tasks/{task_id:int}",
    summary="Change a task; customers may only move tasks assigned to them",
    tag="tasks",
    body=TaskPatch,
    response=TaskOut,
    errors=(401, 403, 404, 409, 422),
)
async def update_task(ctx: Context, body: TaskPatch) -> TaskOut:
    changes = body.model_dump(exclude_unset=True)
    based_on = changes.pop("version", None)
    action = Action.TASK_UPDATE if ctx.actor.is_staff or set(changes) - CUSTOMER_MOVABLE else Action.TASK_MOVE
    task, project, status = await task_for(ctx.session, ctx.actor, ctx.path_int("task_id"), action)
    assert project.id is not None
    if based_on is not None and based_on != task.version:
        # An edit made on an older copy would silently undo someone else's: the client fetches the task again.
        raise ApiError(409, "version_conflict", "The task changed since you opened it: look at the new version.")
    for field in ("title", "status_id", "priority", "visibility", "position"):
        if field in changes and changes[field] is None:
            raise ApiError(422, "invalid", f"{field} cannot be null.", reason="required", params={"field": field})
    previous_visibility = task.visibility
    assignee_before, status_before = task.assignee_id, task.status_id
    waiting_before = _waiting_state(task, status)
    visibility = changes.get("visibility", task.visibility)
    if "status_id" in changes and changes["status_id"] != task.status_id:
        status = await status_in(ctx.session, project.id, changes["status_id"])
        await check_wip_limit(ctx.session, ctx.actor, status)
        if status.category == StatusCategory.DONE:
            task.completed_at = task.completed_at or utcnow()
        else:
            task.completed_at = None
    assignee_id = changes.get("assignee_id", task.assignee_id)
    if assignee_id is not None and ("assignee_id" in changes or "visibility" in changes):
        await check_assignee(ctx, project, assignee_id, visibility)
    milestone_id = changes.get("milestone_id", task.milestone_id)
    if milestone_id is not None and ("milestone_id" in changes or "visibility" in changes):
        await check_milestone(ctx, project, milestone_id, visibility)
    for field, value in changes.items():
        setattr(task, field, value)
    task.updated_at = utcnow()
    await bump_version(ctx.session, task)
    out = await task_out(ctx, task, status)  # the new status, if it changed
    await ctx.services.live.task_changed(ctx, out, previous_visibility=previous_visibility)
    visibility_changed(ctx, "task", task.id, previous_visibility, task.visibility)
    await notify.task_changed(ctx, task, assignee_before=assignee_before, status_before=status_before)
    if task.status_id != status_before:
        await ctx.services.webhooks.task_status_changed(ctx, out, status_before)
    if changes.keys() & WAITING_FIELDS:
        await waiting.task_moved(ctx, project.id, before=waiting_before, after=_waiting_state(task, status))
    return out


@api.route(
    "DELETE", "/api/tasks/{task_id:int}", summary="Delete a task", tag="tasks", status=204, errors=(401, 403, 404)
)
async def delete_task(ctx: Context) -> None:
    task, _, status = await task_for(ctx.session, ctx.actor, ctx.path_int("task_id"), Action.TASK_DELETE)
    out = await task_out(ctx, task, status)
    await purge_blobs_after_commit(ctx, col(StoredFile.task_id) == task.id)
    await waiting.task_moved(ctx, task.project_id, before=_waiting_state(task, status), after=None)
    await ctx.session.delete(task)
    await ctx.services.live.task_deleted(ctx, out)
