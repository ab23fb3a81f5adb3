"""Sign-in sessions: one token, carried by an HttpOnly cookie in browsers or a bearer header in scripts.

Scripts may instead present a personal API token (``tnd_...``, ``server/api_tokens.py``) as the bearer: it acts as
its owner narrowed to its scopes, and needs no CSRF token (it is never sent by a browser on its own).

The same session authenticates REST calls and WebSocket connections (cookie, or ``?token=`` on the URL).
Browsers writing with the cookie must also send the session's CSRF token in ``X-CSRF-Token``.

A session ends when signed out, after ``session_days`` (absolute), or once unused for ``session_idle_minutes``
(idle): ``last_seen_at`` records use, written at most once a minute so reads stay reads.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, replace
from typing import Any, Protocol

from sqlalchemy import ColumnElement, ScalarSelect, and_, bindparam, delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket

from channels.protocol import CloseCode
from server.accounts.api_tokens import is_api_token, live_token_hashes, parse_scopes, token_owner
from server.db import Database, UTCDateTime, json_object_agg, utcnow
from server.errors import RateLimited, Refused, Unauthenticated
from server.live.admission import AdmissionBusy, AdmissionGate
from server.models import AuthSession, Membership, PasswordReset, ProjectRole, ProjectSettings, SignInLink, User
from server.policy import Actor, CustomerCapability, Scope
from server.ratelimit import RateLimiter
from server.security import (
    constant_time_equal,
    csrf_token,
    hash_password,
    needs_rehash,
    new_token,
    token_hash,
    verify_password,
)
from server.settings import Settings

SESSION_COOKIE = "tandem_session"
CSRF_COOKIE = "tandem_csrf"
CSRF_HEADER = "x-csrf-token"
# Refresh last_seen_at at most this often (or a tenth of the idle timeout, if shorter): a read must not turn
# into a write on every request, and a session must not look idle much sooner than it is.
_TOUCH_INTERVAL = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class Credentials:
    token: str
    via_cookie: bool


def credentials(conn: HTTPConnection) -> Credentials | None:
    """The session token a request or WebSocket carries, and whether it came from the cookie."""
    header = conn.headers.get("authorization", "")
    if header[:7].lower() == "bearer " and header[7:].strip():
        return Credentials(header[7:].strip(), via_cookie=False)
    query = conn.query_params.get("token")
    if query and conn.scope["type"] == "websocket":
        return Credentials(query, via_cookie=False)
    cookie = conn.cookies.get(SESSION_COOKIE)
    if cookie:
        return Credentials(cookie, via_cookie=True)
    return None


def _alive(now: Any, cutoff: Any) -> ColumnElement[bool]:
    """A session not past its absolute expiry at ``now`` and used since ``cutoff`` (values or bound parameters)."""
    return and_(col(AuthSession.expires_at) > now, col(AuthSession.last_seen_at) > cutoff)


def session_alive(idle: dt.timedelta) -> ColumnElement[bool]:
    """The SQL condition of a session still valid now: not past its absolute expiry, nor idle for ``idle``."""
    now = utcnow()
    return _alive(now, now - idle)


async def actor_for_session(
    session: AsyncSession, user_id: int, session_token_hash: str, idle: dt.timedelta
) -> Actor | None:
    """The user's actor, memberships as they are now, if the session (or personal API token, then narrowed to its
    scopes) is still valid: not ended or revoked, not expired nor idle, and the user still active. Live sockets ask
    this on every subscribe and re-check."""
    now = utcnow()
    params = {"user_id": user_id, "token_hash": session_token_hash, "now": now, "cutoff": now - idle}
    row = (await session.exec(_USER_OF_SESSION, params=params)).first()
    if row is None:
        return await _token_actor(session, session_token_hash, user_id=user_id)
    user, memberships = row
    return await load_actor(session, user, parse_memberships(memberships))


async def _token_actor(
    session: AsyncSession, hashed: str, *, user_id: int | None = None, touch: bool = False
) -> Actor | None:
    """The actor of a valid personal API token, narrowed to its scopes (see ``server/api_tokens.py``)."""
    found = await token_owner(session, hashed, user_id=user_id, touch=touch)
    if found is None:
        return None
    token, user = found
    return replace(await load_actor(session, user), scopes=parse_scopes(token.scopes), api_token_id=token.id)


class SessionPrincipal(Protocol):
    """Who is behind a live socket: the actor as last checked, and the session they connected with."""

    actor: Actor
    token_hash: str


async def refresh_actor(db: Database, principal: SessionPrincipal, idle: dt.timedelta) -> Actor | None:
    """Re-read ``principal``'s actor (memberships as they are now) into it; None if the session ended, expired or
    went idle."""
    async with db.session() as session:
        return await refresh_actor_in(session, principal, idle)


async def refresh_actor_in(session: AsyncSession, principal: SessionPrincipal, idle: dt.timedelta) -> Actor | None:
    """`refresh_actor` within a session the caller goes on using (one session for the check and what follows)."""
    actor = await actor_for_session(session, principal.actor.user_id, principal.token_hash, idle)
    if actor is not None:
        principal.actor = actor
    return actor


async def admit_socket(
    websocket: WebSocket, db: Database, auth: AuthService, allowed_origins: set[str]
) -> tuple[Actor, str] | None:
    """Accept a WebSocket, then let it in only from an allowed Origin and with a valid session.

    The session lookup runs through ``auth.admission``: when too many sockets are being admitted at once (a
    reconnect storm) the socket is closed with 1013 "try again later" instead of joining an unbounded queue.

    Returns:
        The actor and the SHA-256 of their session token; None after closing the socket with 4403 (origin not
        allowed), 4401 (no valid session) or 1013 (busy). Accepting first lets clients read the close code.
    """
    origin = websocket.headers.get("origin")
    await websocket.accept()
    if origin is not None and origin.rstrip("/") not in allowed_origins:
        await websocket.close(CloseCode.FORBIDDEN, "origin not allowed")
        return None
    creds = credentials(websocket)
    actor = None
    if creds is not None:
        try:
            async with auth.admission.slot(), db.session() as session:
                actor = await auth.actor_for_token(session, creds.token)
                await session.commit()
        except AdmissionBusy:
            await websocket.close(CloseCode.TRY_AGAIN_LATER, "server busy, try again later")
            return None
    if creds is None or actor is None:
        await websocket.close(CloseCode.UNAUTHORIZED, "sign in first")
        return None
    if not actor.has_scope(Scope.READ):
        await websocket.close(4403, "insufficient_scope: this API token lacks the read scope")
        return None
    return actor, token_hash(creds.token)


async def live_session_hashes(session: AsyncSession, hashes: set[str], idle: dt.timedelta) -> set[str]:
    """Which of ``hashes`` belong to sessions that are still valid, neither expired nor idle (one query per 500)."""
    alive: set[str] = set()
    ordered = sorted(hashes)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        rows = await session.exec(
            select(AuthSession.token_hash).where(col(AuthSession.token_hash).in_(chunk), session_alive(idle))
        )
        alive.update(rows.all())
        alive.update(await live_token_hashes(session, chunk))
    return alive


def memberships_json() -> ScalarSelect[str | None]:
    """The outer query's user's memberships as one JSON object, ``{"<project id>": "<role>"}`` (None or ``{}``
    when there are none): read in the same statement as the user, which spares every request a query."""
    return (
        select(json_object_agg(Membership.project_id, Membership.role))
        .where(Membership.user_id == User.id)
        .scalar_subquery()
    )


def parse_memberships(value: str | None) -> dict[int, str]:
    return {int(project_id): role for project_id, role in json.loads(value or "{}").items()}


async def load_actor(session: AsyncSession, user: User, memberships: dict[int, str] | None = None) -> Actor:
    """``user``'s actor, with ``memberships`` if the caller read them already (`memberships_json`)."""
    if memberships is None:
        rows = await session.exec(select(Membership.project_id, Membership.role).where(Membership.user_id == user.id))
        memberships = {project_id: role for project_id, role in rows.all()}
    customer_off: dict[int, frozenset[str]] = {}
    customer_of = [pid for pid, role in memberships.items() if role == ProjectRole.CUSTOMER]
    if customer_of and not user.is_staff:
        for settings in (
            await session.exec(select(ProjectSettings).where(col(ProjectSettings.project_id).in_(customer_of)))
        ).all():
            off = frozenset(c.value for c in CustomerCapability if not getattr(settings, c.value))
            if off:
                customer_off[settings.project_id] = off
    return Actor.of(user, memberships, customer_off)


