"""The second sign-in step, a person's authenticator codes and recovery codes, and the organization's rule on who
must have a second factor (rules: server/accounts/second_factor.py; passkeys: server/accounts/routes/passkeys.py).

Every change is audited and mailed to the person (server/accounts/notices.py). Setting up a factor lifts the
enrolment-only state of the person's sessions.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints
from sqlalchemy import delete, update
from sqlmodel import col, select

from server.accounts.notices import Notice, notify
from server.accounts.routes.accounts import client_ip, enrolling, sign_in
from server.accounts.second_factor import (
    ATTEMPT_WINDOW_SECONDS,
    ATTEMPTS_PER_WINDOW,
    accepted_step,
    factors_of,
    new_recovery_codes,
    new_totp_secret,
    recovery_hash,
    required_of,
    ticket_user,
    totp_uri,
)
from server.api import api
from server.api.routing import ApiError
from server.audit import log as audit
from server.audit.log import AuditAction
from server.context import Context
from server.db import utcnow
from server.live.control import AccessChanged, Subject
from server.models import AuthSession, Organization, Passkey, RecoveryCode, TotpFactor, User
from server.policy import Action, authorize
from server.schemas import In, LoginOut, Out, not_blank

_EXPIRED = "This sign-in took too long or the password changed. Sign in again."


class SecondFactorIn(In):
    ticket: Annotated[str, StringConstraints(min_length=10, max_length=400, pattern=not_blank(10))]
    code: Annotated[str, StringConstraints(max_length=20)] | None = None
    recovery_code: Annotated[str, StringConstraints(max_length=40)] | None = None


class PasskeyOut(Out):
    id: int
    name: str
    created_at: str
    last_used_at: str | None


class SecondFactorOut(Out):
    totp: bool
    passkeys: list[PasskeyOut]
    recovery_codes_left: int
    required: bool
    enrolment_required: bool


class TotpSetupOut(Out):
    secret: str
    uri: str


class CodeIn(In):
    code: Annotated[str, StringConstraints(min_length=6, max_length=20, pattern=not_blank(6))]


class RecoveryCodesOut(Out):
    codes: list[str]


class SecurityPolicy(Out):
    require_second_factor_staff: bool
    require_second_factor_customers: bool


class SecurityPolicyPatch(In):
    require_second_factor_staff: bool | None = None
    require_second_factor_customers: bool | None = None


def passkey_out(row: Passkey) -> PasskeyOut:
    return PasskeyOut(
        id=row.id or 0,
        name=row.name,
        created_at=row.created_at.isoformat(),
        last_used_at=row.last_used_at.isoformat() if row.last_used_at else None,
    )


async def check_attempts(ctx: Context, user_id: int) -> None:
    """Bound the codes tried for one person (and from one address), whichever ticket they come with.

    Raises:
        ApiError: 429 ``rate_limited``.
    """
    limiter = ctx.services.limiter
    per_user = await limiter.hit(f"2fa:user:{user_id}", ATTEMPTS_PER_WINDOW, ATTEMPT_WINDOW_SECONDS)
    per_ip = await limiter.hit(f"2fa:ip:{client_ip(ctx)}", ATTEMPTS_PER_WINDOW * 5, ATTEMPT_WINDOW_SECONDS)
    if not (per_user and per_ip):
        raise ApiError(429, "rate_limited", "Too many codes tried. Wait a few minutes and try again.")


async def _refuse(ctx: Context, user: User, kind: str) -> ApiError:
    organization_id, user_id = user.organization_id, user.id
    await ctx.session.rollback()
    await audit.record_apart(
        ctx.services.db,
        ctx.request,
        AuditAction.SECOND_FACTOR_FAILED,
        organization_id=organization_id,
        actor_id=user_id,
        target_type="user",
        target_id=user_id,
        details={"kind": kind},
    )
    return ApiError(401, "second_factor_invalid", "That code is wrong or was used already.")


async def take_totp(ctx: Context, user_id: int, code: str, *, confirmed: bool = True) -> TotpFactor | None:
    """``user_id``'s authenticator secret if ``code`` is good now (and not used before): its step is spent."""
    factor = (await ctx.session.exec(select(TotpFactor).where(TotpFactor.user_id == user_id))).first()
    if factor is None or (factor.confirmed_at is not None) != confirmed:
        return None
    step = accepted_step(factor.secret, code, ctx.services.auth.clock(), factor.last_step)
    if step is None:
        return None
    # Spent at most once even when two requests race: only one conditional update can move last_step past it.
    claimed = await ctx.session.exec(
        update(TotpFactor)
        .where(col(TotpFactor.id) == factor.id, col(TotpFactor.last_step) < step)
        .values(last_step=step)
    )
    return factor if claimed.rowcount == 1 else None


