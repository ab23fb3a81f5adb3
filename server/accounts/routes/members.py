"""Project members, and invitations that bring new people in."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import update
from sqlmodel import col, select

from server.accounts.passwords import require_strong_password
from server.accounts.routes.accounts import sign_in
from server.api import api
from server.api.routing import ApiError
from server.audit.log import AuditAction, record
from server.board.rules import project_for
from server.context import Context
from server.db import utcnow
from server.i18n import message
from server.models import (
    CUSTOMER_PROJECT_ROLES,
    STAFF_PROJECT_ROLES,
    Invite,
    Membership,
    Organization,
    OrgRole,
    Project,
    User,
)
from server.policy import Action
from server.schemas import (
    InviteAcceptIn,
    InviteAcceptOut,
    InviteCreatedOut,
    InviteIn,
    InviteOut,
    InvitePreviewOut,
    InviteQuery,
    InviteTokenIn,
    MemberIn,
    MemberOut,
    MemberPatch,
    Out,
)
from server.security import hash_password, new_token, token_hash

log = logging.getLogger(__name__)


class MemberList(Out):
    items: list[MemberOut]


class InviteList(Out):
    items: list[InviteOut]


def member_out(ctx: Context, user: User, role: str) -> MemberOut:
    assert user.id is not None
    return MemberOut(
        user_id=user.id,
        name=user.name,
        email=user.email if ctx.actor.is_staff or user.id == ctx.actor.user_id else None,
        role=role,
        is_customer=not user.is_staff,
    )


def check_role_fits(user: User, project: Project, role: str) -> None:
    """Staff hold staff roles; customer users hold customer roles, and only on their own client's projects."""
    if user.is_staff and role not in STAFF_PROJECT_ROLES:
        raise ApiError(422, "invalid", "Staff members are managers or members of a project.", reason="staff_role")
    if not user.is_staff and (role not in CUSTOMER_PROJECT_ROLES or user.client_id != project.client_id):
        raise ApiError(
            422,
            "invalid",
            "Customer users join their own client's projects as customer or viewer.",
            reason="customer_role",
        )


@api.route(
    "GET",
    "/api/projects/{project_id:int}/members",
    summary="Who takes part in the project",
    tag="members",
    response=MemberList,
    errors=(401, 404),
)
async def list_members(ctx: Context) -> MemberList:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.MEMBER_READ)
    rows = await ctx.session.exec(
        select(User, Membership.role)
        .join(Membership, col(Membership.user_id) == User.id)
        .where(Membership.project_id == project.id, col(User.is_active).is_(True))
        .order_by(col(User.name))
    )
    return MemberList(items=[member_out(ctx, user, role) for user, role in rows.all()])


@api.route(
    "POST",
    "/api/projects/{project_id:int}/members",
    summary="Add a person of the organization",
    tag="members",
    body=MemberIn,
    response=MemberOut,
    status=201,
    errors=(401, 403, 404, 409, 422),
)
async def add_member(ctx: Context, body: MemberIn) -> MemberOut:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.MEMBER_MANAGE)
    user = await ctx.session.get(User, body.user_id)
    if user is None or user.organization_id != ctx.actor.organization_id:
        raise ApiError(422, "invalid", "user_id names no person of your organization.", reason="unknown_person")
    return await add_membership(ctx, project, user, body.role)


async def add_membership(ctx: Context, project: Project, user: User, role: str) -> MemberOut:
    check_role_fits(user, project, role)
    existing = (
        await ctx.session.exec(
            select(Membership).where(Membership.project_id == project.id, Membership.user_id == user.id)
        )
    ).first()
    if existing is not None:
        raise ApiError(409, "already_member", "This person is already a member.")
    assert project.id is not None and user.id is not None
    ctx.session.add(Membership(project_id=project.id, user_id=user.id, role=role))
    record(ctx, AuditAction.MEMBER_ADDED, "user", user.id, details={"project_id": project.id, "role": role})
    await ctx.services.live.membership_changed(ctx, project.id, user.id)
    return member_out(ctx, user, role)


