"""Rules of the board: default workflows, colour classes, the task presenter, loading projects, tasks and milestones
by id, WIP limits and project summaries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from sqlalchemy import bindparam, case, func, update
from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.context import Context
from server.errors import Conflict, Invalid
from server.models import (
    ColourClass,
    Milestone,
    Project,
    Status,
    StatusCategory,
    Task,
    User,
    Webhook,
)
from server.policy import Action, Actor, NotFound, authorize, visible_items
from server.schemas import PersonOut, ProjectSummary, TaskOut
from server.waiting.rules import task_waits_on_customer, waits_on_customer

DEFAULT_WORKFLOW: tuple[tuple[str, StatusCategory, str], ...] = (
    ("To do", StatusCategory.TODO, "#8b949e"),
    ("In progress", StatusCategory.ACTIVE, "#1f6feb"),
    ("Waiting on customer", StatusCategory.BLOCKED, "#d29922"),
    ("Done", StatusCategory.DONE, "#2da44e"),
)


def default_statuses(project_id: int) -> list[Status]:
    """The default workflow; its "Waiting on customer" column is the one whose tasks wait on the customer."""
    return [
        Status(
            project_id=project_id,
            name=name,
            category=category,
            colour=colour,
            position=i,
            waits_on_customer=category == StatusCategory.BLOCKED,
        )
        for i, (name, category, colour) in enumerate(DEFAULT_WORKFLOW)
    ]


def colour_class(category: str, due: dt.date | None, today: dt.date, due_soon_days: int) -> ColourClass:
    """How a task shows on a board: done, overdue (due before today), due soon (within ``due_soon_days``), on track.

    A task without a due date is on track until it is done. Dates are compared in UTC.
    """
    if category == StatusCategory.DONE:
        return ColourClass.DONE
    if due is None:
        return ColourClass.ON_TRACK
    if due < today:
        return ColourClass.OVERDUE
    if (due - today).days <= due_soon_days:
        return ColourClass.DUE_SOON
    return ColourClass.ON_TRACK


def today_utc() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


class TaskView:
    """Turns tasks into ``TaskOut`` with their status category and assignee, loading what it needs once."""

    def __init__(self, statuses: Iterable[Status], people: Iterable[User], due_soon_days: int) -> None:
        statuses = list(statuses)
        self.categories = {s.id: s.category for s in statuses}
        self.waits_on_customer = {s.id: s.waits_on_customer for s in statuses}
        self.people = {u.id: u for u in people}
        self.due_soon_days = due_soon_days
        self.today = today_utc()

    @classmethod
    async def for_tasks(
        cls, session: AsyncSession, tasks: Sequence[Task], due_soon_days: int, known: Sequence[Status] = ()
    ) -> TaskView:
        """The view of ``tasks``, reading the statuses (but those ``known`` already) and assignees they name."""
        status_ids = {t.status_id for t in tasks} - {s.id for s in known}
        people_ids = {t.assignee_id for t in tasks if t.assignee_id is not None}
        statuses = (
            [*known, *(await session.exec(select(Status).where(col(Status.id).in_(status_ids)))).all()]
            if status_ids
            else known
        )
        people = (await session.exec(select(User).where(col(User.id).in_(people_ids)))).all() if people_ids else []
        return cls(statuses, people, due_soon_days)

    def out(self, task: Task, cls: type[TaskOut] = TaskOut, **extra: object) -> TaskOut:
        assert task.id is not None
        category = self.categories[task.status_id]
        person = self.people.get(task.assignee_id) if task.assignee_id else None
        assignee = (
            PersonOut(id=person.id, name=person.name, is_customer=not person.is_staff)
            if person is not None and person.id is not None
            else None
        )
        return cls(
            id=task.id,
            project_id=task.project_id,
            title=task.title,
            description=task.description,
            status_id=task.status_id,
            status_category=StatusCategory(category),
            assignee=assignee,
            waiting_on_customer=waits_on_customer(
                task.visibility,
                category,
                self.waits_on_customer[task.status_id],
                assignee is not None and assignee.is_customer,
            ),
            colour_class=colour_class(category, task.due_date, self.today, self.due_soon_days),
            due_date=task.due_date,
            priority=task.priority,
            milestone_id=task.milestone_id,
            visibility=task.visibility,
            position=task.position,
            version=task.version,
            created_at=task.created_at,
            updated_at=task.updated_at,
            completed_at=task.completed_at,
            **extra,
        )


async def project_for(session: AsyncSession, actor: Actor, project_id: int, action: Action) -> Project:
    """The project, if ``actor`` may do ``action`` to it.

    Raises:
        NotFound: no such project, or one the actor may not see.
        Forbidden: visible, but the action is not allowed.
    """
    project = await session.get(Project, project_id)
    if project is None:
        raise NotFound
    authorize(actor, action, project)
    return project


# Built once: constructing a statement costs about as much as SQLAlchemy's cached execution of it.
_TASK_PROJECT_STATUS = (
    select(Task, Project, Status)
    .join(Project, col(Project.id) == Task.project_id)
    .join(Status, col(Status.id) == Task.status_id)
    .where(Task.id == bindparam("task_id"))
)


async def task_for(session: AsyncSession, actor: Actor, task_id: int, action: Action) -> tuple[Task, Project, Status]:
    """The task, its project and its status (read in one query), if ``actor`` may do ``action`` to the task.

    Raises:
        NotFound: no such task, or one the actor may not see.
        Forbidden: visible, but the action is not allowed.
    """
    row = (await session.exec(_TASK_PROJECT_STATUS, params={"task_id": task_id})).first()
    if row is None:
        raise NotFound
    task, project, status = row
    authorize(actor, action, project, task)
    return task, project, status


class TaskToMove(NamedTuple):
    """What a move reads, in one query (`task_for_move`)."""

    task: Task
    project: Project
    status: Status  # the task's status, before the move
    target: Status | None  # the status it is to move to, if the task's project has it
    # Whether the project has an enabled webhook (which a move may have to tell): without one the webhook
    # event is not even looked at, and its webhooks are not read.
    has_webhooks: bool


_TARGET = aliased(Status, name="target_status")
# sqlmodel's typed select stops at four columns; this one needs five.
_TASK_TO_MOVE = (
    sa_select(
        Task,
        Project,
        Status,
        _TARGET,
        sa_select(col(Webhook.id))
        .where(col(Webhook.project_id) == Task.project_id, col(Webhook.enabled).is_(True))
        .exists()
        .label("has_webhooks"),
    )
    .join(Project, col(Project.id) == Task.project_id)
    .join(Status, col(Status.id) == Task.status_id)
    .outerjoin(_TARGET, (col(_TARGET.id) == bindparam("target_id")) & (col(_TARGET.project_id) == Task.project_id))
    .where(col(Task.id) == bindparam("task_id"))
)


async def task_for_move(
    session: AsyncSession, actor: Actor, task_id: int, action: Action, status_id: int
) -> TaskToMove:
    """As :func:`task_for`, with what a move to ``status_id`` needs besides, read in the same query.

    The caller refuses the move when ``target`` is None (after its own checks): the task's project has no status
    ``status_id``.

    Raises:
        NotFound: no such task, or one the actor may not see.
        Forbidden: visible, but the action is not allowed.
    """
    params = {"task_id": task_id, "target_id": status_id}
    row = (await session.exec(_TASK_TO_MOVE, params=params)).first()  # type: ignore[call-overload]
    if row is None:
        raise NotFound
    found = TaskToMove(*row)
    authorize(actor, action, found.project, found.task)
    return found


async def milestone_for(
    session: AsyncSession, actor: Actor, milestone_id: int, action: Action
) -> tuple[Milestone, Project]:
    milestone = await session.get(Milestone, milestone_id)
    if milestone is None:
        raise NotFound
    project = await session.get(Project, milestone.project_id)
    if project is None:
        raise NotFound
    authorize(actor, Action.ITEM_READ, project, milestone)
    authorize(actor, action, project)
    return milestone, project


def unknown_status() -> Invalid:
    return Invalid("status_id names no status of this project.", reason="unknown_status")


async def status_in(session: AsyncSession, project_id: int, status_id: int) -> Status:
    status = await session.get(Status, status_id)
    if status is None or status.project_id != project_id:
        raise unknown_status()
    return status


async def check_wip_limit(session: AsyncSession, actor: Actor, status: Status) -> None:
    """Refuse one more task in ``status`` when it is at its WIP limit, counting the tasks ``actor`` may see.

    A customer's refusal must not reveal internal tasks, so their moves count only shared ones: a column can then
    hold more than its limit through internal tasks, which staff see on their board ("5 / 4").

    Raises:
        Conflict: ``wip_limit`` when the status already holds ``wip_limit`` tasks the actor may see.
    """
    if status.wip_limit is None:
        return
    # One writer at a time per limited status: each writer counts, then writes, so two that count at once would both
    # see the last free place. A no-op UPDATE of the status row holds its row lock (PostgreSQL) or the database's
    # write lock (SQLite) until the transaction ends, so the next writer counts after this one has committed.
    await session.exec(update(Status).where(col(Status.id) == status.id).values(wip_limit=Status.wip_limit))
    count = (
        await session.exec(select(func.count()).where(Task.status_id == status.id, visible_items(actor, Task)))
    ).one()
    if count >= status.wip_limit:
        raise Conflict(
            f"{status.name} holds at most {status.wip_limit} tasks: finish or move one first.", code="wip_limit"
        )


async def project_summaries(
    session: AsyncSession, actor: Actor, project_ids: Sequence[int], due_soon_days: int
) -> dict[int, ProjectSummary]:
    """Task counts per project (done, overdue, due soon, waiting on the customer as server/waiting/rules.py defines it),
    by the actor's visibility.

    One grouped query; the colour rules are those of :func:`colour_class`, in SQL.
    """
    if not project_ids:
        return {}
    today = today_utc()
    open_ = col(Status.category) != StatusCategory.DONE
    due = col(Task.due_date)
    # sqlmodel's typed select stops at four columns; this one needs six.
    rows = (
        await session.exec(  # type: ignore[call-overload]
            sa_select(
                col(Task.project_id),
                func.count(),
                func.sum(case((~open_, 1), else_=0)),
                func.sum(case((open_ & (due < today), 1), else_=0)),
                func.sum(
                    case((open_ & (due >= today) & (due <= today + dt.timedelta(days=due_soon_days)), 1), else_=0)
                ),
                func.sum(case((task_waits_on_customer(), 1), else_=0)),
            )
            .join(Status, col(Status.id) == Task.status_id)
            .where(col(Task.project_id).in_(project_ids), visible_items(actor, Task))
            .group_by(col(Task.project_id))
        )
    ).all()
    summaries = {
        pid: ProjectSummary(total=0, done=0, overdue=0, due_soon=0, waiting_on_customer=0) for pid in project_ids
    }
    for project_id, total, done, overdue, due_soon, waiting in rows:
        summaries[project_id] = ProjectSummary(
            total=total,
            done=done or 0,
            overdue=overdue or 0,
            due_soon=due_soon or 0,
            waiting_on_customer=waiting or 0,
        )
    return summaries


async def task_out(ctx: Context, task: Task, status: Status | None = None) -> TaskOut:
    """``task`` as the API shows it; ``status``, when the caller holds the task's status already, spares a query."""
    known = [status] if status is not None else []
    view = await TaskView.for_tasks(ctx.session, [task], ctx.services.settings.due_soon_days, known)
    return view.out(task)
