"""Sign-in sessions: one token, carried by an HttpOnly cookie in browsers or a bearer header in scripts.

Scripts may instead present a personal API token (``tnd_...``, ``server/accounts/api_tokens.py``) as the bearer:
it acts as its owner narrowed to its scopes, and needs no CSRF token (it is never sent by a browser on its own).

The same session authenticates REST calls and WebSocket connections (the cookie, the bearer header, or a single-use
ticket: ``server/live/admission.py``; never a long-lived token in a URL). Browsers writing with the cookie must
also send the session's CSRF token in ``X-CSRF-Token``.

Cookie names: behind https (``TANDEM_BASE_URL`` https, or production) ``__Host-tandem_session`` and
``__Host-tandem_csrf``: the ``__Host-`` prefix makes the browser refuse them unless Secure, ``Path=/`` and without
``Domain``, so neither a sibling subdomain nor a plain-http page can plant or overwrite them. On a plain-http
development server, where a browser refuses Secure cookies from any host but localhost, the names lack the prefix.
Cookies set before the prefix existed (``tandem_session``) keep signing in until their session ends
(``TANDEM_ACCEPT_LEGACY_COOKIE=0`` refuses them); a new sign-in sets the prefixed names and clears the old.

A session ends when signed out, after ``session_days`` (absolute), or once unused for ``session_idle_minutes``
(idle): ``last_seen_at`` records use, written at most once a minute so reads stay reads.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Connection, ScalarSelect, and_, bindparam, case, delete, literal, or_
from sqlalchemy import select as sa_select
from sqlalchemy import update as sa_update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import HTTPConnection

from server.accounts.api_tokens import is_api_token, live_token_hashes, parse_scopes, token_owner
from server.accounts.session_cache import AccessEpoch, SessionCache
from server.accounts.signin_throttle import SignInThrottle, make_throttle
from server.db import Database, UTCDateTime, json_object_agg, utcnow
from server.errors import RateLimited, Refused, Unauthenticated
from server.models import (
    STAFF_ROLES,
    AuthSession,
    Membership,
    PasswordReset,
    ProjectRole,
    ProjectSettings,
    SignInLink,
    User,
)
from server.policy import Actor, CustomerCapability
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
HOST_PREFIX = "__Host-"
SECURE_SESSION_COOKIE = HOST_PREFIX + SESSION_COOKIE
SECURE_CSRF_COOKIE = HOST_PREFIX + CSRF_COOKIE
CSRF_HEADER = "x-csrf-token"
# Refresh last_seen_at at most this often (or a tenth of the idle timeout, if shorter): a read must not turn
# into a write on every request, and a session must not look idle much sooner than it is.
_TOUCH_INTERVAL = dt.timedelta(minutes=1)
# What a session that must still enrol a second factor may call (server/accounts/second_factor.py): who am I, set up a
# factor, sign out. Anything else is 403 ``enrolment_required``; live sockets are refused.
_ENROLMENT_PATHS = ("/api/auth/", "/api/me/second-factor", "/api/me/totp", "/api/me/passkeys", "/api/me/recovery-codes")


def enrolment_allows(path: str) -> bool:
    return path == "/api/me" or path.startswith(_ENROLMENT_PATHS)


@dataclass(frozen=True)
class Credentials:
    token: str
    via_cookie: bool


def cookie_names(secure: bool) -> tuple[str, str]:
    """The session and CSRF cookies' names: ``__Host-`` prefixed when the cookies are Secure (https)."""
    return (SECURE_SESSION_COOKIE, SECURE_CSRF_COOKIE) if secure else (SESSION_COOKIE, CSRF_COOKIE)


def credentials(conn: HTTPConnection, *, legacy_cookie: bool = True) -> Credentials | None:
    """The session token a request or WebSocket carries, and whether it came from the cookie.

    The bearer header first, then the ``__Host-`` cookie, then (``legacy_cookie``) the unprefixed one: the name
    on plain-http development servers, and the name sessions had before the prefix.
    """
    header = conn.headers.get("authorization", "")
    if header[:7].lower() == "bearer " and header[7:].strip():
        return Credentials(header[7:].strip(), via_cookie=False)
    cookie = conn.cookies.get(SECURE_SESSION_COOKIE) or (conn.cookies.get(SESSION_COOKIE) if legacy_cookie else None)
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
    user, memberships, customer_off = row
    return await load_actor(session, user, parse_memberships(memberships), parse_customer_off(customer_off))


