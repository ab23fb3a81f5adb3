"""Forgotten passwords: a single-use link by email, then a new password that signs the person out everywhere.

The request answers the same 202 whether or not the address has an account, after the same work (the rate
limit): looking the address up, storing the token and mailing happen after the answer, in the background, so
neither the answer nor its timing tells who has an account here (OWASP Forgot Password Cheat Sheet). The link's
token is stored only as its SHA-256, expires after ``password_reset_minutes``, and is deleted when used.
Confirming does not sign in: the person signs in with the new password, which proves they know it and lets their
password manager save it, and a link opened on someone else's device leaves no session behind there.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import StringConstraints
from sqlalchemy import delete
from sqlmodel import col, select
from starlette.responses import Response

from server.accounts.notices import Notice, notify
from server.accounts.passwords import require_strong_password
from server.accounts.routes.by_mail import answer_then, check_hourly_rate
from server.api import api
from server.api.routing import ApiError
from server.context import Context
from server.db import Database, utcnow
from server.i18n import message
from server.mail.outgoing import Mailer
from server.models import PasswordReset, User
from server.schemas import In, Out, not_blank
from server.security import hash_password, new_token, token_hash

# Per address and per client IP, per hour: enough for a person who mistyped, too few to mail-bomb anyone.
RESETS_PER_ACCOUNT_PER_HOUR = 5
RESETS_PER_IP_PER_HOUR = 30
_REQUESTED = "If an account uses this address, a link to choose a new password is on its way."
_INVALID = "This password-reset link is invalid, used or expired. Ask for a new one."


class PasswordResetIn(In):
    email: Annotated[str, StringConstraints(min_length=3, max_length=254, pattern=not_blank(3))]


class PasswordResetRequestedOut(Out):
    message: str


class PasswordResetConfirmIn(In):
    token: Annotated[str, StringConstraints(min_length=10, max_length=200, pattern=not_blank(10))]
    password: Annotated[str, StringConstraints(max_length=256, strip_whitespace=False)]


async def _send_reset_link(db: Database, mailer: Mailer, base_url: str, minutes: int, email: str) -> None:
    """Store a new token for the active account with ``email`` (voiding its older ones) and mail the link; for an
    unknown or deactivated address, nothing."""
    token = new_token()
    async with db.session() as session:
        user = (await session.exec(select(User).where(User.email == email, col(User.is_active).is_(True)))).first()
        if user is None:
            return
        assert user.id is not None
        now = utcnow()
        await session.exec(delete(PasswordReset).where(col(PasswordReset.user_id) == user.id))
        session.add(
            PasswordReset(
                user_id=user.id,
                token_hash=token_hash(token),
                created_at=now,
                expires_at=now + dt.timedelta(minutes=minutes),
            )
        )
        await session.commit()
        name, locale = user.name, user.locale
    link = f"{base_url}/reset-password#{token}"
    body = message(locale, "reset.body", name=name, link=link, minutes=str(minutes))
    await mailer.send(to=email, subject=message(locale, "reset.subject"), body=body)


@api.route(
    "POST",
    "/api/auth/password-reset",
    summary="Ask for a password-reset link by email (the same answer whether or not the address has an account)",
    tag="accounts",
    body=PasswordResetIn,
    response=PasswordResetRequestedOut,
    status=202,
    public=True,
    errors=(422, 429),
)
async def request_password_reset(ctx: Context, body: PasswordResetIn) -> Response:
    email = body.email.strip().lower()
    await check_hourly_rate(
        ctx,
        "reset",
        email,
        RESETS_PER_ACCOUNT_PER_HOUR,
        RESETS_PER_IP_PER_HOUR,
        "Too many password-reset requests. Try again later.",
    )
    services = ctx.services
    settings = services.settings

    async def send() -> None:
        await _send_reset_link(services.db, services.mailer, settings.base_url, settings.password_reset_minutes, email)

    return answer_then(PasswordResetRequestedOut(message=_REQUESTED), send, "password-reset request")


@api.route(
    "POST",
    "/api/auth/password-reset/confirm",
    summary="Set a new password with a reset link's token; ends every session of the account (does not sign in)",
    tag="accounts",
    body=PasswordResetConfirmIn,
    status=204,
    public=True,
    errors=(404, 422),
)
async def confirm_password_reset(ctx: Context, body: PasswordResetConfirmIn) -> None:
    row = (
        await ctx.session.exec(
            select(PasswordReset, User)
            .join(User, col(User.id) == PasswordReset.user_id)
            .where(
                PasswordReset.token_hash == token_hash(body.token),
                col(PasswordReset.expires_at) > utcnow(),
                col(User.is_active).is_(True),
            )
        )
    ).first()
    if row is None:
        raise ApiError(404, "reset_invalid", _INVALID)
    reset, user = row
    assert user.id is not None
    require_strong_password(body.password, email=user.email)
    # Single use even when two tabs confirm at once: only one delete can take the row.
    claimed = await ctx.session.exec(delete(PasswordReset).where(col(PasswordReset.id) == reset.id))
    if claimed.rowcount != 1:
        raise ApiError(404, "reset_invalid", _INVALID)
    user.password_hash = hash_password(body.password)
    ctx.session.add(user)
    notify(ctx, user, Notice.PASSWORD_CHANGED)
    await ctx.services.auth.end_all_sessions(ctx.session, user.id)
    await ctx.services.live.disconnect_user(ctx, user.id)
    ctx.set_cookies.extend(ctx.services.auth.clear_cookies())
