"""A project's workflow (its statuses) and its milestones."""

from __future__ import annotations

from sqlalchemy import func, update
from sqlmodel import col, select

from server.activity import rules as activity
from server.api import api
from server.api.routing import ApiError
from server.audit.log import visibility_changed
from server.board.rules import milestone_for, project_for, status_in
from server.context import Context
from server.db import utcnow
from server.feedback import requests as feedback
from server.models import Milestone, Status, Task, Visibility
from server.policy import Action, visible_items
from server.schemas import (
    MilestoneIn,
    MilestoneOut,
    MilestonePatch,
    Out,
    StatusDeleteQuery,
    StatusIn,
    StatusOut,
    StatusPatch,
)
from server.waiting import rules as waiting

MAX_STATUSES = 30


class StatusList(Out):
    items: list[StatusOut]


class MilestoneList(Out):
    items: list[MilestoneOut]


async def project_statuses(ctx: Context, project_id: int) -> list[StatusOut]:
    rows = await ctx.session.exec(
        select(Status).where(Status.project_id == project_id).order_by(col(Status.position), col(Status.id))
    )
    return [StatusOut.model_validate(s) for s in rows.all()]


@api.route(
    "GET",
    "/api/projects/{project_id:int}/statuses",
    summary="The project's workflow, in board order",
    tag="workflow",
    response=StatusList,
    errors=(401, 404),
)
async def list_statuses(ctx: Context) -> StatusList:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.PROJECT_READ)
    assert project.id is not None
    return StatusList(items=await project_statuses(ctx, project.id))


@api.route(
    "POST",
    "/api/projects/{project_id:int}/statuses",
    summary="Add a status to the workflow",
    tag="workflow",
    body=StatusIn,
    response=StatusOut,
    status=201,
    errors=(401, 403, 404, 409, 422),
)
async def create_status(ctx: Context, body: StatusIn) -> StatusOut:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.WORKFLOW_MANAGE)
    assert project.id is not None
    count = (await ctx.session.exec(select(func.count()).where(Status.project_id == project.id))).one()
    if count >= MAX_STATUSES:
        raise ApiError(
            409,
            "too_many_statuses",
            f"A workflow has at most {MAX_STATUSES} statuses.",
            params={"limit": MAX_STATUSES},
        )
    position = body.position if body.position is not None else count
    status = Status(
        project_id=project.id,
        name=body.name,
        category=body.category,
        colour=body.colour,
        position=position,
        wip_limit=body.wip_limit,
        waits_on_customer=body.waits_on_customer,
    )
    ctx.session.add(status)
    await ctx.session.flush()
    project_id = project.id
    await ctx.services.live.workflow_changed(ctx, project_id)
    return StatusOut.model_validate(status)


@api.route(
    "PATCH",
    "/api/projects/{project_id:int}/statuses/{status_id:int}",
    summary="Change a status",
    tag="workflow",
    body=StatusPatch,
    response=StatusOut,
    errors=(401, 403, 404, 422),
)
async def update_status(ctx: Context, body: StatusPatch) -> StatusOut:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.WORKFLOW_MANAGE)
    assert project.id is not None
    status = await ctx.session.get(Status, ctx.path_int("status_id"))
    if status is None or status.project_id != project.id:
        raise ApiError(404, "not_found", "No such status.")
    changes = body.model_dump(exclude_unset=True)
    for field, value in changes.items():
        setattr(status, field, value)
    ctx.session.add(status)
    project_id = project.id
    await ctx.services.live.workflow_changed(ctx, project_id)
    if changes.keys() & {"waits_on_customer", "category"}:
        await waiting.hint_project(ctx, project_id)
    return StatusOut.model_validate(status)


@api.route(
    "DELETE",
    "/api/projects/{project_id:int}/statuses/{status_id:int}",
    summary="Remove a status, moving its tasks to ?move_to= in the same transaction",
    tag="workflow",
    query=StatusDeleteQuery,
    status=204,
    errors=(401, 403, 404, 409, 422),
)
async def delete_status(ctx: Context, query: StatusDeleteQuery) -> None:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.WORKFLOW_MANAGE)
    assert project.id is not None
    status = await ctx.session.get(Status, ctx.path_int("status_id"))
    if status is None or status.project_id != project.id:
        raise ApiError(404, "not_found", "No such status.")
    remaining = (await ctx.session.exec(select(func.count()).where(Status.project_id == project.id))).one()
    if remaining <= 1:
        raise ApiError(409, "last_status", "A workflow needs at least one status.")
    in_use = (await ctx.session.exec(select(func.count()).where(Task.status_id == status.id))).one()
    if in_use:
        if query.move_to is None:
            raise ApiError(409, "status_in_use", f"{in_use} tasks have this status: say where they go with ?move_to=.")
        if query.move_to == status.id:
            raise ApiError(422, "invalid", "move_to must be another status.", reason="move_to_same")
        await status_in(ctx.session, project.id, query.move_to)
        await ctx.session.exec(
            update(Task)
            .where(col(Task.status_id) == status.id)
            .values(status_id=query.move_to, version=Task.version + 1, updated_at=utcnow())
        )
    await ctx.session.delete(status)
    project_id = project.id
    await ctx.services.live.workflow_changed(ctx, project_id, moved_tasks=bool(in_use))
    if in_use:
        await waiting.hint_project(ctx, project_id)