async def _token_actor(
    session: AsyncSession, hashed: str, *, user_id: int | None = None, touch: bool = False
) -> Actor | None:
    """The actor of a valid personal API token, narrowed to its scopes (see ``server/accounts/api_tokens.py``)."""
    found = await token_owner(session, hashed, user_id=user_id, touch=touch)
    if found is None:
        return None
    token, user = found
    return replace(await load_actor(session, user), scopes=parse_scopes(token.scopes), api_token_id=token.id)


class SessionPrincipal(Protocol):
    """Who is behind a live socket: the actor as last checked, and the session they connected with."""

    actor: Actor
    token_hash: str


async def refresh_actor_in(session: AsyncSession, principal: SessionPrincipal, idle: dt.timedelta) -> Actor | None:
    """Re-read ``principal``'s actor (memberships as they are now) into it, in ``session``; None if the session
    ended, expired or went idle. Sockets ask it through `SocketAdmission.current_actor`."""
    actor = await actor_for_session(session, principal.actor.user_id, principal.token_hash, idle)
    if actor is not None:
        principal.actor = actor
    return actor


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


def customer_off_json() -> ScalarSelect[str | None]:
    """The customer capabilities turned off in the outer query's user's customer projects, as one JSON object,
    ``{"<project id>": "<capability> <capability> "}`` (projects with none off are left out): read in the same
    statement as the user and memberships, so authenticating a customer costs one query, as it does staff."""
    off: ColumnElement[str] = literal("")
    for capability in CustomerCapability:
        column = getattr(ProjectSettings, capability.value)
        off = off + case((column.is_(False), f"{capability.value} "), else_="")
    return (
        select(json_object_agg(ProjectSettings.project_id, off))
        .join(Membership, col(Membership.project_id) == ProjectSettings.project_id)
        .where(
            Membership.user_id == User.id,
            Membership.role == ProjectRole.CUSTOMER,
            or_(*(getattr(ProjectSettings, c.value).is_(False) for c in CustomerCapability)),
        )
        .scalar_subquery()
    )


def parse_customer_off(value: str | None) -> dict[int, frozenset[str]]:
    return {int(project_id): frozenset(off.split()) for project_id, off in json.loads(value or "{}").items()}


async def load_actor(
    session: AsyncSession,
    user: User,
    memberships: dict[int, str] | None = None,
    customer_off: dict[int, frozenset[str]] | None = None,
) -> Actor:
    """``user``'s actor, with ``memberships`` and ``customer_off`` if the caller read them already
    (`memberships_json`, `customer_off_json`)."""
    if memberships is None:
        rows = await session.exec(select(Membership.project_id, Membership.role).where(Membership.user_id == user.id))
        memberships = {project_id: role for project_id, role in rows.all()}
    if user.is_staff:
        return Actor.of(user, memberships, {})  # capabilities are customers' only
    if customer_off is not None:
        return Actor.of(user, memberships, customer_off)
    customer_off = {}
    customer_of = [pid for pid, role in memberships.items() if role == ProjectRole.CUSTOMER]
    if customer_of:
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
    col(AuthSession.token_hash) == bindparam("token_hash"),
    _alive(bindparam("now", type_=UTCDateTime), bindparam("cutoff", type_=UTCDateTime)),
)
_SESSION_USER = (
    select(AuthSession, User, memberships_json(), customer_off_json())
    .join(User, col(User.id) == AuthSession.user_id)
    .where(*_VALID_SESSION)
)
_USER_OF_SESSION = (
    select(User, memberships_json(), customer_off_json())
    .join(AuthSession, col(AuthSession.user_id) == User.id)
    .where(User.id == bindparam("user_id"), *_VALID_SESSION)
)
# The same valid session as plain columns, for `Database.read` (Core, no ORM objects): what a socket's admission
# needs to make the actor, and whether the session must enrol or be touched first.
_SESSION_ACTOR_COLUMNS = sa_select(
    col(AuthSession.needs_enrolment),
    col(AuthSession.last_seen_at),
    col(AuthSession.expires_at),
    col(User.id),
    col(User.organization_id),
    col(User.role),
    col(User.client_id),
    col(User.name),
    memberships_json(),
    customer_off_json(),
).join(User, col(User.id) == AuthSession.user_id)
_SESSION_ACTOR = _SESSION_ACTOR_COLUMNS.where(*_VALID_SESSION)
_SESSION_ACTOR_OF_USER = _SESSION_ACTOR_COLUMNS.where(col(User.id) == bindparam("user_id"), *_VALID_SESSION)
# Many sockets' sessions in one statement (a reconnect storm's admissions, joined): the same columns and conditions,
# by a list of token hashes, each row naming its hash.
_SESSION_ACTORS = _SESSION_ACTOR_COLUMNS.add_columns(col(AuthSession.token_hash)).where(
    col(User.is_active).is_(True),
    col(AuthSession.token_hash).in_(bindparam("token_hashes", expanding=True)),
    _alive(bindparam("now", type_=UTCDateTime), bindparam("cutoff", type_=UTCDateTime)),
)


