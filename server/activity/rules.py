"""A project's activity: what changed, for the activity feed, "since your last visit" and the progress digest.

Handlers call the recorders below inside their transaction, so an event exists exactly when its change commits.
Each event keeps the audience it had when it happened (``shared`` only when the item and every parent it has were
shared) and, for a change, ``{"field": [old, new]}`` of the fields a customer can see on a shared item (title,
description, dates, status, priority, assignee, milestone; never the visibility itself).

Reading goes through the policy twice (:func:`visible_events`): a customer gets an event only when it was shared
when it happened *and* its item is still visible to them now (``server/policy.py``'s ``visible_items``, parents
included). So an item shared then made internal disappears from the feed with its whole history, a change made while
an item was internal never shows after it is shared, and an internal comment on a shared task, or a shared comment
on an internal task, never shows. Staff see every event of the projects they see.

Why a table of its own: the audit log holds security events, and outbox rows are deleted once published.
"""

from __future__ import annotations

import datetime as dt
import json
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import Field
from sqlalchemy import ColumnElement, and_, or_, true
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.db import get_held, insert_at_commit, utcnow
from server.discussion.rendering import excerpt
from server.models import (
    ActivityEvent,
    Comment,
    Milestone,
    Project,
    ProjectVisit,
    Request,
    Status,
    StatusCategory,
    Task,
    User,
    Visibility,
)
from server.policy import Actor, effective_visibility, visible_items
from server.schemas import Out

ACTIVITY_EVENTS = ActivityEvent.__table__  # type: ignore[attr-defined]

if TYPE_CHECKING:
    from server.context import Context


class ActivityKind(StrEnum):
    TASK_CREATED = "task.created"
    TASK_UPDATED = "task.updated"
    TASK_COMPLETED = "task.completed"
    TASK_SHARED = "task.shared"
    TASK_INTERNAL = "task.internal"
    MILESTONE_CREATED = "milestone.created"
    MILESTONE_UPDATED = "milestone.updated"
    MILESTONE_COMPLETED = "milestone.completed"
    MILESTONE_SHARED = "milestone.shared"
    MILESTONE_INTERNAL = "milestone.internal"
    COMMENT_CREATED = "comment.created"
    REQUEST_FILED = "request.filed"
    REQUEST_UPDATED = "request.updated"


# Changes of scope (what is to be done) and of dates: what the progress digest lists as "changed", old -> new.
SCOPE_AND_DATE_FIELDS = frozenset({"title", "description", "due_date", "milestone", "name"})
_TEXT_LIMIT = 200

State = dict[str, Any]
# Fields held as ids, shown by name: (state key, model). Names are read only for the ids that changed.
_NAMED = (("status", Status), ("assignee", User), ("milestone", Milestone))


async def task_state(session: AsyncSession, task: Task) -> State:
    """The fields of ``task`` the feed tracks: take it before changing the task (reads nothing but its status,
    which the request has loaded already)."""
    status = await get_held(session, Status, task.status_id)
    return {
        "title": task.title,
        "description": excerpt(task.description, _TEXT_LIMIT) if task.description else "",
        "due_date": task.due_date.isoformat() if task.due_date else None,
        "status": task.status_id,
        "priority": task.priority,
        "assignee": task.assignee_id,
        "milestone": task.milestone_id,
        "_visibility": task.visibility,
        "_category": status.category if status else None,
    }


async def _named(session: AsyncSession, changes: dict[str, list[Any]]) -> dict[str, list[str | None]]:
    """``changes`` with the ids of statuses, people and milestones replaced by their names."""
    for key, model in _NAMED:
        if key in changes:
            names = []
            for value in changes[key]:
                row = await get_held(session, model, value) if value is not None else None
                names.append(getattr(row, "name", None))
            changes[key] = names
    return changes


def milestone_state(milestone: Milestone) -> State:
    """The fields of ``milestone`` the feed tracks: take it before changing the milestone."""
    return {
        "name": milestone.name,
        "due_date": milestone.due_date.isoformat() if milestone.due_date else None,
        "_visibility": milestone.visibility,
        "_completed": "yes" if milestone.completed_at else None,
    }