@api.route(
    "GET",
    "/api/projects/{project_id:int}/milestones",
    summary="The project's milestones",
    tag="milestones",
    response=MilestoneList,
    errors=(401, 404),
)
async def list_milestones(ctx: Context) -> MilestoneList:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.PROJECT_READ)
    rows = await ctx.session.exec(
        select(Milestone)
        .where(Milestone.project_id == project.id, visible_items(ctx.actor, Milestone))
        .order_by(col(Milestone.due_date).is_(None), col(Milestone.due_date), col(Milestone.id))
    )
    return MilestoneList(items=[MilestoneOut.model_validate(m) for m in rows.all()])


@api.route(
    "POST",
    "/api/projects/{project_id:int}/milestones",
    summary="Add a milestone",
    tag="milestones",
    body=MilestoneIn,
    response=MilestoneOut,
    status=201,
    errors=(401, 403, 404, 422),
)
async def create_milestone(ctx: Context, body: MilestoneIn) -> MilestoneOut:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.MILESTONE_MANAGE)
    assert project.id is not None
    milestone = Milestone(project_id=project.id, name=body.name, due_date=body.due_date, visibility=body.visibility)
    ctx.session.add(milestone)
    await ctx.session.flush()
    out = MilestoneOut.model_validate(milestone)
    await ctx.services.live.milestone_changed(ctx, out, None)
    await activity.milestone_changed(ctx, milestone, None)
    return out


@api.route(
    "GET",
    "/api/milestones/{milestone_id:int}",
    summary="A milestone",
    tag="milestones",
    response=MilestoneOut,
    errors=(401, 404),
)
async def get_milestone(ctx: Context) -> MilestoneOut:
    milestone, _ = await milestone_for(ctx.session, ctx.actor, ctx.path_int("milestone_id"), Action.ITEM_READ)
    return MilestoneOut.model_validate(milestone)


@api.route(
    "PATCH",
    "/api/milestones/{milestone_id:int}",
    summary="Change or complete a milestone",
    tag="milestones",
    body=MilestonePatch,
    response=MilestoneOut,
    errors=(401, 403, 404, 409, 422),
)
async def update_milestone(ctx: Context, body: MilestonePatch) -> MilestoneOut:
    milestone, project = await milestone_for(
        ctx.session, ctx.actor, ctx.path_int("milestone_id"), Action.MILESTONE_MANAGE
    )
    before = milestone.visibility
    activity_before = activity.milestone_state(milestone)
    changes = body.model_dump(exclude_unset=True)
    just_completed = False
    if "completed" in changes:
        completed = changes.pop("completed")
        just_completed = bool(completed) and milestone.completed_at is None
        milestone.completed_at = (milestone.completed_at or utcnow()) if completed else None
    for field, value in changes.items():
        setattr(milestone, field, value)
    if before == Visibility.SHARED and milestone.visibility == Visibility.INTERNAL:
        shared_tasks = (
            await ctx.session.exec(
                select(func.count()).where(Task.milestone_id == milestone.id, Task.visibility == Visibility.SHARED)
            )
        ).one()
        if shared_tasks:
            raise ApiError(409, "shared_tasks", "Shared tasks belong to this milestone: it must stay shared.")
    ctx.session.add(milestone)
    out = MilestoneOut.model_validate(milestone)
    await ctx.services.live.milestone_changed(ctx, out, before)
    visibility_changed(ctx, "milestone", milestone.id, before, milestone.visibility)
    await activity.milestone_changed(ctx, milestone, activity_before)
    if just_completed:
        await feedback.milestone_completed(ctx, milestone, project)  # asks the customers (shared milestones)
        await ctx.services.webhooks.milestone_completed(ctx, out)
    return out


@api.route(
    "DELETE",
    "/api/milestones/{milestone_id:int}",
    summary="Delete a milestone (its tasks stay)",
    tag="milestones",
    status=204,
    errors=(401, 403, 404),
)
async def delete_milestone(ctx: Context) -> None:
    milestone, _ = await milestone_for(ctx.session, ctx.actor, ctx.path_int("milestone_id"), Action.MILESTONE_MANAGE)
    out = MilestoneOut.model_validate(milestone)
    await ctx.session.exec(
        update(Task).where(col(Task.milestone_id) == milestone.id).values(milestone_id=None, version=Task.version + 1)
    )
    await ctx.session.delete(milestone)
    await ctx.services.live.milestone_deleted(ctx, out)