async def take_recovery_code(ctx: Context, user_id: int, code: str) -> bool:
    """Spend one of ``user_id``'s unused recovery codes; False when ``code`` is none of them."""
    claimed = await ctx.session.exec(
        update(RecoveryCode)
        .where(
            col(RecoveryCode.user_id) == user_id,
            col(RecoveryCode.code_hash) == recovery_hash(code),
            col(RecoveryCode.used_at).is_(None),
        )
        .values(used_at=utcnow())
    )
    return claimed.rowcount == 1


@api.route(
    "POST",
    "/api/auth/second-factor",
    summary="Finish signing in: the ticket from the password step with an authenticator code or a recovery code",
    tag="accounts",
    body=SecondFactorIn,
    response=LoginOut,
    public=True,
    errors=(401, 422, 429),
)
async def second_step(ctx: Context, body: SecondFactorIn) -> LoginOut:
    user = await ticket_user(ctx.session, ctx.services.settings.secret_key, body.ticket, ctx.services.auth.clock())
    if user is None:
        raise ApiError(401, "sign_in_expired", _EXPIRED)
    assert user.id is not None
    await check_attempts(ctx, user.id)
    if body.code:
        if await take_totp(ctx, user.id, body.code) is None:
            raise await _refuse(ctx, user, "totp")
        kind = "totp"
    elif body.recovery_code:
        if not await take_recovery_code(ctx, user.id, body.recovery_code):
            raise await _refuse(ctx, user, "recovery")
        kind = "recovery"
        audit.record(
            ctx, AuditAction.RECOVERY_CODE_USED, "user", user.id, actor_id=user.id, organization_id=user.organization_id
        )
    else:
        raise ApiError(422, "invalid", "Send a code or a recovery code.", reason="code_missing")
    user.last_login_at = utcnow()
    ctx.session.add(user)
    audit.record(
        ctx,
        AuditAction.SECOND_FACTOR_PASSED,
        "user",
        user.id,
        actor_id=user.id,
        organization_id=user.organization_id,
        details={"kind": kind},
    )
    return await sign_in(ctx, user, second_factor_done=True)


async def _me(ctx: Context) -> User:
    user = await ctx.session.get(User, ctx.actor.user_id)
    assert user is not None and user.id is not None
    return user


async def _required(ctx: Context, user: User) -> bool:
    organization = await ctx.session.get(Organization, user.organization_id)
    return organization is not None and required_of(user, organization)


async def enrolled(ctx: Context, user_id: int) -> None:
    """A factor now exists: lift the enrolment-only state of every session of ``user_id``, on every node."""
    await ctx.session.exec(update(AuthSession).where(col(AuthSession.user_id) == user_id).values(needs_enrolment=False))
    ctx.services.live.access_changed(ctx, AccessChanged(Subject.USER, user_id))


async def fresh_recovery_codes(ctx: Context, user_id: int) -> list[str]:
    """Replace ``user_id``'s recovery codes with ten new ones (returned once, stored hashed)."""
    await ctx.session.exec(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user_id))
    codes = new_recovery_codes()
    for code in codes:
        ctx.session.add(RecoveryCode(user_id=user_id, code_hash=recovery_hash(code)))
    return codes


@api.route(
    "GET",
    "/api/me/second-factor",
    summary="My second factors: authenticator codes on or off, my passkeys, recovery codes left, and whether "
    "my organization requires one",
    tag="accounts",
    response=SecondFactorOut,
    errors=(401,),
    session_only=True,
)
async def my_second_factor(ctx: Context) -> SecondFactorOut:
    user = await _me(ctx)
    assert user.id is not None
    factors = await factors_of(ctx.session, user.id)
    passkeys = (
        await ctx.session.exec(select(Passkey).where(Passkey.user_id == user.id).order_by(col(Passkey.id)))
    ).all()
    return SecondFactorOut(
        totp=factors.totp,
        passkeys=[passkey_out(p) for p in passkeys],
        recovery_codes_left=factors.recovery_left,
        required=await _required(ctx, user),
        enrolment_required=await enrolling(ctx),
    )


@api.route(
    "POST",
    "/api/me/totp",
    summary="Start setting up authenticator codes: a new secret to scan, unconfirmed until a code proves it",
    tag="accounts",
    response=TotpSetupOut,
    errors=(401, 409),
    session_only=True,
)
async def start_totp(ctx: Context) -> TotpSetupOut:
    user = await _me(ctx)
    factor = (await ctx.session.exec(select(TotpFactor).where(TotpFactor.user_id == user.id))).first()
    if factor is not None and factor.confirmed_at is not None:
        raise ApiError(409, "totp_exists", "Authenticator codes are on already; turn them off first.")
    if factor is None:
        assert user.id is not None
        factor = TotpFactor(user_id=user.id, secret="")
    factor.secret = new_totp_secret()
    factor.last_step = 0
    ctx.session.add(factor)
    return TotpSetupOut(secret=factor.secret, uri=totp_uri(factor.secret, user.email))