def _diff(before: State, after: State) -> dict[str, list[Any]]:
    return {k: [before.get(k), v] for k, v in after.items() if not k.startswith("_") and before.get(k) != v}


def _record(ctx: Context, project_id: int, kind: ActivityKind, visibility: str, title: str, **fields: Any) -> None:
    changes = fields.pop("changes", None) or {}
    row = {
        "project_id": project_id,
        "kind": kind,
        "visibility": visibility,
        "actor_id": ctx.actor.user_id,
        "title": title[:300],
        "changes": json.dumps(changes, sort_keys=True),
        **fields,
    }
    insert_at_commit(ctx.session, ACTIVITY_EVENTS, row)  # written, never read back in the request: no ORM object


async def task_changed(ctx: Context, task: Task, before: State | None) -> None:
    """Record a created (``before`` None) or changed task; ``before`` is :func:`task_state` from before the change."""
    assert task.id is not None
    after = await task_state(ctx.session, task)
    visibility = task.visibility
    ids = {"task_id": task.id}
    if before is None:
        _record(ctx, task.project_id, ActivityKind.TASK_CREATED, visibility, task.title, **ids)
        return
    if before["_visibility"] != visibility:
        # Made shared: customers see it arrive (not what changed while it was internal). Made internal: staff only.
        kind = ActivityKind.TASK_SHARED if visibility == Visibility.SHARED else ActivityKind.TASK_INTERNAL
        _record(ctx, task.project_id, kind, visibility, task.title, **ids)
        return
    changes = await _named(ctx.session, _diff(before, after))
    if not changes:
        return
    completed = after["_category"] == StatusCategory.DONE and before["_category"] != StatusCategory.DONE
    kind = ActivityKind.TASK_COMPLETED if completed else ActivityKind.TASK_UPDATED
    _record(ctx, task.project_id, kind, visibility, task.title, changes=changes, **ids)


async def milestone_changed(ctx: Context, milestone: Milestone, before: State | None) -> None:
    """Record a created (``before`` None) or changed milestone; ``before`` is :func:`milestone_state`."""
    assert milestone.id is not None
    visibility = milestone.visibility
    ids = {"milestone_id": milestone.id}
    if before is None:
        _record(ctx, milestone.project_id, ActivityKind.MILESTONE_CREATED, visibility, milestone.name, **ids)
        return
    if before["_visibility"] != visibility:
        kind = ActivityKind.MILESTONE_SHARED if visibility == Visibility.SHARED else ActivityKind.MILESTONE_INTERNAL
        _record(ctx, milestone.project_id, kind, visibility, milestone.name, **ids)
        return
    after = milestone_state(milestone)
    changes = _diff(before, after)
    completed = after["_completed"] is not None and before["_completed"] is None
    if not changes and not completed:
        return
    kind = ActivityKind.MILESTONE_COMPLETED if completed else ActivityKind.MILESTONE_UPDATED
    _record(ctx, milestone.project_id, kind, visibility, milestone.name, changes=changes, **ids)


def comment_created(ctx: Context, comment: Comment, task: Task) -> None:
    """Record a new comment; shared only when the comment and its task are."""
    audience = effective_visibility(comment.visibility, [task.visibility])
    _record(
        ctx, comment.project_id, ActivityKind.COMMENT_CREATED, audience, task.title,
        task_id=task.id, comment_id=comment.id,
    )  # fmt: skip


def request_changed(ctx: Context, request: Request, *, filed: bool) -> None:
    """Record a filed request, or a step in its triage (requests are shared by nature)."""
    kind = ActivityKind.REQUEST_FILED if filed else ActivityKind.REQUEST_UPDATED
    changes = {} if filed else {"status": [None, request.status]}
    _record(ctx, request.project_id, kind, Visibility.SHARED, request.title, request_id=request.id, changes=changes)


# -- reading ------------------------------------------------------------------------------------------------


