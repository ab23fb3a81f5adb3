"""A person's "waiting on you" list: every kind of item that waits on them, across their projects (the queries; the
rule of what waits on whom is server/waiting/rules.py)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import Field
from sqlalchemy import ColumnElement, and_, exists, or_
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.board.rules import colour_class, today_utc
from server.discussion.rendering import excerpt
from server.discussion.rules import thread_rows_visible
from server.models import (
    ColourClass,
    Comment,
    FeedbackAnswer,
    FeedbackRequest,
    Mention,
    Milestone,
    Project,
    Request,
    RequestStatus,
    Status,
    StatusCategory,
    Task,
)
from server.policy import Actor, visible_items, visible_projects
from server.schemas import Out
from server.waiting.rules import customer_member_of, task_waits_on

MAX_ITEMS = 200


class WaitingKind(StrEnum):
    TASK = "task"
    REQUEST = "request"
    FEEDBACK = "feedback"
    MENTION = "mention"


class WaitingItemOut(Out):
    kind: WaitingKind = Field(description="task, request (needs information), feedback (asked) or mention.")
    id: int = Field(description="The task's, request's, feedback request's or (for a mention) comment's id.")
    project_id: int
    project_name: str
    task_id: int | None = Field(description="The task (for task and mention items).")
    title: str = Field(description="The task's or request's title; for feedback, the milestone or project name.")
    excerpt: str = Field(description="For a mention: the start of the comment.")
    due_date: dt.date | None
    colour_class: ColourClass = Field(description="By due date, as on boards; undated items are on_track.")
    since: dt.datetime = Field(description="When the item started waiting (asked, mentioned, last changed).")
    link: str = Field(description="Where the web client shows the item.")


class WaitingList(Out):
    items: list[WaitingItemOut] = Field(description="Most urgent first: overdue, due soon, then the oldest.")


_URGENCY = {ColourClass.OVERDUE: 0, ColourClass.DUE_SOON: 1, ColourClass.ON_TRACK: 2, ColourClass.DONE: 3}


def _urgency(item: WaitingItemOut) -> tuple[int, dt.date, dt.datetime]:
    return (_URGENCY[item.colour_class], item.due_date or dt.date.max, item.since)


async def waiting_on(session: AsyncSession, actor: Actor, due_soon_days: int) -> list[WaitingItemOut]:
    """Everything waiting on ``actor`` in the projects they may see (not archived), most urgent first."""
    scope = [visible_projects(actor), col(Project.archived).is_(False)]
    items = [
        *await _tasks(session, actor, scope, due_soon_days),
        *await _requests(session, actor, scope),
        *await _feedback(session, actor, scope),
        *await _mentions(session, actor, scope),
    ]
    items.sort(key=_urgency)
    return items[:MAX_ITEMS]


async def _tasks(
    session: AsyncSession, actor: Actor, scope: list[ColumnElement[bool]], days: int
) -> list[WaitingItemOut]:
    rows = (
        await session.exec(
            select(Task, Project.name, Status.category)
            .join(Project, col(Project.id) == Task.project_id)
            .join(Status, col(Status.id) == Task.status_id)
            .where(*scope, visible_items(actor, Task), task_waits_on(actor.user_id))
            .order_by(col(Task.due_date), col(Task.id))
            .limit(MAX_ITEMS)
        )
    ).all()
    today = today_utc()
    return [
        WaitingItemOut(
            kind=WaitingKind.TASK,
            id=task.id,
            project_id=task.project_id,
            project_name=name,
            task_id=task.id,
            title=task.title,
            excerpt="",
            due_date=task.due_date,
            colour_class=colour_class(category, task.due_date, today, days),
            since=task.updated_at,
            link=f"/projects/{task.project_id}/tasks/{task.id}",
        )
        for task, name, category in rows
        if task.id is not None
    ]


async def _requests(session: AsyncSession, actor: Actor, scope: list[ColumnElement[bool]]) -> list[WaitingItemOut]:
    rows = (
        await session.exec(
            select(Request, Project.name)
            .join(Project, col(Project.id) == Request.project_id)
            .where(
                *scope,
                Request.status == RequestStatus.NEEDS_INFO,
                customer_member_of(actor.user_id, Request.project_id),
            )
            .order_by(col(Request.updated_at))
            .limit(MAX_ITEMS)
        )
    ).all()
    return [
        WaitingItemOut(
            kind=WaitingKind.REQUEST,
            id=request.id,
            project_id=request.project_id,
            project_name=name,
            task_id=None,
            title=request.title,
            excerpt="",
            due_date=None,
            colour_class=ColourClass.ON_TRACK,
            since=request.updated_at,
            link=f"/projects/{request.project_id}/requests/{request.id}",
        )
        for request, name in rows
        if request.id is not None
    ]


async def _feedback(session: AsyncSession, actor: Actor, scope: list[ColumnElement[bool]]) -> list[WaitingItemOut]:
    answered = exists().where(
        col(FeedbackAnswer.request_id) == FeedbackRequest.id, col(FeedbackAnswer.user_id) == actor.user_id
    )
    rows = (
        await session.exec(
            select(FeedbackRequest, Project.name, Milestone.name)
            .join(Project, col(Project.id) == FeedbackRequest.project_id)
            .outerjoin(Milestone, col(Milestone.id) == FeedbackRequest.milestone_id)
            .where(
                *scope,
                col(FeedbackRequest.closed_at).is_(None),
                customer_member_of(actor.user_id, FeedbackRequest.project_id),
                ~answered,
                # A request about a milestone made internal since is hidden with it.
                visible_items(actor, FeedbackRequest),
            )
            .order_by(col(FeedbackRequest.id))
            .limit(MAX_ITEMS)
        )
    ).all()
    return [
        WaitingItemOut(
            kind=WaitingKind.FEEDBACK,
            id=request.id,
            project_id=request.project_id,
            project_name=project_name,
            task_id=None,
            title=milestone_name or project_name,
            excerpt="",
            due_date=None,
            colour_class=ColourClass.ON_TRACK,
            since=request.created_at,
            link=f"/projects/{request.project_id}/reports#feedback",
        )
        for request, project_name, milestone_name in rows
        if request.id is not None
    ]


def _unanswered_mentions(user_id: int) -> ColumnElement[bool]:
    """On comments joined with their ``Task``: ``user_id`` is mentioned and has not commented on the task since."""
    later = aliased(Comment)
    answered = exists().where(
        col(later.task_id) == Comment.task_id, col(later.author_id) == user_id, col(later.id) > Comment.id
    )
    mentioned = select(Mention.comment_id).where(Mention.user_id == user_id)
    return and_(
        col(Comment.id).in_(mentioned),
        col(Comment.deleted_at).is_(None),
        or_(col(Comment.author_id).is_(None), col(Comment.author_id) != user_id),
        ~answered,
    )


async def _mentions(session: AsyncSession, actor: Actor, scope: list[ColumnElement[bool]]) -> list[WaitingItemOut]:
    rows = (
        await session.exec(
            select(Comment, Task.title, Project.name)
            .join(Task, col(Task.id) == Comment.task_id)
            .join(Project, col(Project.id) == Task.project_id)
            .join(Status, col(Status.id) == Task.status_id)
            .where(
                *scope,
                thread_rows_visible(actor),
                col(Status.category) != StatusCategory.DONE,
                _unanswered_mentions(actor.user_id),
            )
            .order_by(col(Comment.id))
            .limit(MAX_ITEMS)
        )
    ).all()
    return [
        WaitingItemOut(
            kind=WaitingKind.MENTION,
            id=comment.id,
            project_id=comment.project_id,
            project_name=project_name,
            task_id=comment.task_id,
            title=title,
            excerpt=excerpt(comment.body),
            due_date=None,
            colour_class=ColourClass.ON_TRACK,
            since=comment.created_at,
            link=f"/projects/{comment.project_id}/tasks/{comment.task_id}#comment-{comment.id}",
        )
        for comment, title, project_name in rows
        if comment.id is not None
    ]