async def _membership(ctx: Context, project: Project, user_id: int) -> tuple[Membership, User]:
    row = (
        await ctx.session.exec(
            select(Membership, User)
            .join(User, col(User.id) == Membership.user_id)
            .where(Membership.project_id == project.id, Membership.user_id == user_id)
        )
    ).first()
    if row is None:
        raise ApiError(404, "not_found", "No such member.")
    return row


@api.route(
    "PATCH",
    "/api/projects/{project_id:int}/members/{user_id:int}",
    summary="Change a member's role",
    tag="members",
    body=MemberPatch,
    response=MemberOut,
    errors=(401, 403, 404, 422),
)
async def change_member(ctx: Context, body: MemberPatch) -> MemberOut:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.MEMBER_MANAGE)
    membership, user = await _membership(ctx, project, ctx.path_int("user_id"))
    check_role_fits(user, project, body.role)
    before, membership.role = membership.role, body.role
    ctx.session.add(membership)
    assert project.id is not None and user.id is not None
    details = {"project_id": project.id, "from": before, "to": body.role}
    record(ctx, AuditAction.MEMBER_ROLE_CHANGED, "user", user.id, details=details)
    await ctx.services.live.membership_changed(ctx, project.id, user.id)
    return member_out(ctx, user, body.role)


@api.route(
    "DELETE",
    "/api/projects/{project_id:int}/members/{user_id:int}",
    summary="Remove a member; their live sockets lose the project at once",
    tag="members",
    status=204,
    errors=(401, 403, 404),
)
async def remove_member(ctx: Context) -> None:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.MEMBER_MANAGE)
    membership, user = await _membership(ctx, project, ctx.path_int("user_id"))
    await ctx.session.delete(membership)
    assert project.id is not None and user.id is not None
    record(
        ctx, AuditAction.MEMBER_REMOVED, "user", user.id, details={"project_id": project.id, "role": membership.role}
    )
    await ctx.services.live.membership_changed(ctx, project.id, user.id)


def invite_link(ctx: Context, token: str) -> str:
    return f"{ctx.services.settings.base_url}/invite#{token}"


async def _send_invite(ctx: Context, invite: Invite, project: Project, token: str) -> str | None:
    """Mail the invitation link; answer the link itself when no mail could be sent (the inviter passes it on)."""
    link = invite_link(ctx, token)
    organization = await ctx.session.get(Organization, project.organization_id)
    assert organization is not None
    # The invitee has no language yet: the mail is in the inviter's, who usually shares it with their customer.
    inviter = await ctx.session.get(User, ctx.actor.user_id)
    locale = inviter.locale if inviter is not None else "en"
    words = {
        "inviter": ctx.actor.name,
        "organization": organization.name,
        "project": project.name,
        "link": link,
        "hours": str(ctx.services.settings.invite_hours),
    }
    sent = await ctx.services.mailer.send(
        to=invite.email,
        subject=message(locale, "invite.subject", **words),
        body=message(locale, "invite.body", **words),
    )
    return None if sent else link


