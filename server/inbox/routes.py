"""What needs my attention: unread counts, notifications and mention autocomplete (search: server/search/routes.py)."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import col, select

from server.api import api
from server.board.rules import project_for
from server.context import Context
from server.db import utcnow
from server.discussion.rules import mentionable_people, unread_counts
from server.inbox.rules import notifications_visible
from server.models import Notification
from server.policy import Action
from server.schemas import (
    Id,
    In,
    NotificationOut,
    Out,
    Page,
    PageQuery,
    PersonOut,
    UnreadOut,
)


class PeopleList(Out):
    items: list[PersonOut]


class MentionableQuery(In):
    internal: bool = False


class NotificationQuery(PageQuery):
    unread: bool | None = None


class NotificationsReadIn(In):
    ids: list[Id] | None = None
    all: bool = False


@api.route(
    "GET",
    "/api/projects/{project_id:int}/unread",
    summary="My unread comments, per task",
    tag="discussion",
    response=UnreadOut,
    errors=(401, 404),
)
async def project_unread(ctx: Context) -> UnreadOut:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.PROJECT_READ)
    assert project.id is not None
    counts = await unread_counts(ctx, project.id)
    return UnreadOut(
        project_id=project.id, total=sum(counts.values()), tasks={str(task_id): n for task_id, n in counts.items()}
    )


@api.route(
    "GET",
    "/api/projects/{project_id:int}/mentionable",
    summary="Who I can mention here (autocomplete)",
    tag="discussion",
    query=MentionableQuery,
    response=PeopleList,
    errors=(401, 404, 422),
)
async def mentionable(ctx: Context, query: MentionableQuery) -> PeopleList:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.PROJECT_READ)
    people = await mentionable_people(ctx, project, internal=query.internal and ctx.actor.is_staff)
    return PeopleList(
        items=[PersonOut(id=u.id, name=u.name, is_customer=not u.is_staff) for u in people if u.id is not None]
    )


@api.route(
    "GET",
    "/api/notifications",
    summary="My notifications, newest first",
    tag="discussion",
    query=NotificationQuery,
    response=Page[NotificationOut],
    errors=(401, 422),
)
async def list_notifications(ctx: Context, query: NotificationQuery) -> Page[NotificationOut]:
    stmt = select(Notification).where(notifications_visible(ctx.actor))
    if query.unread is not None:
        stmt = stmt.where(
            col(Notification.read_at).is_(None) if query.unread else col(Notification.read_at).is_not(None)
        )
    if query.cursor:
        stmt = stmt.where(col(Notification.id) < int(query.cursor))
    rows = (await ctx.session.exec(stmt.order_by(col(Notification.id).desc()).limit(query.limit + 1))).all()
    items = [NotificationOut.model_validate(n) for n in rows[: query.limit]]
    return Page[NotificationOut](items=items, next_cursor=str(items[-1].id) if len(rows) > query.limit else None)


@api.route(
    "POST",
    "/api/notifications/read",
    summary="Mark notifications read (some, or all)",
    tag="discussion",
    body=NotificationsReadIn,
    status=204,
    errors=(401, 422),
)
async def read_notifications(ctx: Context, body: NotificationsReadIn) -> None:
    stmt = update(Notification).where(
        col(Notification.user_id) == ctx.actor.user_id, col(Notification.read_at).is_(None)
    )
    if not body.all:
        stmt = stmt.where(col(Notification.id).in_(body.ids or []))
    await ctx.session.exec(stmt.values(read_at=utcnow()))
    ctx.services.live.notifications_read(ctx, None if body.all else sorted(set(body.ids or [])))
