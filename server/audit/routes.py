"""``GET /api/audit``: the organization's audit log, for its admins (``server/audit/log.py`` writes it)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

from pydantic import Field, StringConstraints
from sqlmodel import col, select

from server.api import api
from server.context import Context
from server.models import AuditEvent, User
from server.policy import Action, Scope, authorize
from server.schemas import Id, Out, Page, PageQuery


class AuditQuery(PageQuery):
    action: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        None, description="An action (auth.login) or, ending in a dot, a family of them (auth.)."
    )
    actor_id: Id | None = None
    target_type: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = None
    target_id: Id | None = None
    since: dt.datetime | None = Field(None, description="From this time on (inclusive), ISO 8601.")
    until: dt.datetime | None = Field(None, description="Before this time (exclusive), ISO 8601.")


class AuditEventOut(Out):
    id: int
    action: str
    actor_id: int | None
    actor_name: str | None
    target_type: str
    target_id: int | None
    ip: str
    user_agent: str
    details: dict[str, Any]
    created_at: dt.datetime


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


@api.route(
    "GET",
    "/api/audit",
    summary="The organization's audit log, newest first (admins only)",
    tag="audit",
    query=AuditQuery,
    response=Page[AuditEventOut],
    errors=(401, 403, 422),
    scope=Scope.ADMIN,
)
async def list_audit_events(ctx: Context, query: AuditQuery) -> Page[AuditEventOut]:
    authorize(ctx.actor, Action.AUDIT_READ)
    stmt = (
        select(AuditEvent, User.name)
        .outerjoin(User, col(User.id) == AuditEvent.actor_id)
        .where(AuditEvent.organization_id == ctx.actor.organization_id)
    )
    if query.action is not None:
        if query.action.endswith("."):
            stmt = stmt.where(col(AuditEvent.action).startswith(query.action, autoescape=True))
        else:
            stmt = stmt.where(AuditEvent.action == query.action)
    if query.actor_id is not None:
        stmt = stmt.where(AuditEvent.actor_id == query.actor_id)
    if query.target_type is not None:
        stmt = stmt.where(AuditEvent.target_type == query.target_type)
    if query.target_id is not None:
        stmt = stmt.where(AuditEvent.target_id == query.target_id)
    if query.since is not None:
        stmt = stmt.where(col(AuditEvent.created_at) >= _aware(query.since))
    if query.until is not None:
        stmt = stmt.where(col(AuditEvent.created_at) < _aware(query.until))
    if query.cursor:
        stmt = stmt.where(col(AuditEvent.id) < int(query.cursor))
    rows = (await ctx.session.exec(stmt.order_by(col(AuditEvent.id).desc()).limit(query.limit + 1))).all()
    items = [
        AuditEventOut(
            id=event.id or 0,
            action=event.action,
            actor_id=event.actor_id,
            actor_name=name,
            target_type=event.target_type,
            target_id=event.target_id,
            ip=event.ip,
            user_agent=event.user_agent,
            details=json.loads(event.details),
            created_at=event.created_at,
        )
        for event, name in rows[: query.limit]
    ]
    return Page[AuditEventOut](items=items, next_cursor=str(items[-1].id) if len(rows) > query.limit else None)
