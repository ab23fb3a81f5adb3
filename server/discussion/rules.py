"""Rules of task threads that several routes share: who sees which comments, who may be mentioned, unread counts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, and_, func, or_
from sqlmodel import col, select

from server.errors import Invalid
from server.inbox.notify import NotificationKind, notify
from server.models import Comment, Membership, Project, ReadPosition, Task, User, Visibility
from server.policy import Action, Actor, NotFound, authorize, visible_items

if TYPE_CHECKING:
    from server.context import Context


def comment_rows_visible(actor: Actor) -> ColumnElement[bool]:
    """A WHERE clause on comments: all for staff; for customers, shared comments of shared tasks."""
    return visible_items(actor, Comment)


def thread_rows_visible(actor: Actor) -> ColumnElement[bool]:
    """Comments ``actor`` may see, for queries that join ``Task``: both the comment and its task must be visible."""
    return and_(comment_rows_visible(actor), visible_items(actor, Task))


async def comment_for(ctx: Context, comment_id: int, action: Action) -> tuple[Comment, Task, Project]:
    """The comment, its task and project, if ``ctx.actor`` may see it and do ``action`` to it.

    Raises:
        NotFound: no such comment, or one the actor may not see (an internal one, for a customer).
        Forbidden: visible, but the action is not allowed (e.g. editing someone else's comment).
    """
    comment = await ctx.session.get(Comment, comment_id)
    if comment is None:
        raise NotFound
    task = await ctx.session.get(Task, comment.task_id)
    project = await ctx.session.get(Project, comment.project_id)
    if task is None or project is None:
        raise NotFound
    authorize(ctx.actor, Action.ITEM_READ, project, comment, parents=(task.visibility,))
    if action != Action.ITEM_READ:
        authorize(ctx.actor, action, project, comment, parents=(task.visibility,))
    return comment, task, project


async def mentionable_users(
    ctx: Context, project: Project, user_ids: set[int], visibility: str, task: Task | None
) -> list[User]:
    """The users a comment may mention: people of the project (and, for staff, any colleague); only staff in
    internal comments or on internal tasks, since nobody else could read them.

    Raises:
        Invalid: ``invalid_mention`` naming the ids that may not be mentioned (without saying whether they exist).
    """
    if not user_ids:
        return []
    members = set((await ctx.session.exec(select(Membership.user_id).where(Membership.project_id == project.id))).all())
    users = (await ctx.session.exec(select(User).where(col(User.id).in_(user_ids)))).all()
    staff_only = visibility == Visibility.INTERNAL or (task is not None and task.visibility == Visibility.INTERNAL)
    allowed: list[User] = []
    for user in users:
        if user.organization_id != project.organization_id or not user.is_active:
            continue
        if staff_only and not user.is_staff:
            continue
        if user.id in members or (ctx.actor.is_staff and user.is_staff):
            allowed.append(user)
    refused = user_ids - {u.id for u in allowed}
    if refused:
        raise Invalid(
            "Some mentioned people cannot see this comment.",
            code="invalid_mention",
            details=[{"field": "mentions", "message": str(i), "type": "not_mentionable"} for i in sorted(refused)],
        )
    return allowed


async def mentionable_people(ctx: Context, project: Project, internal: bool) -> list[User]:
    """The autocomplete source for mentions in ``project``."""
    members = select(Membership.user_id).where(Membership.project_id == project.id)
    who: ColumnElement[bool] = col(User.id).in_(members)
    if ctx.actor.is_staff:
        who = or_(who, col(User.role).in_(["owner", "admin", "staff"]))
    stmt = select(User).where(User.organization_id == project.organization_id, col(User.is_active).is_(True), who)
    if internal:
        stmt = stmt.where(col(User.role) != "customer")
    return list((await ctx.session.exec(stmt.order_by(col(User.name)).limit(500))).all())


async def notify_mentions(ctx: Context, comment: Comment, task: Task, mentioned: list[User]) -> None:
    for user in mentioned:
        if user.id is not None:
            await notify(
                ctx,
                user.id,
                NotificationKind.MENTION,
                {"actor": ctx.actor.name, "task": task.title},
                project_id=comment.project_id,
                task_id=comment.task_id,
                comment_id=comment.id,
            )


async def unread_counts(ctx: Context, project_id: int, task_ids: list[int] | None = None) -> dict[int, int]:
    """Unread comments per task for ``ctx.actor``: visible to them, not their own, not deleted, newer than
    their read position."""
    me = ctx.actor.user_id
    stmt = (
        select(Comment.task_id, func.count())
        .join(Task, col(Task.id) == Comment.task_id)
        .outerjoin(ReadPosition, and_(col(ReadPosition.task_id) == Comment.task_id, col(ReadPosition.user_id) == me))
        .where(
            Comment.project_id == project_id,
            col(Comment.deleted_at).is_(None),
            or_(col(Comment.author_id).is_(None), col(Comment.author_id) != me),
            col(Comment.id) > func.coalesce(ReadPosition.last_read_comment_id, 0),
            thread_rows_visible(ctx.actor),
        )
        .group_by(col(Comment.task_id))
    )
    if task_ids is not None:
        stmt = stmt.where(col(Comment.task_id).in_(task_ids))
    return {task_id: count for task_id, count in (await ctx.session.exec(stmt)).all()}