@api.route(
    "POST",
    "/api/invites",
    summary="Invite a person by email to a project (an existing colleague is added at once)",
    tag="invites",
    body=InviteIn,
    response=InviteCreatedOut,
    status=201,
    errors=(401, 403, 404, 409, 422),
)
async def create_invite(ctx: Context, body: InviteIn) -> InviteCreatedOut:
    project = await project_for(ctx.session, ctx.actor, body.project_id, Action.INVITE_CREATE)
    assert project.id is not None
    email = body.email.strip().lower()
    user = (await ctx.session.exec(select(User).where(User.email == email))).first()
    if user is not None:
        if user.organization_id != ctx.actor.organization_id:
            raise ApiError(409, "email_unavailable", "This email cannot be invited.")
        out = await add_membership(ctx, project, user, body.role)
        return InviteCreatedOut(status="added", invite=None, member=out, link=None)
    if body.role in STAFF_PROJECT_ROLES and not ctx.actor.is_admin:
        raise ApiError(403, "forbidden", "Only admins invite new staff.")
    token = new_token()
    now = utcnow()
    invite = Invite(
        organization_id=project.organization_id,
        project_id=project.id,
        email=email,
        name=body.name,
        role=body.role,
        token_hash=token_hash(token),
        invited_by_id=ctx.actor.user_id,
        created_at=now,
        expires_at=now + dt.timedelta(hours=ctx.services.settings.invite_hours),
    )
    ctx.session.add(invite)
    await ctx.session.flush()
    details = {"project_id": project.id, "email": email, "role": body.role}
    record(ctx, AuditAction.INVITE_CREATED, "invite", invite.id, details=details)
    link = await _send_invite(ctx, invite, project, token)
    return InviteCreatedOut(status="invited", invite=InviteOut.model_validate(invite), member=None, link=link)


@api.route(
    "GET",
    "/api/invites",
    summary="Pending and accepted invitations of a project",
    tag="invites",
    query=InviteQuery,
    response=InviteList,
    errors=(401, 403, 404, 422),
)
async def list_invites(ctx: Context, query: InviteQuery) -> InviteList:
    project = await project_for(ctx.session, ctx.actor, query.project_id, Action.MEMBER_MANAGE)
    rows = await ctx.session.exec(
        select(Invite).where(Invite.project_id == project.id).order_by(col(Invite.id).desc()).limit(200)
    )
    return InviteList(items=[InviteOut.model_validate(i) for i in rows.all()])


@api.route(
    "DELETE",
    "/api/invites/{invite_id:int}",
    summary="Revoke an invitation",
    tag="invites",
    status=204,
    errors=(401, 403, 404),
)
async def revoke_invite(ctx: Context) -> None:
    invite = await ctx.session.get(Invite, ctx.path_int("invite_id"))
    if invite is None:
        raise ApiError(404, "not_found", "No such invitation.")
    await project_for(ctx.session, ctx.actor, invite.project_id, Action.MEMBER_MANAGE)
    await ctx.session.delete(invite)
    details = {"project_id": invite.project_id, "email": invite.email, "accepted": invite.accepted_at is not None}
    record(ctx, AuditAction.INVITE_REVOKED, "invite", invite.id, details=details)


@api.route(
    "POST",
    "/api/invites/{invite_id:int}/resend",
    summary="Send a pending invitation again, with a new link (the earlier link stops working)",
    tag="invites",
    response=InviteCreatedOut,
    errors=(401, 403, 404, 409),
)
async def resend_invite(ctx: Context) -> InviteCreatedOut:
    invite = await ctx.session.get(Invite, ctx.path_int("invite_id"))
    if invite is None:
        raise ApiError(404, "not_found", "No such invitation.")
    project = await project_for(ctx.session, ctx.actor, invite.project_id, Action.MEMBER_MANAGE)
    if invite.accepted_at is not None:
        raise ApiError(409, "invite_accepted", "This invitation was accepted already.")
    if invite.role in STAFF_PROJECT_ROLES and not ctx.actor.is_admin:
        raise ApiError(403, "forbidden", "Only admins invite new staff.")
    token = new_token()
    now = utcnow()
    invite.token_hash = token_hash(token)
    invite.created_at = now
    invite.expires_at = now + dt.timedelta(hours=ctx.services.settings.invite_hours)
    ctx.session.add(invite)
    details = {"project_id": invite.project_id, "email": invite.email, "role": invite.role}
    record(ctx, AuditAction.INVITE_RESENT, "invite", invite.id, details=details)
    link = await _send_invite(ctx, invite, project, token)
    return InviteCreatedOut(status="invited", invite=InviteOut.model_validate(invite), member=None, link=link)