@api.route(
    "POST",
    "/api/me/totp/confirm",
    summary="Turn authenticator codes on with a first code from the app; answers new recovery codes (shown once)",
    tag="accounts",
    body=CodeIn,
    response=RecoveryCodesOut,
    errors=(401, 409, 422, 429),
    session_only=True,
)
async def confirm_totp(ctx: Context, body: CodeIn) -> RecoveryCodesOut:
    user = await _me(ctx)
    assert user.id is not None
    await check_attempts(ctx, user.id)
    factor = await take_totp(ctx, user.id, body.code, confirmed=False)
    if factor is None:
        raise ApiError(422, "invalid", "That code is wrong; try the newest one from the app.", reason="code_wrong")
    factor.confirmed_at = utcnow()
    ctx.session.add(factor)
    await enrolled(ctx, user.id)
    audit.record(ctx, AuditAction.TOTP_ADDED, "user", user.id)
    notify(ctx, user, Notice.TOTP_ADDED)
    return RecoveryCodesOut(codes=await fresh_recovery_codes(ctx, user.id))


@api.route(
    "DELETE",
    "/api/me/totp",
    summary="Turn authenticator codes off (refused when my organization requires a factor and I have no passkey)",
    tag="accounts",
    status=204,
    errors=(401, 404, 409),
    session_only=True,
)
async def remove_totp(ctx: Context) -> None:
    user = await _me(ctx)
    assert user.id is not None
    factors = await factors_of(ctx.session, user.id)
    if not factors.totp:
        raise ApiError(404, "not_found", "Authenticator codes are not on.")
    if factors.passkeys == 0 and await _required(ctx, user):
        raise ApiError(
            409, "second_factor_required", "Your organization requires a second factor: add a passkey first."
        )
    await ctx.session.exec(delete(TotpFactor).where(col(TotpFactor.user_id) == user.id))
    if factors.passkeys == 0:
        await ctx.session.exec(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user.id))
    audit.record(ctx, AuditAction.TOTP_REMOVED, "user", user.id)
    notify(ctx, user, Notice.TOTP_REMOVED)


@api.route(
    "POST",
    "/api/me/recovery-codes",
    summary="Make ten new recovery codes (the old ones stop working); shown once",
    tag="accounts",
    response=RecoveryCodesOut,
    errors=(401, 409),
    session_only=True,
)
async def new_codes(ctx: Context) -> RecoveryCodesOut:
    user = await _me(ctx)
    assert user.id is not None
    if not (await factors_of(ctx.session, user.id)).any:
        raise ApiError(409, "no_second_factor", "Set up a passkey or authenticator codes first.")
    audit.record(ctx, AuditAction.RECOVERY_CODES_CREATED, "user", user.id)
    notify(ctx, user, Notice.RECOVERY_CODES)
    return RecoveryCodesOut(codes=await fresh_recovery_codes(ctx, user.id))


@api.route(
    "GET",
    "/api/organization/security",
    summary="Whether staff, and customers, must sign in with a second factor (owner)",
    tag="staff",
    response=SecurityPolicy,
    errors=(401, 403),
    session_only=True,
)
async def security_policy(ctx: Context) -> SecurityPolicy:
    authorize(ctx.actor, Action.SECURITY_MANAGE)
    organization = await ctx.session.get(Organization, ctx.actor.organization_id)
    assert organization is not None
    return SecurityPolicy(
        require_second_factor_staff=organization.require_second_factor_staff,
        require_second_factor_customers=organization.require_second_factor_customers,
    )


@api.route(
    "PATCH",
    "/api/organization/security",
    summary="Require a second factor of staff, of customers, or not (owner); those without one enrol at sign-in",
    tag="staff",
    body=SecurityPolicyPatch,
    response=SecurityPolicy,
    errors=(401, 403, 422),
    session_only=True,
)
async def change_security_policy(ctx: Context, body: SecurityPolicyPatch) -> SecurityPolicy:
    authorize(ctx.actor, Action.SECURITY_MANAGE)
    organization = await ctx.session.get(Organization, ctx.actor.organization_id)
    assert organization is not None
    changes = body.model_dump(exclude_none=True)
    for field, value in changes.items():
        setattr(organization, field, value)
    ctx.session.add(organization)
    audit.record(ctx, AuditAction.SECOND_FACTOR_POLICY_CHANGED, "organization", organization.id, details=changes)
    return SecurityPolicy(
        require_second_factor_staff=organization.require_second_factor_staff,
        require_second_factor_customers=organization.require_second_factor_customers,
    )
