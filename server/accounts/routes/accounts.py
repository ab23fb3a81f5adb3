"""Sign in, sign out, and the signed-in user's own view: profile, memberships and action items."""

from __future__ import annotations

from sqlmodel import col, select

from server.accounts.auth import credentials
from server.accounts.notices import Notice, notify, remember_device
from server.accounts.passwords import require_strong_password
from server.accounts.second_factor import factors_of, required_of, sign_in_ticket
from server.api import api
from server.api.routing import ApiError
from server.audit import log as audit
from server.audit.log import AuditAction
from server.board.rules import TaskView
from server.context import Context
from server.errors import Unauthenticated
from server.live.control import AccessChanged, Subject
from server.models import AuthSession, Membership, Organization, Project, Status, StatusCategory, Task, User
from server.policy import Actor, visible_items, visible_projects
from server.schemas import (
    ActionItemOut,
    LoginIn,
    LoginOut,
    MembershipOut,
    MeOut,
    MePatch,
    PasswordIn,
    SecondFactorStepOut,
    SessionOut,
    UserOut,
)
from server.security import csrf_token, hash_password, token_hash, verify_password


def user_out(user: User, viewer: Actor | None = None) -> UserOut:
    assert user.id is not None
    show_email = viewer is None or viewer.is_staff or viewer.user_id == user.id
    return UserOut(
        id=user.id,
        name=user.name,
        email=user.email if show_email else None,
        role=user.role,
        client_id=user.client_id,
        locale=user.locale,
    )


def client_ip(ctx: Context) -> str:
    return ctx.request.client.host if ctx.request.client else "unknown"


async def sign_in(ctx: Context, user: User, *, second_factor_done: bool = False) -> LoginOut:
    """Start a fresh session for ``user`` (never reusing one the browser brought: no fixation), once every step is
    done: a person with a second factor who has shown only a password (or a link) gets a sign-in ticket instead,
    for the second step (server/accounts/second_factor.py). One whose organization requires a factor they have not
    set up gets a session that may only enrol."""
    assert user.id is not None
    services = ctx.services
    factors = await factors_of(ctx.session, user.id)
    if factors.any and not second_factor_done:
        ticket = sign_in_ticket(services.settings.secret_key, user, services.auth.clock())
        return LoginOut(second_factor=SecondFactorStepOut(ticket=ticket, methods=factors.methods))
    organization = await ctx.session.get(Organization, user.organization_id)
    enrol = not factors.any and organization is not None and required_of(user, organization)
    token = await services.auth.start_session(
        ctx.session, user, ctx.request.headers.get("user-agent", ""), client_ip(ctx), needs_enrolment=enrol
    )
    await remember_device(ctx, user)
    ctx.set_cookies.extend(services.auth.session_cookies(token))
    return LoginOut(
        token=token,
        csrf_token=csrf_token(services.settings.secret_key, token),
        user=user_out(user),
        enrolment_required=enrol,
    )


@api.route(
    "POST",
    "/api/auth/login",
    summary="Sign in with email and password",
    tag="accounts",
    body=LoginIn,
    response=LoginOut,
    public=True,
    errors=(401, 422, 429),
)
async def login(ctx: Context, body: LoginIn) -> LoginOut:
    email = body.email.strip().lower()
    auth = ctx.services.auth
    try:
        await auth.check_login_rate(email, client_ip(ctx))
        user = await auth.login(ctx.session, email, body.password)
    except Unauthenticated as exc:  # not rate limits: writing those would let a flood grow the table without limit
        await auth.throttle.failed(email, client_ip(ctx))
        await audit.login_failed(ctx, email, exc.code)
        raise
    await auth.throttle.succeeded(email)
    answer = await sign_in(ctx, user)
    details = {"second_factor": "asked"} if answer.second_factor is not None else None
    audit.record(
        ctx, AuditAction.LOGIN, "user", user.id, actor_id=user.id, organization_id=user.organization_id, details=details
    )
    return answer


@api.route(
    "GET",
    "/api/auth/session",
    summary="Who is signed in (null if nobody): always 200",
    tag="accounts",
    response=SessionOut,
    public=True,
)
async def session(ctx: Context) -> SessionOut:
    if ctx.actor_or_none is None:
        return SessionOut(user=None)
    user = await ctx.session.get(User, ctx.actor_or_none.user_id)
    return SessionOut(user=user_out(user) if user is not None else None, enrolment_required=await enrolling(ctx))


async def enrolling(ctx: Context) -> bool:
    """Whether the asking session must still set up a second factor (a bearer API token never must)."""
    creds = credentials(ctx.request)
    if creds is None:
        return False
    row = (
        await ctx.session.exec(
            select(AuthSession.needs_enrolment).where(AuthSession.token_hash == token_hash(creds.token))
        )
    ).first()
    return bool(row)


