"""Rules of the inbox that the routes and the digest worker share: which notifications a person may still see."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, or_
from sqlmodel import col, select

from server.discussion.rules import thread_rows_visible
from server.models import Comment, Notification, Project, Request, Task
from server.policy import Actor, visible_items, visible_projects


def notifications_visible(actor: Actor) -> ColumnElement[bool]:
    """Notifications whose items the recipient can still see (an item may have become internal since)."""
    comment_ok = or_(
        col(Notification.comment_id).is_(None),
        col(Notification.comment_id).in_(
            select(Comment.id).join(Task, col(Task.id) == Comment.task_id).where(thread_rows_visible(actor))
        ),
    )
    task_ok = or_(
        col(Notification.task_id).is_(None),
        col(Notification.task_id).in_(
            select(Task.id)
            .join(Project, col(Project.id) == Task.project_id)
            .where(visible_projects(actor), visible_items(actor, Task))
        ),
    )
    request_ok = or_(
        col(Notification.request_id).is_(None),
        col(Notification.request_id).in_(
            select(Request.id).join(Project, col(Project.id) == Request.project_id).where(visible_projects(actor))
        ),
    )
    return and_(col(Notification.user_id) == actor.user_id, comment_ok, task_ok, request_ok)