@dataclass(frozen=True)
class SessionRead:
    """A valid session's actor, read in one Core statement (`read_session_actor`)."""

    actor: Actor
    needs_enrolment: bool
    last_seen_at: dt.datetime
    expires_at: dt.datetime


def read_session_actor(
    conn: Connection, hashed: str, now: dt.datetime, cutoff: dt.datetime, user_id: int | None = None
) -> SessionRead | None:
    """The valid (not expired, used since ``cutoff``) session whose token hash is ``hashed``, of an active user (and
    of ``user_id``, when given), with its actor; None if there is none. Synchronous: run it through
    `Database.read`."""
    params: dict[str, Any] = {"token_hash": hashed, "now": now, "cutoff": cutoff}
    statement = _SESSION_ACTOR
    if user_id is not None:
        params["user_id"] = user_id
        statement = _SESSION_ACTOR_OF_USER
    row = conn.execute(statement, params).first()
    return _session_read(row) if row is not None else None


def read_session_actors(
    conn: Connection, hashes: Sequence[str], now: dt.datetime, cutoff: dt.datetime
) -> dict[str, SessionRead]:
    """`read_session_actor` for many token hashes in one statement: by hash, those that name a valid session of an
    active user (the others are left out). Synchronous: run it through `Database.read`."""
    params = {"token_hashes": list(hashes), "now": now, "cutoff": cutoff}
    return {row[-1]: _session_read(row[:-1]) for row in conn.execute(_SESSION_ACTORS, params)}


def _session_read(row: Sequence[Any]) -> SessionRead:
    """A `SessionRead` of a row of `_SESSION_ACTOR_COLUMNS`."""
    needs_enrolment, last_seen_at, expires_at, uid, organization_id, role, client_id, name, memberships, off_json = row
    off = {} if role in STAFF_ROLES else parse_customer_off(off_json)  # capabilities are customers' only
    assert uid is not None
    actor = Actor(uid, organization_id, role, client_id, name, parse_memberships(memberships), off)
    return SessionRead(actor, bool(needs_enrolment), last_seen_at, expires_at)


def _touch(hashes: Sequence[str], now: dt.datetime) -> Callable[[Connection], None]:
    def work(conn: Connection) -> None:
        conn.execute(
            sa_update(AuthSession)
            .where(col(AuthSession.token_hash).in_(list(hashes)), col(AuthSession.last_seen_at) < now)
            .values(last_seen_at=now)
        )

    return work


