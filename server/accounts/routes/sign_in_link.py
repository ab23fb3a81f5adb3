"""Sign in by link: a one-time link by email instead of a password, for customers, and for staff where their
organization allows it (``organizations.allow_staff_link_sign_in``).

Asking answers the same 202 whether or not the address has an account, after the same work (the rate limit and
a new browser cookie); looking the address up, storing the link and mailing happen after the answer, as for a
password reset (server/accounts/routes/by_mail.py). The link's token is stored only as its SHA-256.

The link is bound to the browser that asked: asking sets a random HttpOnly cookie (``tandem_link``, SameSite=Lax,
scoped to ``/api/auth/link``, living as long as the link) whose SHA-256 is stored with the link, and redeeming
requires it. A link opened in another browser (a mail scanner, a forwarded mail, a phone) is refused without being
spent, and the page says to open it in the browser that asked. There is deliberately no code to type instead:
whoever holds the mail would hold the code too, so it would only undo the binding.

Redeeming spends the link (a conditional update: two tabs cannot both win), starts a session like a password
sign-in, and is audited (``auth.link_used``); refusals of a known link are audited with their reason
(``auth.link_refused``), as are requests (``auth.link_requested``).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import StringConstraints
from sqlalchemy import delete, update
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import Response

from server.accounts.routes.accounts import client_ip, sign_in
from server.accounts.routes.by_mail import answer_then, check_hourly_rate
from server.api import api
from server.api.routing import ApiError
from server.audit import log as audit
from server.audit.log import AuditAction
from server.context import Context
from server.db import Database, utcnow
from server.i18n import message
from server.mail.outgoing import Mailer
from server.models import Organization, SignInLink, User
from server.schemas import In, LoginOut, Out, not_blank
from server.security import constant_time_equal, new_token, token_hash
from server.settings import Settings

LINK_COOKIE = "tandem_link"
LINK_COOKIE_PATH = "/api/auth/link"
# Per address and per client IP, per hour, as for password resets; redeeming is limited per IP per minute.
LINKS_PER_ACCOUNT_PER_HOUR = 5
LINKS_PER_IP_PER_HOUR = 30
REDEEMS_PER_IP_PER_MINUTE = 30
_REQUESTED = "If this address may sign in by link, a link is on its way. Open it in this browser."
_INVALID = "This sign-in link is invalid, used or expired. Ask for a new one."
_OTHER_BROWSER = "This sign-in link works only in the browser where it was asked for. Open it there."


class LinkRequestIn(In):
    email: Annotated[str, StringConstraints(min_length=3, max_length=254, pattern=not_blank(3))]


class LinkRequestedOut(Out):
    message: str


class LinkRedeemIn(In):
    token: Annotated[str, StringConstraints(min_length=10, max_length=200, pattern=not_blank(10))]


def may_sign_in_by_link(user: User, organization: Organization) -> bool:
    """Customers may always; staff only where their organization allows it."""
    return not user.is_staff or organization.allow_staff_link_sign_in


async def _send_link(
    db: Database, mailer: Mailer, request: Request, settings: Settings, email: str, browser_hash: str
) -> None:
    """Store a new link for the active account with ``email`` (voiding its unused older ones) and mail it; for an
    unknown or deactivated address, nothing; for staff whose organization does not allow links, an audited refusal."""
    token = new_token()
    minutes = settings.signin_link_minutes
    async with db.session() as session:
        row = (
            await session.exec(
                select(User, Organization)
                .join(Organization, col(Organization.id) == User.organization_id)
                .where(User.email == email, col(User.is_active).is_(True))
            )
        ).first()
        if row is None:
            return
        user, organization = row
        assert user.id is not None
        allowed = may_sign_in_by_link(user, organization)
        if allowed:
            now = utcnow()
            await session.exec(
                delete(SignInLink).where(col(SignInLink.user_id) == user.id, col(SignInLink.used_at).is_(None))
            )
            session.add(
                SignInLink(
                    user_id=user.id,
                    token_hash=token_hash(token),
                    browser_hash=browser_hash,
                    created_at=now,
                    expires_at=now + dt.timedelta(minutes=minutes),
                )
            )
            await session.commit()
        user_id, organization_id, name, locale = user.id, user.organization_id, user.name, user.locale
    action, details = (
        (AuditAction.LINK_REQUESTED, None) if allowed else (AuditAction.LINK_REFUSED, {"reason": "staff_not_allowed"})
    )
    await audit.record_apart(
        db, request, action, organization_id=organization_id, target_type="user", target_id=user_id, details=details
    )
    if not allowed:
        return
    link = f"{settings.base_url}/sign-in-link#{token}"
    body = message(locale, "link.body", name=name, link=link, minutes=str(minutes))
    await mailer.send(to=email, subject=message(locale, "link.subject"), body=body)


@api.route(
    "POST",
    "/api/auth/link",
    summary="Ask for a one-time sign-in link by email, bound to this browser (the same answer for any address)",
    tag="accounts",
    body=LinkRequestIn,
    response=LinkRequestedOut,
    status=202,
    public=True,
    errors=(422, 429),
)
async def request_link(ctx: Context, body: LinkRequestIn) -> Response:
    email = body.email.strip().lower()
    await check_hourly_rate(
        ctx,
        "link",
        email,
        LINKS_PER_ACCOUNT_PER_HOUR,
        LINKS_PER_IP_PER_HOUR,
        "Too many sign-in link requests. Try again later.",
    )
    services = ctx.services
    settings = services.settings
    browser = new_token()
    ctx.set_cookies.append(
        dict(
            key=LINK_COOKIE,
            value=browser,
            max_age=settings.signin_link_minutes * 60,
            httponly=True,
            samesite="lax",
            secure=settings.secure_cookies,
            path=LINK_COOKIE_PATH,
        )
    )
    request = ctx.request

    async def send() -> None:
        await _send_link(services.db, services.mailer, request, settings, email, token_hash(browser))

    return answer_then(LinkRequestedOut(message=_REQUESTED), send, "sign-in link request")


def _refusal(link: SignInLink, user: User, organization: Organization, browser: str, now: dt.datetime) -> str | None:
    """Why this known link may not sign in here (None: it may); the browser is checked last, so a link refused in
    another browser stays usable where it was asked for."""
    if link.used_at is not None:
        return "used"
    if link.expires_at <= now:
        return "expired"
    if not user.is_active:
        return "inactive"
    if not may_sign_in_by_link(user, organization):
        return "staff_not_allowed"
    if not (browser and constant_time_equal(token_hash(browser), link.browser_hash)):
        return "other_browser"
    return None


async def _refuse(ctx: Context, link: SignInLink, user: User, reason: str) -> ApiError:
    """Audit a refused known link in a transaction of its own (the request's rolls back) and build the error."""
    organization_id, user_id = user.organization_id, link.user_id  # read before the rollback expires them
    await ctx.session.rollback()
    await audit.record_apart(
        ctx.services.db,
        ctx.request,
        AuditAction.LINK_REFUSED,
        organization_id=organization_id,
        target_type="user",
        target_id=user_id,
        details={"reason": reason},
    )
    if reason == "other_browser":
        return ApiError(403, "link_other_browser", _OTHER_BROWSER)
    return ApiError(404, "link_invalid", _INVALID)


@api.route(
    "POST",
    "/api/auth/link/redeem",
    summary="Sign in with a sign-in link's token, in the browser that asked for it (works once)",
    tag="accounts",
    body=LinkRedeemIn,
    response=LoginOut,
    public=True,
    errors=(403, 404, 422, 429),
)
async def redeem_link(ctx: Context, body: LinkRedeemIn) -> LoginOut:
    if not await ctx.services.limiter.hit(f"link:redeem:{client_ip(ctx)}", REDEEMS_PER_IP_PER_MINUTE, 60):
        raise ApiError(429, "rate_limited", "Too many sign-in attempts. Wait a minute and try again.")
    row = (
        await ctx.session.exec(
            select(SignInLink, User, Organization)
            .join(User, col(User.id) == SignInLink.user_id)
            .join(Organization, col(Organization.id) == User.organization_id)
            .where(SignInLink.token_hash == token_hash(body.token))
        )
    ).first()
    if row is None:
        raise ApiError(404, "link_invalid", _INVALID)
    link, user, organization = row
    now = utcnow()
    reason = _refusal(link, user, organization, ctx.request.cookies.get(LINK_COOKIE, ""), now)
    if reason is not None:
        raise await _refuse(ctx, link, user, reason)
    # Single use even when two tabs redeem at once: only one conditional update can win.
    claimed = await ctx.session.exec(
        update(SignInLink).where(col(SignInLink.id) == link.id, col(SignInLink.used_at).is_(None)).values(used_at=now)
    )
    if claimed.rowcount != 1:
        raise ApiError(404, "link_invalid", _INVALID)
    user.last_login_at = now
    ctx.session.add(user)
    audit.record(ctx, AuditAction.LINK_USED, "user", user.id, actor_id=user.id, organization_id=user.organization_id)
    ctx.set_cookies.append(dict(key=LINK_COOKIE, value="", max_age=0, path=LINK_COOKIE_PATH))
    return await sign_in(ctx, user)