@api.route(
    "POST", "/api/auth/logout", summary="End this session", tag="accounts", status=204, errors=(401,), session_only=True
)
async def logout(ctx: Context) -> None:
    creds = credentials(ctx.request)
    assert creds is not None  # authenticated, so it carried a token
    await ctx.services.auth.end_session(ctx.session, creds.token)
    audit.record(ctx, AuditAction.LOGOUT, "user", ctx.actor.user_id)
    ctx.set_cookies.extend(ctx.services.auth.clear_cookies())
    await ctx.services.live.disconnect_user(ctx, ctx.actor.user_id, token=creds.token)


@api.route(
    "POST",
    "/api/auth/logout-everywhere",
    summary="End every session of mine",
    tag="accounts",
    status=204,
    errors=(401,),
    session_only=True,
)
async def logout_everywhere(ctx: Context) -> None:
    await ctx.services.auth.end_all_sessions(ctx.session, ctx.actor.user_id)
    audit.record(ctx, AuditAction.SESSIONS_REVOKED, "user", ctx.actor.user_id)
    ctx.set_cookies.extend(ctx.services.auth.clear_cookies())
    await ctx.services.live.disconnect_user(ctx, ctx.actor.user_id)


async def action_items(ctx: Context) -> list[ActionItemOut]:
    actor = ctx.actor
    rows = (
        await ctx.session.exec(
            select(Task, Project.name)
            .join(Project, col(Project.id) == Task.project_id)
            .join(Status, col(Status.id) == Task.status_id)
            .where(
                Task.assignee_id == actor.user_id,
                col(Status.category) != StatusCategory.DONE,
                col(Project.archived).is_(False),
                visible_projects(actor),
                visible_items(actor, Task),
            )
            .order_by(col(Task.due_date).is_(None), col(Task.due_date), col(Task.id))
            .limit(200)
        )
    ).all()
    tasks = [task for task, _ in rows]
    view = await TaskView.for_tasks(ctx.session, tasks, ctx.services.settings.due_soon_days)
    return [view.out(task, ActionItemOut, project_name=name) for task, name in rows]  # type: ignore[misc]


@api.route(
    "GET",
    "/api/me",
    summary="Me, my memberships and the tasks waiting on me",
    tag="accounts",
    response=MeOut,
    errors=(401,),
)
async def me(ctx: Context) -> MeOut:
    user = await ctx.session.get(User, ctx.actor.user_id)
    assert user is not None
    memberships = (await ctx.session.exec(select(Membership).where(Membership.user_id == user.id))).all()
    creds = credentials(ctx.request)
    csrf = csrf_token(ctx.services.settings.secret_key, creds.token) if creds and creds.via_cookie else None
    return MeOut(
        user=user_out(user),
        memberships=[MembershipOut(project_id=m.project_id, role=m.role) for m in memberships],
        action_items=await action_items(ctx),
        csrf_token=csrf,
    )


@api.route(
    "PATCH",
    "/api/me",
    summary="Change my name or language",
    tag="accounts",
    body=MePatch,
    response=UserOut,
    errors=(401, 422),
)
async def update_me(ctx: Context, body: MePatch) -> UserOut:
    user = await ctx.session.get(User, ctx.actor.user_id)
    assert user is not None
    for field, value in body.model_dump(exclude_unset=True).items():
        if value is not None:
            setattr(user, field, value)
    if user.name != ctx.actor.name:  # the name nodes show for them (presence, notifications) was read with the session
        ctx.services.live.access_changed(ctx, AccessChanged(Subject.USER, ctx.actor.user_id))
    ctx.session.add(user)
    return user_out(user)


@api.route(
    "POST",
    "/api/me/password",
    summary="Change my password (ends my other sessions)",
    tag="accounts",
    body=PasswordIn,
    status=204,
    errors=(401, 422),
    session_only=True,
)
async def change_password(ctx: Context, body: PasswordIn) -> None:
    user = await ctx.session.get(User, ctx.actor.user_id)
    assert user is not None
    if not verify_password(user.password_hash, body.current_password):
        raise ApiError(422, "invalid", "The current password is wrong.", reason="wrong_current_password")
    require_strong_password(body.new_password, email=user.email, field="new_password")
    user.password_hash = hash_password(body.new_password)
    ctx.session.add(user)
    assert user.id is not None
    audit.record(ctx, AuditAction.PASSWORD_CHANGED, "user", user.id)
    notify(ctx, user, Notice.PASSWORD_CHANGED)
    await ctx.services.auth.end_all_sessions(ctx.session, user.id)
    await ctx.services.live.disconnect_user(ctx, user.id)
    await sign_in(ctx, user, second_factor_done=True)