async def _open_invite(ctx: Context, token: str) -> tuple[Invite, Project]:
    invite = (await ctx.session.exec(select(Invite).where(Invite.token_hash == token_hash(token)))).first()
    if invite is None or invite.accepted_at is not None or invite.expires_at <= utcnow():
        raise ApiError(404, "invite_invalid", "This invitation link is invalid, used or expired.")
    project = await ctx.session.get(Project, invite.project_id)
    if project is None:
        raise ApiError(404, "invite_invalid", "This invitation link is invalid, used or expired.")
    return invite, project


@api.route(
    "POST",
    "/api/invites/preview",
    summary="What an invitation link is for (before accepting)",
    tag="invites",
    body=InviteTokenIn,
    response=InvitePreviewOut,
    public=True,
    errors=(404, 422),
)
async def preview_invite(ctx: Context, body: InviteTokenIn) -> InvitePreviewOut:
    invite, project = await _open_invite(ctx, body.token)
    organization = await ctx.session.get(Organization, project.organization_id)
    assert organization is not None
    return InvitePreviewOut(
        email=invite.email,
        project_name=project.name,
        organization_name=organization.name,
        role=invite.role,
        name=invite.name,
        passwordless=invite.role in CUSTOMER_PROJECT_ROLES or organization.allow_staff_link_sign_in,
    )


@api.route(
    "POST",
    "/api/invites/accept",
    summary="Accept an invitation: set a password (or not, to sign in by link later), join the project, and sign in",
    tag="invites",
    body=InviteAcceptIn,
    response=InviteAcceptOut,
    status=201,
    public=True,
    errors=(404, 409, 422),
)
async def accept_invite(ctx: Context, body: InviteAcceptIn) -> InviteAcceptOut:
    invite, project = await _open_invite(ctx, body.token)
    is_customer = invite.role in CUSTOMER_PROJECT_ROLES
    if body.password is not None:
        require_strong_password(body.password, email=invite.email)
    elif not is_customer:
        organization = await ctx.session.get(Organization, invite.organization_id)
        if organization is None or not organization.allow_staff_link_sign_in:
            raise ApiError(422, "password_required", "Choose a password: staff here sign in with one.")
    if (await ctx.session.exec(select(User).where(User.email == invite.email))).first() is not None:
        raise ApiError(409, "email_unavailable", "An account with this email exists: sign in instead.")
    user = User(
        organization_id=invite.organization_id,
        client_id=project.client_id if is_customer else None,
        email=invite.email,
        name=body.name,
        role=OrgRole.CUSTOMER if is_customer else OrgRole.STAFF,
        # No password: an empty hash, which no password matches (server/security.py); the person signs in by link.
        password_hash=hash_password(body.password) if body.password is not None else "",
        locale=body.locale,
    )
    ctx.session.add(user)
    await ctx.session.flush()
    assert user.id is not None and project.id is not None
    # Single use even when two tabs accept at once: only one conditional update can win.
    claimed = await ctx.session.exec(
        update(Invite)
        .where(col(Invite.id) == invite.id, col(Invite.accepted_at).is_(None))
        .values(accepted_at=utcnow(), accepted_user_id=user.id)
    )
    if claimed.rowcount != 1:
        raise ApiError(404, "invite_invalid", "This invitation link is invalid, used or expired.")
    ctx.session.add(Membership(project_id=project.id, user_id=user.id, role=invite.role))
    details = {"project_id": project.id, "role": invite.role, "user_id": user.id}
    record(
        ctx,
        AuditAction.INVITE_ACCEPTED,
        "invite",
        invite.id,
        details=details,
        actor_id=user.id,
        organization_id=invite.organization_id,
    )
    login = await sign_in(ctx, user)
    return InviteAcceptOut(**login.model_dump(), project_id=project.id)