def visible_events(actor: Actor) -> ColumnElement[bool]:
    """A WHERE clause on ``activity_events`` (of projects ``actor`` sees): every event for staff; for customers the
    events that were shared when they happened and whose task, milestone and comment they may still see."""
    if actor.is_staff:
        return true()
    tasks = select(Task.id).where(visible_items(actor, Task)).correlate(None)
    milestones = select(Milestone.id).where(visible_items(actor, Milestone)).correlate(None)
    comments = (
        select(Comment.id).where(visible_items(actor, Comment), col(Comment.deleted_at).is_(None)).correlate(None)
    )
    return and_(
        col(ActivityEvent.visibility) == Visibility.SHARED,
        or_(col(ActivityEvent.task_id).is_(None), col(ActivityEvent.task_id).in_(tasks)),
        or_(col(ActivityEvent.milestone_id).is_(None), col(ActivityEvent.milestone_id).in_(milestones)),
        or_(col(ActivityEvent.comment_id).is_(None), col(ActivityEvent.comment_id).in_(comments)),
    )


class ActivityOut(Out):
    id: int
    project_id: int
    kind: str = Field(description="task.created, task.updated, task.completed, task.shared, milestone.*, "
                      "comment.created, request.filed, request.updated (and task.internal, milestone.internal for "
                      "staff).")  # fmt: skip
    internal: bool = Field(description="Staff only ever: the event concerns internal work.")
    title: str = Field(description="The task's, milestone's or request's title when it happened.")
    changes: dict[str, list[str | None]] = Field(description='{"field": [old, new]} for a change.')
    actor_name: str | None
    task_id: int | None
    milestone_id: int | None
    comment_id: int | None
    request_id: int | None
    link: str = Field(description="Where the web client shows the item.")
    created_at: dt.datetime


def link_of(event: ActivityEvent) -> str:
    base = f"/projects/{event.project_id}"
    if event.task_id is not None:
        anchor = f"#comment-{event.comment_id}" if event.comment_id is not None else ""
        return f"{base}/tasks/{event.task_id}{anchor}"
    if event.request_id is not None:
        return f"{base}/requests/{event.request_id}"
    if event.milestone_id is not None:
        return f"{base}/milestones"
    return f"{base}/activity"


def _out(event: ActivityEvent, actor_name: str | None) -> ActivityOut:
    assert event.id is not None
    return ActivityOut(
        id=event.id,
        project_id=event.project_id,
        kind=event.kind,
        internal=event.visibility != Visibility.SHARED,
        title=event.title,
        changes=json.loads(event.changes or "{}"),
        actor_name=actor_name,
        task_id=event.task_id,
        milestone_id=event.milestone_id,
        comment_id=event.comment_id,
        request_id=event.request_id,
        link=link_of(event),
        created_at=event.created_at,
    )


async def events_for(
    session: AsyncSession,
    actor: Actor,
    project_ids: list[int],
    *,
    since: dt.datetime | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[ActivityOut]:
    """The events of ``project_ids`` (projects the caller checked ``actor`` sees) that ``actor`` may see, newest
    first: after ``since`` and below id ``before_id`` when given, at most ``limit``."""
    if not project_ids:
        return []
    query = (
        select(ActivityEvent, User.name)
        .outerjoin(User, col(User.id) == ActivityEvent.actor_id)
        .where(col(ActivityEvent.project_id).in_(project_ids), visible_events(actor))
    )
    if since is not None:
        query = query.where(col(ActivityEvent.created_at) > since)
    if before_id is not None:
        query = query.where(col(ActivityEvent.id) < before_id)
    rows = (await session.exec(query.order_by(col(ActivityEvent.id).desc()).limit(limit))).all()
    return [_out(event, name) for event, name in rows]


async def last_visit(session: AsyncSession, user_id: int, project: Project) -> dt.datetime | None:
    visit = await session.get(ProjectVisit, (user_id, project.id))
    return visit.visited_at if visit else None


async def mark_visited(session: AsyncSession, user_id: int, project: Project) -> tuple[dt.datetime, dt.datetime | None]:
    """Record that ``user_id`` looked at ``project`` now. Returns (now, the visit before)."""
    assert project.id is not None
    visit = await session.get(ProjectVisit, (user_id, project.id))
    previous = visit.visited_at if visit else None
    now = utcnow()
    if visit is None:
        visit = ProjectVisit(user_id=user_id, project_id=project.id, visited_at=now)
    visit.visited_at = now
    session.add(visit)
    return now, previous