# Built once (building costs about as much as SQLAlchemy's cached execution of it): a valid session, by token
# hash, with its active user and their memberships. ``now`` and ``cutoff`` (now minus the idle timeout) are bound
# per call: `session_alive`'s condition with its values bound late.
_VALID_SESSION = (
    col(User.is_active).is_(True),
    AuthSession.token_hash == bindparam("token_hash"),
    _alive(bindparam("now", type_=UTCDateTime), bindparam("cutoff", type_=UTCDateTime)),
)
_SESSION_USER = (
    select(AuthSession, User, memberships_json()).join(User, col(User.id) == AuthSession.user_id).where(*_VALID_SESSION)
)
_USER_OF_SESSION = (
    select(User, memberships_json())
    .join(AuthSession, col(AuthSession.user_id) == User.id)
    .where(User.id == bindparam("user_id"), *_VALID_SESSION)
)


class AuthService:
    def __init__(self, settings: Settings, limiter: RateLimiter) -> None:
        self.settings = settings
        self.limiter = limiter
        self.idle = dt.timedelta(minutes=settings.session_idle_minutes)
        self._touch_interval = min(_TOUCH_INTERVAL, self.idle / 10)
        # Shared by /ws and /yjs: one bound on the sockets this process is admitting at once.
        self.admission = AdmissionGate(
            settings.ws_admit_concurrency, settings.ws_admit_queue, settings.ws_admit_wait_seconds
        )

    async def user_for_token(self, session: AsyncSession, token: str) -> tuple[User, dict[int, str]] | None:
        """The active user whose session ``token`` is, with their memberships, unless the session expired or went
        idle; None otherwise. One statement.

        Records the use in ``last_seen_at`` when the stored value is older than the touch interval.
        """
        now = utcnow()
        params = {"token_hash": token_hash(token), "now": now, "cutoff": now - self.idle}
        row = (await session.exec(_SESSION_USER, params=params)).first()
        if row is None:
            return None
        auth_session, user, memberships = row
        if now - auth_session.last_seen_at > self._touch_interval:
            auth_session.last_seen_at = now
            session.add(auth_session)
        return user, parse_memberships(memberships)

    async def authenticate(self, conn: HTTPConnection, session: AsyncSession, *, check_csrf: bool) -> Actor | None:
        """The actor behind ``conn``, or None when it carries no valid session.

        Raises:
            Refused: ``csrf_failed`` for a cookie-authenticated write without the session's CSRF token.
        """
        creds = credentials(conn)
        if creds is None:
            return None
        actor = await self.actor_for_token(session, creds.token)
        if actor is None:
            return None
        if check_csrf and creds.via_cookie:
            sent = conn.headers.get(CSRF_HEADER, "")
            if not sent or not constant_time_equal(sent, csrf_token(self.settings.secret_key, creds.token)):
                raise Refused("Missing or wrong X-CSRF-Token header.", code="csrf_failed")
        return actor

    async def actor_for_token(self, session: AsyncSession, token: str) -> Actor | None:
        """The actor behind a session token or a personal API token (``tnd_...``, narrowed to its scopes)."""
        if is_api_token(token):
            actor = await _token_actor(session, token_hash(token), touch=True)
            if actor is not None:
                return actor
        found = await self.user_for_token(session, token)
        return await load_actor(session, *found) if found is not None else None

    async def check_login_rate(self, email: str, ip: str) -> None:
        per_account = await self.limiter.hit(f"login:acct:{email}", self.settings.login_attempts_per_minute, 60)
        per_ip = await self.limiter.hit(f"login:ip:{ip}", self.settings.login_attempts_per_minute * 5, 60)
        if not (per_account and per_ip):
            raise RateLimited("Too many sign-in attempts. Wait a minute and try again.")

    async def login(self, session: AsyncSession, email: str, password: str) -> User:
        """Check credentials; the same answer and the same work whether or not the email exists.

        Raises:
            Unauthenticated: ``invalid_credentials``.
        """
        user = (await session.exec(select(User).where(User.email == email.strip().lower()))).first()
        hashed = user.password_hash if user is not None and user.is_active else None
        if not verify_password(hashed, password) or user is None:
            raise Unauthenticated("The email or password is wrong.", code="invalid_credentials")
        if needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        user.last_login_at = utcnow()
        session.add(user)
        return user

    async def start_session(self, session: AsyncSession, user: User, user_agent: str, ip: str = "") -> str:
        """A new session for ``user``, from ``user_agent`` at ``ip`` (as the server saw it); returns its token
        (shown once, stored hashed)."""
        assert user.id is not None
        token = new_token()
        now = utcnow()
        session.add(
            AuthSession(
                user_id=user.id,
                token_hash=token_hash(token),
                created_at=now,
                last_seen_at=now,
                expires_at=now + dt.timedelta(days=self.settings.session_days),
                user_agent=user_agent[:300],
                ip=ip[:64],
            )
        )
        return token

    async def end_session(self, session: AsyncSession, token: str) -> None:
        await session.exec(delete(AuthSession).where(col(AuthSession.token_hash) == token_hash(token)))

    async def end_all_sessions(self, session: AsyncSession, user_id: int) -> None:
        """End every session of ``user_id`` and void their unused password-reset links (the caller closes their
        live sockets, ``LiveUpdates.disconnect_user``) and their unused sign-in links."""
        await session.exec(delete(AuthSession).where(col(AuthSession.user_id) == user_id))
        await session.exec(delete(PasswordReset).where(col(PasswordReset.user_id) == user_id))
        await session.exec(
            delete(SignInLink).where(col(SignInLink.user_id) == user_id, col(SignInLink.used_at).is_(None))
        )

    def session_cookies(self, token: str) -> list[dict[str, Any]]:
        max_age = self.settings.session_days * 86400
        secure = self.settings.secure_cookies
        return [
            dict(
                key=SESSION_COOKIE, value=token, max_age=max_age, httponly=True, samesite="lax", secure=secure, path="/"
            ),
            # Readable by the page's script, which echoes it in X-CSRF-Token.
            dict(
                key=CSRF_COOKIE,
                value=csrf_token(self.settings.secret_key, token),
                max_age=max_age,
                httponly=False,
                samesite="lax",
                secure=secure,
                path="/",
            ),
        ]

    def clear_cookies(self) -> list[dict[str, Any]]:
        return [dict(key=name, value="", max_age=0, path="/") for name in (SESSION_COOKIE, CSRF_COOKIE)]
