"""The organization's staff: listed for every colleague, managed by its owners (role and access)."""

from __future__ import annotations

from typing import Literal

from sqlmodel import col, select

from server.api import api
from server.api.routing import ApiError
from server.audit.log import AuditAction, record
from server.context import Context
from server.live.control import AccessChanged, Subject
from server.models import STAFF_ROLES, OrgRole, User
from server.policy import Action, NotFound, Scope, authorize
from server.schemas import In, Out


class StaffOut(Out):
    id: int
    name: str
    email: str
    role: OrgRole
    active: bool


class StaffList(Out):
    items: list[StaffOut]


class StaffPatch(In):
    role: Literal["admin", "staff"] | None = None
    active: bool | None = None


def _staff_out(user: User) -> StaffOut:
    assert user.id is not None
    return StaffOut(id=user.id, name=user.name, email=user.email, role=OrgRole(user.role), active=user.is_active)


@api.route(
    "GET",
    "/api/staff",
    summary="The organization's staff, deactivated ones too (staff)",
    tag="staff",
    response=StaffList,
    errors=(401, 403),
)
async def list_staff(ctx: Context) -> StaffList:
    authorize(ctx.actor, Action.STAFF_READ)
    rows = await ctx.session.exec(
        select(User)
        .where(User.organization_id == ctx.actor.organization_id, col(User.role).in_(list(STAFF_ROLES)))
        .order_by(col(User.name), col(User.id))
    )
    return StaffList(items=[_staff_out(u) for u in rows.all()])


@api.route(
    "PATCH",
    "/api/staff/{user_id:int}",
    summary="Make a colleague an admin or staff, or deactivate them (owners)",
    tag="staff",
    body=StaffPatch,
    response=StaffOut,
    errors=(401, 403, 404, 409, 422),
    scope=Scope.ADMIN,
)
async def change_staff(ctx: Context, body: StaffPatch) -> StaffOut:
    user = await ctx.session.get(User, ctx.path_int("user_id"))
    if user is None or user.organization_id != ctx.actor.organization_id or user.role not in STAFF_ROLES:
        raise NotFound
    authorize(ctx.actor, Action.STAFF_MANAGE)
    # An owner stays an owner: nobody demotes or locks out the organization's owners here (nor themselves).
    if user.role == OrgRole.OWNER or user.id == ctx.actor.user_id:
        raise ApiError(409, "owner_locked", "Owners, and you yourself, are not changed here.")
    assert user.id is not None
    if body.role is not None and body.role != user.role:
        record(ctx, AuditAction.STAFF_ROLE_CHANGED, "user", user.id, details={"from": user.role, "to": body.role})
        user.role = body.role
        ctx.services.live.access_changed(ctx, AccessChanged(Subject.USER, user.id))  # what they may do changed
    if body.active is not None and body.active != user.is_active:
        user.is_active = body.active
        record(ctx, AuditAction.STAFF_ACTIVE_CHANGED, "user", user.id, details={"active": body.active})
        if not body.active:
            await ctx.services.auth.end_all_sessions(ctx.session, user.id)
            await ctx.services.live.disconnect_user(ctx, user.id)
    ctx.session.add(user)
    return _staff_out(user)
