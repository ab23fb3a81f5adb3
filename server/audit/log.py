"""The audit log: security-relevant events, one row each, for an organization's admins (``GET /api/audit``).

Handlers call :func:`record` inside their transaction, so an event is stored exactly when its change commits.
Failed sign-ins have no transaction to join (it rolls back); :func:`record_apart` writes them in one of their own.
Rows never hold passwords, tokens or other secrets: :func:`record` refuses details whose keys name one.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlmodel import select
from starlette.requests import Request

from server.audit import chain as audit_chain  # noqa: F401  (installs the hash chain on every audit row written)
from server.models import AuditEvent, User

if TYPE_CHECKING:
    from server.context import Context
    from server.db import Database
    from server.policy import Actor
    from server.ratelimit import RateLimiter


class AuditAction(StrEnum):
    LOGIN = "auth.login"
    LOGIN_FAILED = "auth.login_failed"
    LOGOUT = "auth.logout"
    LINK_REQUESTED = "auth.link_requested"
    LINK_USED = "auth.link_used"
    LINK_REFUSED = "auth.link_refused"
    SESSIONS_REVOKED = "auth.sessions_revoked"
    SESSION_ENDED = "session.ended"
    ACCESS_REFUSED = "access.refused"
    PASSWORD_CHANGED = "account.password_changed"
    SECOND_FACTOR_PASSED = "auth.second_factor"
    SECOND_FACTOR_FAILED = "auth.second_factor_failed"
    RECOVERY_CODE_USED = "auth.recovery_code_used"
    PASSKEY_LOGIN = "auth.passkey_login"
    TOTP_ADDED = "second_factor.totp_added"
    TOTP_REMOVED = "second_factor.totp_removed"
    PASSKEY_ADDED = "second_factor.passkey_added"
    PASSKEY_RENAMED = "second_factor.passkey_renamed"
    PASSKEY_REMOVED = "second_factor.passkey_removed"
    RECOVERY_CODES_CREATED = "second_factor.recovery_codes_created"
    SECOND_FACTOR_POLICY_CHANGED = "organization.second_factor_policy_changed"
    MEMBER_ADDED = "member.added"
    MEMBER_ROLE_CHANGED = "member.role_changed"
    MEMBER_REMOVED = "member.removed"
    INVITE_CREATED = "invite.created"
    INVITE_ACCEPTED = "invite.accepted"
    INVITE_REVOKED = "invite.revoked"
    INVITE_RESENT = "invite.resent"
    VISIBILITY_CHANGED = "item.visibility_changed"
    EXPORTED = "data.exported"
    TOKEN_CREATED = "api_token.created"
    TOKEN_REVOKED = "api_token.revoked"
    PROJECT_SETTINGS_CHANGED = "project.settings_changed"
    ORGANIZATION_SETTINGS_CHANGED = "organization.settings_changed"
    PROJECT_DELETED = "project.deleted"
    STAFF_ROLE_CHANGED = "staff.role_changed"
    STAFF_ACTIVE_CHANGED = "staff.active_changed"


# A details key containing any of these would be a secret (or a way to one): refused.
_SECRET_WORDS = ("password", "token", "secret", "hash", "cookie", "csrf")


def _event(
    request: Request,
    action: AuditAction,
    *,
    organization_id: int | None,
    actor_id: int | None,
    target_type: str,
    target_id: int | None,
    details: dict[str, Any] | None,
) -> AuditEvent:
    for key in details or {}:
        if any(word in key.lower() for word in _SECRET_WORDS):
            raise ValueError(f"audit details must not hold secrets: {key!r}")
    return AuditEvent(
        organization_id=organization_id,
        actor_id=actor_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        ip=(request.client.host if request.client else "")[:64],
        user_agent=request.headers.get("user-agent", "")[:300],
        details=json.dumps(details or {}, sort_keys=True, default=str),
    )


def record(
    ctx: Context,
    action: AuditAction,
    target_type: str = "",
    target_id: int | None = None,
    *,
    details: dict[str, Any] | None = None,
    actor_id: int | None = None,
    organization_id: int | None = None,
) -> None:
    """Add an audit event to the request's transaction (stored if, and only if, it commits).

    Args:
        actor_id, organization_id: default to the signed-in actor's (pass them where nobody is signed in yet).
        details: what else matters (a role, a visibility, an export's format); never a secret.

    Raises:
        ValueError: a details key names a secret (password, token...).
    """
    actor = ctx.actor_or_none
    if actor is not None:
        organization_id = organization_id if organization_id is not None else actor.organization_id
        actor_id = actor_id if actor_id is not None else actor.user_id
        if actor.api_token_id is not None:
            details = {**(details or {}), "via": f"api_token:{actor.api_token_id}"}
    ctx.session.add(
        _event(
            ctx.request,
            action,
            organization_id=organization_id,
            actor_id=actor_id,
            target_type=target_type,
            target_id=target_id,
            details=details,
        )
    )


async def record_apart(
    db: Database,
    request: Request,
    action: AuditAction,
    *,
    organization_id: int | None,
    target_type: str = "",
    target_id: int | None = None,
    details: dict[str, Any] | None = None,
    actor_id: int | None = None,
) -> None:
    """Store an event in a transaction of its own, for events whose request fails (a refused sign-in)."""
    async with db.session() as session:
        session.add(
            _event(
                request,
                action,
                organization_id=organization_id,
                actor_id=actor_id,
                target_type=target_type,
                target_id=target_id,
                details=details,
            )
        )
        await session.commit()


def visibility_changed(ctx: Context, target_type: str, target_id: int | None, before: str, after: str) -> None:
    """Record an item made internal or shared (nothing when it kept its visibility)."""
    if before != after:
        record(ctx, AuditAction.VISIBILITY_CHANGED, target_type, target_id, details={"from": before, "to": after})


def exported(ctx: Context, what: str, fmt: str, target_type: str = "", target_id: int | None = None) -> None:
    """Record data leaving in a file (CSV of tasks or a report, a note's export)."""
    record(ctx, AuditAction.EXPORTED, target_type, target_id, details={"what": what, "format": fmt})


async def login_failed(ctx: Context, email: str, reason: str) -> None:
    """Record a refused sign-in, in a transaction of its own (the request's rolls back).

    The client's answer does not depend on whether ``email`` is an account; this row does: a known account's
    organization sees it (target: the user); an unknown email is stored without it (it may be a mistyped password).
    """
    user = (await ctx.session.exec(select(User).where(User.email == email))).first()
    organization_id, user_id = (user.organization_id, user.id) if user is not None else (None, None)
    # End the request's transaction first: it may hold SQLite's write lock (a signed-in caller's session use was
    # just recorded), and the row below is written by another connection, which would wait for that lock.
    await ctx.session.rollback()
    await record_apart(
        ctx.services.db,
        ctx.request,
        AuditAction.LOGIN_FAILED,
        organization_id=organization_id,
        target_type="user" if user_id is not None else "",
        target_id=user_id,
        details={"reason": reason},
    )


# A refused look at one item is recorded once per actor and item in this window, and at most `_REFUSED_PER_ACTOR`
# refusals per actor in it: a crawler walking ids cannot grow the log without limit.
_REFUSED_WINDOW = 3600
_REFUSED_PER_ACTOR = 30


async def access_refused(
    db: Database, limiter: RateLimiter, request: Request, actor: Actor, target_type: str, target_id: int | None
) -> bool:
    """Record that ``actor`` asked for an item that exists but is hidden from them (answered 404), in a transaction
    of its own (the request's rolled back), coalesced as above. Returns whether a row was written."""
    item_key = f"audit:refused:{actor.user_id}:{target_type}:{target_id}"
    if not await limiter.hit(item_key, 1, _REFUSED_WINDOW):
        return False
    if not await limiter.hit(f"audit:refused:{actor.user_id}", _REFUSED_PER_ACTOR, _REFUSED_WINDOW):
        return False
    details: dict[str, Any] = {"method": request.method, "path": request.url.path[:200]}
    if actor.api_token_id is not None:
        details["via"] = f"api_token:{actor.api_token_id}"
    await record_apart(
        db,
        request,
        AuditAction.ACCESS_REFUSED,
        organization_id=actor.organization_id,
        actor_id=actor.user_id,
        target_type=target_type,
        target_id=target_id,
        details=details,
    )
    return True
