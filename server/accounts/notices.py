"""Mail on every credential change: a password changed, a passkey or authenticator codes added or removed, new
recovery codes, a sign-in from a new device. Sent to the person, in their language, after the change commits,
with a link to where they can end their sessions; a failure to send is logged, never shown to the caller.

A device is a browser, known by a random long-lived HttpOnly cookie (``tandem_device``) whose SHA-256 is stored per
person (``known_devices``). A person's very first device is not mailed about: there is nothing to compare it with.
"""

from __future__ import annotations

import datetime as dt
import logging
from enum import StrEnum

from sqlmodel import select

from server.accounts.devices import describe_device
from server.context import Context
from server.i18n import message
from server.models import KnownDevice, User
from server.security import new_token, token_hash

log = logging.getLogger(__name__)

DEVICE_COOKIE = "tandem_device"


def device_cookie_name(secure: bool) -> str:
    """``__Host-`` prefixed behind https, like the session cookies (server/accounts/auth.py)."""
    return f"__Host-{DEVICE_COOKIE}" if secure else DEVICE_COOKIE


DEVICE_COOKIE_DAYS = 400


class Notice(StrEnum):
    PASSWORD_CHANGED = "password_changed"
    PASSKEY_ADDED = "passkey_added"
    PASSKEY_REMOVED = "passkey_removed"
    TOTP_ADDED = "totp_added"
    TOTP_REMOVED = "totp_removed"
    RECOVERY_CODES = "recovery_codes"
    NEW_DEVICE = "new_device"


def notify(ctx: Context, user: User, notice: Notice, **params: str) -> None:
    """Mail ``user`` that ``notice`` happened to their account, once the request's transaction commits."""
    services = ctx.services
    email, name, locale = user.email, user.name, user.locale
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    device = describe_device(ctx.request.headers.get("user-agent", ""))
    ip = ctx.request.client.host if ctx.request.client else "unknown"
    link = f"{services.settings.base_url}/settings/tokens#sessions"

    async def send() -> None:
        what = message(locale, f"security.{notice.value}", **params)
        body = message(locale, "security.body", name=name, what=what, when=when, device=device, ip=ip, link=link)
        try:
            await services.mailer.send(to=email, subject=message(locale, f"security.{notice.value}.subject"), body=body)
        except Exception:
            log.exception("credential-change mail to user %s not sent", user.id)

    ctx.after_commit.append(send)


async def remember_device(ctx: Context, user: User) -> None:
    """Note the browser signing in as ``user``; mail them when it is new and not their first."""
    assert user.id is not None
    name = device_cookie_name(ctx.services.settings.secure_cookies)
    value = ctx.request.cookies.get(name, "")
    if value:
        known = (
            await ctx.session.exec(
                select(KnownDevice.id).where(
                    KnownDevice.user_id == user.id, KnownDevice.device_hash == token_hash(value)
                )
            )
        ).first()
        if known is not None:
            return
    else:
        value = new_token()
        settings = ctx.services.settings
        ctx.set_cookies.append(
            dict(
                key=name,
                value=value,
                max_age=DEVICE_COOKIE_DAYS * 86400,
                httponly=True,
                samesite="lax",
                secure=settings.secure_cookies,
                path="/",
            )
        )
    seen_before = (await ctx.session.exec(select(KnownDevice.id).where(KnownDevice.user_id == user.id))).first()
    ctx.session.add(KnownDevice(user_id=user.id, device_hash=token_hash(value)))
    if seen_before is not None:
        notify(ctx, user, Notice.NEW_DEVICE)
