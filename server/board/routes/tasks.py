"""Tasks: the cards on a project's board."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from server.activity import rules as activity
from server.api import api
from server.api.routing import ApiError
from server.audit.log import visibility_changed
from server.board.rules import (
    TaskView,
    check_wip_limit,
    project_for,
    task_for,
    task_for_move,
    task_out,
    unknown_status,
)
from server.board.tasks import add_task, check_assignee, check_milestone, waiting_state
from server.context import Context
from server.db import bump_version, utcnow
from server.files.rules import purge_blobs_after_commit
from server.inbox import notify
from server.models import (
    Status,
    StatusCategory,
    StoredFile,
    Task,
)
from server.policy import Action, visible_items
from server.schemas import Page, TaskIn, TaskOut, TaskPatch, TaskQuery
from server.waiting import rules as waiting

# What a customer may change on a task assigned to them: where it stands, nothing else.
CUSTOMER_MOVABLE = frozenset({"status_id", "position"})


# Changes that may make a task start or stop waiting on someone (due dates reorder their lists).
WAITING_FIELDS = frozenset({"status_id", "assignee_id", "visibility", "due_date"})


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
    task_id = ctx.path_int("task_id")
    target: Status | None = None
    has_webhooks = False  # only a move tells webhooks
    if "status_id" in changes:  # a move: the status it goes to, and whether webhooks may hear of it, come with the task
        task, project, status_before, target, has_webhooks = await task_for_move(
            ctx.session, ctx.actor, task_id, action, changes["status_id"]
        )
    else:
        task, project, status_before = await task_for(ctx.session, ctx.actor, task_id, action)
    assert project.id is not None
    if based_on is not None and based_on != task.version:
        # An edit made on an older copy would silently undo someone else's: the client fetches the task again.
        raise ApiError(409, "version_conflict", "The task changed since you opened it: look at the new version.")
    previous_visibility = task.visibility
    assignee_before = task.assignee_id
    waiting_before = waiting_state(task, status_before)
    # Both status rows stay referenced to the end, so the feed, the notification and the webhook name them from the
    # session's identity map (weak references) without reading them again.
    activity_before = await activity.task_state(ctx.session, task)
    visibility = changes.get("visibility", task.visibility)
    status = status_before
    if "status_id" in changes and changes["status_id"] != task.status_id:
        if target is None:
            raise unknown_status()
        status = target
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
    await activity.task_changed(ctx, task, activity_before)
    await notify.task_changed(ctx, task, assignee_before=assignee_before, status_before=status_before.id)
    if status is not status_before and has_webhooks:
        await ctx.services.webhooks.task_status_changed(ctx, out, status_before, status)
    if changes.keys() & WAITING_FIELDS:
        await waiting.task_moved(ctx, project.id, before=waiting_before, after=waiting_state(task, status))
    return out


@api.route(
    "DELETE", "/api/tasks/{task_id:int}", summary="Delete a task", tag="tasks", status=204, errors=(401, 403, 404)
)
async def delete_task(ctx: Context) -> None:
    task, _, status = await task_for(ctx.session, ctx.actor, ctx.path_int("task_id"), Action.TASK_DELETE)
    out = await task_out(ctx, task, status)
    await purge_blobs_after_commit(ctx, col(StoredFile.task_id) == task.id)
    await waiting.task_moved(ctx, task.project_id, before=waiting_state(task, status), after=None)
    await ctx.session.delete(task)
    await ctx.services.live.task_deleted(ctx, out)
