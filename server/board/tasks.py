"""Rules of tasks that several routes share: the checks a task's assignee and milestone pass, and creating a task
(the board's route, requests accepted as tasks, CSV imports) with every rule and live event of the API."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import col, select

from server.activity import rules as activity
from server.board.rules import check_wip_limit, status_in, task_out
from server.context import Context
from server.db import utcnow
from server.errors import Conflict, Invalid
from server.inbox import notify
from server.models import Membership, Milestone, Project, ProjectRole, Status, StatusCategory, Task, User, Visibility
from server.schemas import TaskIn, TaskOut
from server.waiting import rules as waiting


async def check_assignee(ctx: Context, project: Project, user_id: int, visibility: str) -> User:
    user = await ctx.session.get(User, user_id)
    if user is None or user.organization_id != project.organization_id or not user.is_active:
        raise Invalid("assignee_id names no participant of this project.", reason="unknown_assignee")
    if user.is_staff:
        return user
    membership = (
        await ctx.session.exec(
            select(Membership).where(Membership.project_id == project.id, Membership.user_id == user.id)
        )
    ).first()
    if membership is None or membership.role != ProjectRole.CUSTOMER or user.client_id != project.client_id:
        raise Invalid("assignee_id names no participant of this project.", reason="unknown_assignee")
    if visibility != Visibility.SHARED:
        raise Invalid(
            "An internal task cannot be assigned to a customer: share it first.",
            reason="internal_to_customer",
        )
    return user


async def check_milestone(ctx: Context, project: Project, milestone_id: int, visibility: str) -> None:
    milestone = await ctx.session.get(Milestone, milestone_id)
    if milestone is None or milestone.project_id != project.id:
        raise Invalid("milestone_id names no milestone of this project.", reason="unknown_milestone")
    if visibility == Visibility.SHARED and milestone.visibility != Visibility.SHARED:
        raise Invalid("A shared task cannot belong to an internal milestone.", reason="shared_under_internal")


def waiting_state(task: Task, status: Status) -> tuple[str, str, bool, int | None]:
    return task.visibility, status.category, status.waits_on_customer, task.assignee_id


async def add_task(ctx: Context, project: Project, body: TaskIn) -> TaskOut:
    """Create a task in ``project`` (the caller checked the actor may) with every rule and live event of the API.

    Raises:
        Conflict, Invalid: when the task breaks a rule of the project (status, assignee, milestone, WIP limit).
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
            raise Conflict("The project has no statuses.", code="no_workflow")
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
    await activity.task_changed(ctx, task, None)
    await notify.task_changed(ctx, task, assignee_before=None, status_before=None)
    await waiting.task_moved(ctx, project.id, before=None, after=waiting_state(task, status))
    return out