class AuthService:
    def __init__(self, settings: Settings, limiter: RateLimiter, throttle: SignInThrottle | None = None) -> None:
        self.settings = settings
        self.limiter = limiter
        # Seconds since the epoch, for authenticator codes and sign-in tickets; tests step it instead of sleeping.
        self.clock: Callable[[], float] = time.time
        # Failed sign-ins, slowed progressively per account and per IP (server/accounts/signin_throttle.py).
        self.throttle = throttle or make_throttle(settings)
        self.idle = dt.timedelta(minutes=settings.session_idle_minutes)
        self._touch_interval = min(_TOUCH_INTERVAL, self.idle / 10)
        # Advanced by every control message; sockets and requests reuse what they read while it holds
        # (server/accounts/session_cache.py).
        self.epoch = AccessEpoch(float(settings.session_sweep_seconds))
        self.sessions = SessionCache(self.epoch, self.idle)

    async def user_for_token(
        self, session: AsyncSession, token: str, *, enrolling_ok: bool = False
    ) -> tuple[User, dict[int, str], dict[int, frozenset[str]]] | None:
        """The active user whose session ``token`` is, with their memberships and the customer capabilities turned
        off in their projects, unless the session expired or went idle; None otherwise. One statement.

        Records the use in ``last_seen_at`` when the stored value is older than the touch interval.

        Raises:
            Refused: ``enrolment_required`` for a session that must enrol a second factor first, unless
                ``enrolling_ok``.
        """
        now = utcnow()
        params = {"token_hash": token_hash(token), "now": now, "cutoff": now - self.idle}
        row = (await session.exec(_SESSION_USER, params=params)).first()
        if row is None:
            return None
        auth_session, user, memberships, customer_off = row
        if auth_session.needs_enrolment and not enrolling_ok:
            raise Refused("Set up a second factor first: your organization requires one.", code="enrolment_required")
        if now - auth_session.last_seen_at > self._touch_interval:
            auth_session.last_seen_at = now
            session.add(auth_session)
        return user, parse_memberships(memberships), parse_customer_off(customer_off)

    async def session_actor(
        self,
        db: Database,
        hashed: str,
        *,
        user_id: int | None = None,
        enrolling_ok: bool = False,
        session: AsyncSession | None = None,
    ) -> Actor | None:
        """The actor of the valid session whose token hash is ``hashed``, for a request or a socket's admission: one
        Core read (`Database.read`, on ``session``'s connection where that is not SQLite's reader thread), unless
        this node read it since the last control message (`SessionCache`), and a write only when ``last_seen_at`` is
        due, as `user_for_token` records use.

        With ``user_id`` (a ticket, bound to the session that asked for it) the session must be that user's, and
        its use is not recorded again (asking for the ticket did). None when no session matches: the caller tries
        a personal API token next.

        Raises:
            Refused: ``enrolment_required`` for a session that must enrol a second factor first, unless
                ``enrolling_ok`` (presented as itself: a ticket is only issued to a session past enrolment).
        """
        now = utcnow()
        if user_id is not None:  # a ticket: read each time, never cached
            read = partial(read_session_actor, hashed=hashed, now=now, cutoff=now - self.idle, user_id=user_id)
            found = await db.read(read, session)
            return found.actor if found is not None else None
        found = self.sessions.get(hashed, now)
        if found is None:
            epoch = self.epoch.value  # before the read: a change announced during it makes the read stale
            found = await db.read(partial(read_session_actor, hashed=hashed, now=now, cutoff=now - self.idle), session)
            if found is None:
                return None
            self.sessions.put(hashed, found, epoch)
        if found.needs_enrolment and not enrolling_ok:
            raise Refused("Set up a second factor first: your organization requires one.", code="enrolment_required")
        if now - found.last_seen_at > self._touch_interval:
            await db.write(_touch([hashed], now))
            self.sessions.touched(hashed, now)
        return found.actor

    async def session_actors(self, db: Database, hashes: Sequence[str]) -> dict[str, Actor]:
        """`session_actor` for many sockets' admissions at once (a reconnect storm's, joined): the actors of the valid
        sessions among ``hashes``, read in one Core statement, with the uses due recorded in one ``UPDATE``.

        Returns:
            By token hash, the actor of each hash that names a valid session past enrolment; a hash with no valid
            session, or of a session that must enrol a second factor first (it has no sockets), is left out.
        """
        now = utcnow()
        found = await db.read(partial(read_session_actors, hashes=hashes, now=now, cutoff=now - self.idle))
        due = [hashed for hashed, read in found.items() if now - read.last_seen_at > self._touch_interval]
        if due:
            await db.write(_touch(due, now))
        return {hashed: read.actor for hashed, read in found.items() if not read.needs_enrolment}

    async def authenticate(
        self, conn: HTTPConnection, db: Database, session: AsyncSession, *, check_csrf: bool
    ) -> Actor | None:
        """The actor behind ``conn``, or None when it carries no valid session. A session token is read as a
        socket's is (`session_actor`: Core, no ORM objects); a personal API token through ``session``.

        Raises:
            Refused: ``csrf_failed`` for a cookie-authenticated write without the session's CSRF token;
                ``enrolment_required`` for a session that must enrol first, outside the enrolment paths.
        """
        creds = self.credentials(conn)
        if creds is None:
            return None
        enrolling_ok = enrolment_allows(conn.scope["path"])  # the path as routed (``conn.url`` builds a whole URL)
        if is_api_token(creds.token):
            actor = await self.actor_for_token(session, creds.token, enrolling_ok=enrolling_ok)
        else:
            actor = await self.session_actor(db, token_hash(creds.token), enrolling_ok=enrolling_ok, session=session)
        if actor is None:
            return None
        if check_csrf and creds.via_cookie:
            sent = conn.headers.get(CSRF_HEADER, "")
            if not sent or not constant_time_equal(sent, csrf_token(self.settings.secret_key, creds.token)):
                raise Refused("Missing or wrong X-CSRF-Token header.", code="csrf_failed")
        return actor

    def credentials(self, conn: HTTPConnection) -> Credentials | None:
        """`credentials`, with the unprefixed cookie accepted on plain http and, unless configured off, behind https."""
        legacy = not self.settings.secure_cookies or self.settings.accept_legacy_cookie
        return credentials(conn, legacy_cookie=legacy)

    async def actor_for_token(self, session: AsyncSession, token: str, *, enrolling_ok: bool = False) -> Actor | None:
        """The actor behind a session token or a personal API token (``tnd_...``, narrowed to its scopes)."""
        if is_api_token(token):
            actor = await _token_actor(session, token_hash(token), touch=True)
            if actor is not None:
                return actor
        found = await self.user_for_token(session, token, enrolling_ok=enrolling_ok)
        return await load_actor(session, *found) if found is not None else None

    async def check_login_rate(self, email: str, ip: str) -> None:
        """Refuse a sign-in attempt over the per-minute limits, or locked out after failures.

        Raises:
            RateLimited: ``rate_limited`` over the per-minute limits (counted first, as they always were);
                ``sign_in_locked`` (``params.seconds``, ``Retry-After``) while the account or address is locked
                out after failed sign-ins (server/accounts/signin_throttle.py).
        """
        per_account = await self.limiter.hit(f"login:acct:{email}", self.settings.login_attempts_per_minute, 60)
        per_ip = await self.limiter.hit(f"login:ip:{ip}", self.settings.login_attempts_per_minute * 5, 60)
        if not (per_account and per_ip):
            raise RateLimited("Too many sign-in attempts. Wait a minute and try again.")
        wait = await self.throttle.wait(email, ip)
        if wait > 0:
            raise RateLimited(
                f"Too many failed sign-ins. Try again in {wait} seconds.",
                code="sign_in_locked",
                retry_after=wait,
                params={"seconds": wait},
            )

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

    async def start_session(
        self, session: AsyncSession, user: User, user_agent: str, ip: str = "", *, needs_enrolment: bool = False
    ) -> str:
        """A new session for ``user``, from ``user_agent`` at ``ip`` (as the server saw it); returns its token
        (shown once, stored hashed). ``needs_enrolment``: it may only set up a second factor until one exists."""
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
                needs_enrolment=needs_enrolment,
            )
        )
        return token

    async def end_session(self, session: AsyncSession, token: str) -> None:
        """End the session of ``token`` (the caller announces it: `LiveUpdates.disconnect_user`)."""
        await session.exec(delete(AuthSession).where(col(AuthSession.token_hash) == token_hash(token)))
        self.sessions.forget(token_hash(token))

    async def end_all_sessions(self, session: AsyncSession, user_id: int) -> None:
        """End every session of ``user_id`` and void their unused password-reset links (the caller closes their
        live sockets, ``LiveUpdates.disconnect_user``) and their unused sign-in links."""
        await session.exec(delete(AuthSession).where(col(AuthSession.user_id) == user_id))
        await session.exec(delete(PasswordReset).where(col(PasswordReset.user_id) == user_id))
        await session.exec(
            delete(SignInLink).where(col(SignInLink.user_id) == user_id, col(SignInLink.used_at).is_(None))
        )

    def session_cookies(self, token: str) -> list[dict[str, Any]]:
        """The session and CSRF cookies of a new session (``__Host-`` names behind https), and the clearing of the
        other names' (a browser signing in again leaves no stale unprefixed cookie behind)."""
        max_age = self.settings.session_days * 86400
        secure = self.settings.secure_cookies
        session_name, csrf_name = cookie_names(secure)
        cookies: list[dict[str, Any]] = [
            dict(
                key=session_name, value=token, max_age=max_age, httponly=True, samesite="lax", secure=secure, path="/"
            ),
            # Readable by the page's script, which echoes it in X-CSRF-Token.
            dict(
                key=csrf_name,
                value=csrf_token(self.settings.secret_key, token),
                max_age=max_age,
                httponly=False,
                samesite="lax",
                secure=secure,
                path="/",
            ),
        ]
        if secure:
            old = (SESSION_COOKIE, CSRF_COOKIE)
            cookies += [dict(key=name, value="", max_age=0, path="/", secure=True) for name in old]
        return cookies

    def clear_cookies(self) -> list[dict[str, Any]]:
        """Delete both names of both cookies (a ``__Host-`` cookie is only deleted by a Secure Set-Cookie)."""
        secure = self.settings.secure_cookies
        names = (
            (SECURE_SESSION_COOKIE, SECURE_CSRF_COOKIE, SESSION_COOKIE, CSRF_COOKIE)
            if secure
            else (SESSION_COOKIE, CSRF_COOKIE)
        )
        return [dict(key=name, value="", max_age=0, path="/", secure=secure) for name in names]
