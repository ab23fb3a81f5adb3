"""Admission of WebSockets (``/ws`` and ``/yjs``): one module both sockets call, `SocketAdmission.admit`.

A socket is admitted when, in this order: its Origin is allowed; its IP holds fewer than
``ws_max_sockets_per_ip`` open sockets on this node; it carries a credential (the session cookie, an
``Authorization: Bearer`` header, or a single-use ``?ticket=`` from ``POST /api/ws-ticket``; never a long-lived
token in the URL, which proxies log); the credential names a valid session or API token; and its user holds fewer
than ``ws_max_sockets_per_user`` open sockets on this node. Refusals close with a code of
`channels.protocol.CloseCode` (docs/PROTOCOL.md).

The lookups are bounded (``server/live/admission_gate.py``): a session's, nearly every socket's, is joined with
the others asked meanwhile into one read (`JoinedReads`); a ticket's or a personal API token's holds a slot of the
`AdmissionGate`. A socket that cannot be served in time is closed with 1013 "try again later".
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Protocol, TypeVar
from urllib.parse import urlsplit

from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from channels.protocol import CloseCode
from server.accounts.api_tokens import is_api_token
from server.accounts.auth import AuthService, Credentials, actor_for_session, refresh_actor_in
from server.db import Database, Reads, session_of
from server.errors import Refused
from server.live.admission_gate import AdmissionBusy, AdmissionGate, JoinedReads
from server.live.sockets import LivePrincipal
from server.policy import Actor
from server.policy import Scope as TokenScope
from server.security import token_hash
from server.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

CAPPED = Counter("tandem_ws_sockets_capped_total", "Sockets closed with 4430: too many open per user or IP.", ["per"])


# -- open sockets per user and per IP ---------------------------------------------------------------------------

K = TypeVar("K", int, str)


class SocketCaps:
    """How many sockets (``/ws`` and ``/yjs`` together) each user and each IP address holds open on this node.

    Counted per node, not cluster-wide: the resource a cap protects is a node's memory and file descriptors, an
    in-process count is exact and is released for certain when a socket ends (a shared count in Redis would leak
    the slots of a node that died, and would cost a round trip per socket). Behind a load balancer that spreads
    sockets, a user's cluster-wide total is at most the cap times the number of nodes.

    Args:
        per_user: open sockets one user may hold on this node; 0 means no cap.
        per_ip: open sockets one IP address may hold on this node (before and after authentication); 0: no cap.
    """

    def __init__(self, per_user: int, per_ip: int) -> None:
        self.per_user = per_user
        self.per_ip = per_ip
        self.users: dict[int, int] = {}
        self.ips: dict[str, int] = {}

    @staticmethod
    def _take(counts: dict[K, int], key: K, cap: int) -> bool:
        held = counts.get(key, 0)
        if cap > 0 and held >= cap:
            return False
        counts[key] = held + 1
        return True

    @staticmethod
    def _give_back(counts: dict[K, int], key: K) -> None:
        held = counts.get(key, 0) - 1
        if held > 0:
            counts[key] = held
        else:
            counts.pop(key, None)

    def take_ip(self, ip: str) -> bool:
        """Count one more socket from ``ip``; False (nothing counted) if it already holds ``per_ip``."""
        return self._take(self.ips, ip, self.per_ip)

    def take_user(self, user_id: int) -> bool:
        """Count one more socket of ``user_id``; False (nothing counted) if they already hold ``per_user``."""
        return self._take(self.users, user_id, self.per_user)

    def release_ip(self, ip: str) -> None:
        self._give_back(self.ips, ip)

    def release_user(self, user_id: int) -> None:
        self._give_back(self.users, user_id)


# -- single-use tickets ---------------------------------------------------------------------------------------


class TicketStore(Protocol):
    """Short-lived single-use WebSocket tickets, stored by their SHA-256 only."""

    async def put(self, hashed: str, value: str, ttl_seconds: float) -> None:
        """Keep ``value`` under ``hashed`` for at most ``ttl_seconds`` (after which it may be forgotten)."""
        ...

    async def take(self, hashed: str) -> str | None:
        """Remove and return the value under ``hashed``: at most once, across every node sharing the store."""
        ...


class MemoryTicketStore:
    """One node's tickets (a deployment without Redis has one node). Expired entries are dropped as new ones come."""

    def __init__(self, clock: Callable[[], float] = time.time, max_entries: int = 100_000) -> None:
        self._clock = clock
        self._entries: dict[str, tuple[str, float]] = {}
        self._max_entries = max_entries

    async def put(self, hashed: str, value: str, ttl_seconds: float) -> None:
        now = self._clock()
        if len(self._entries) >= self._max_entries:
            for key in [k for k, (_, until) in self._entries.items() if until <= now]:
                del self._entries[key]
            while len(self._entries) >= self._max_entries:  # still full of live tickets: shed the oldest
                del self._entries[next(iter(self._entries))]
        self._entries[hashed] = (value, now + ttl_seconds)

    async def take(self, hashed: str) -> str | None:
        entry = self._entries.pop(hashed, None)
        return entry[0] if entry is not None else None


class RedisTicketStore:
    """Tickets every node can redeem: ``SET ... PX`` to issue, ``GETDEL`` to redeem (atomic, so once)."""

    def __init__(self, redis: Redis | RedisCluster, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix + "wst:"

    async def put(self, hashed: str, value: str, ttl_seconds: float) -> None:
        await self._redis.set(self._prefix + hashed, value, px=max(1, int(ttl_seconds * 1000)))

    async def take(self, hashed: str) -> str | None:
        raw = await self._redis.getdel(self._prefix + hashed)
        if raw is None:
            return None
        return raw.decode() if isinstance(raw, bytes) else str(raw)


class Tickets:
    """``POST /api/ws-ticket``'s tickets: 32 random bytes, valid ``ttl_seconds`` (by ``clock``), redeemable once,
    bound to the session (or API token) that asked, which must still be valid when the ticket is redeemed.

    The store holds the ticket's SHA-256, the user's id, the session's token hash and the expiry; the expiry is
    checked against ``clock`` (so tests drive it), the store's own TTL only cleans up.
    """

    def __init__(self, store: TicketStore, ttl_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    async def issue(self, user_id: int, session_hash: str) -> str:
        ticket = "wst_" + secrets.token_urlsafe(32)
        value = json.dumps([user_id, session_hash, self.clock() + self.ttl_seconds])
        await self.store.put(_hash(ticket), value, self.ttl_seconds + 5.0)
        return ticket

    async def redeem(self, ticket: str) -> tuple[int, str] | None:
        """The user id and session token hash a ticket was issued to; None if unknown, used or expired."""
        value = await self.store.take(_hash(ticket))
        if value is None:
            return None
        user_id, session_hash, expires_at = json.loads(value)
        if self.clock() >= expires_at:
            return None
        return int(user_id), str(session_hash)


def _hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


# -- the one entry point ----------------------------------------------------------------------------------------

_HELD = "tandem.socket_slots"  # the ASGI scope key under which `admit` notes what `guard` must give back


class SocketAdmission:
    """Admission of every ``/ws`` and ``/yjs`` socket on this node (see the module's docstring).

    ``guard`` wraps each socket endpoint, so whatever ``admit`` counted for a socket is given back when its
    endpoint returns, however it ends.
    """

    def __init__(self, settings: Settings, db: Database, auth: AuthService, tickets: Tickets) -> None:
        self.db = db
        self.auth = auth
        self.tickets = tickets
        self.gate = AdmissionGate(
            settings.ws_admit_concurrency, settings.ws_admit_queue, settings.ws_admit_wait_seconds
        )
        self.sessions: JoinedReads[str, Actor] = JoinedReads(
            partial(auth.session_actors, db),
            concurrency=settings.ws_admit_concurrency,
            max_waiting=settings.ws_admit_queue,
            wait_seconds=settings.ws_admit_wait_seconds,
        )
        self.caps = SocketCaps(settings.ws_max_sockets_per_user, settings.ws_max_sockets_per_ip)
        self.url_tokens = settings.ws_url_tokens
        self.epoch = auth.epoch
        base = urlsplit(settings.base_url)
        self.allowed_origins = {f"{base.scheme}://{base.netloc}", *settings.allowed_origins}

    def guard(self, endpoint: ASGIApp) -> ASGIApp:
        """``endpoint``, giving back the socket's place under the caps when it returns."""

        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            held: list[tuple[str, object]] = []
            scope[_HELD] = held
            try:
                await endpoint(scope, receive, send)
            finally:
                for kind, key in held:
                    if kind == "ip":
                        self.caps.release_ip(str(key))
                    else:
                        self.caps.release_user(int(str(key)))

        return guarded

    async def admit(self, websocket: WebSocket) -> LivePrincipal | None:
        """Accept a WebSocket, then let it in only if every rule of the module's docstring holds.

        The credential lookup is bounded (``server/live/admission_gate.py``): when too many sockets are being
        admitted at once (a reconnect storm) the socket is closed with 1013 "try again later" instead of joining an
        unbounded queue.

        Returns:
            Who is behind the socket (the actor and the SHA-256 of their session or API token); None after closing
            the socket with 4403 (origin not allowed, or an API token without the read scope), 4430 (too many
            sockets), 4401 (no valid credential) or 1013 (busy). Accepting first lets clients read the close code.
        """
        held: list[tuple[str, object]] = websocket.scope.setdefault(_HELD, [])
        origin = websocket.headers.get("origin")
        await websocket.accept()
        if origin is not None and origin.rstrip("/") not in self.allowed_origins:
            await websocket.close(CloseCode.FORBIDDEN, "origin not allowed")
            return None
        ip = websocket.client.host if websocket.client is not None else "unknown"
        if not self.caps.take_ip(ip):
            await self._capped(websocket, "ip")
            return None
        held.append(("ip", ip))
        epoch = self.epoch.value  # before the read: a change announced during it makes the actor stale
        try:
            found = await self._lookup(websocket)
        except AdmissionBusy:
            await websocket.close(CloseCode.TRY_AGAIN_LATER, "server busy, try again later")
            return None
        if found is None:
            reason = "sign in first" if "token" not in websocket.query_params else _NO_URL_TOKENS
            await websocket.close(CloseCode.UNAUTHORIZED, reason)
            return None
        actor, hashed = found
        if not actor.has_scope(TokenScope.READ):
            await websocket.close(CloseCode.FORBIDDEN, "insufficient_scope: this API token lacks the read scope")
            return None
        if not self.caps.take_user(actor.user_id):
            await self._capped(websocket, "user")
            return None
        held.append(("user", actor.user_id))
        principal = LivePrincipal(actor, hashed)
        self.epoch.stamp(principal, epoch)
        return principal

    async def current_actor(self, session: Reads, principal: LivePrincipal) -> Actor | None:
        """``principal``'s actor as it is now, or None if its session ended, expired or went idle.

        Read again from the database (into ``principal``) only when a control message arrived since it was last
        read (so every re-check after an access change reads it) or when that was longer ago than the session
        sweep's interval: see `AccessEpoch`.
        """
        if self.epoch.fresh(principal):
            return principal.actor
        epoch = self.epoch.value
        actor = await refresh_actor_in(await session_of(session), principal, self.auth.idle)
        if actor is not None:
            self.epoch.stamp(principal, epoch)
        return actor

    async def _lookup(self, websocket: WebSocket) -> tuple[Actor, str] | None:
        """The actor and credential hash behind ``websocket``; None without a valid credential.

        Raises:
            AdmissionBusy: too many sockets are being admitted.
        """
        ticket = websocket.query_params.get("ticket")
        if ticket:
            async with self.gate.slot():
                return await self._ticket_lookup(ticket)
        creds = self.auth.credentials(websocket)
        if creds is None and self.url_tokens and websocket.query_params.get("token"):
            creds = Credentials(websocket.query_params["token"], via_cookie=False)  # benchmarks only (settings)
        if creds is None:
            return None
        hashed = token_hash(creds.token)
        if not is_api_token(creds.token):
            # A session (nearly every socket, and every one of a reconnect storm): joined with the other sockets'
            # into one Core read on the reader thread, no ORM session. One that must enrol first is not found.
            actor = await self.sessions.get(hashed)
            return (actor, hashed) if actor is not None else None
        try:
            async with self.gate.slot(), self.db.session() as session:  # a personal API token, as REST reads it
                actor = await self.auth.actor_for_token(session, creds.token)
                if session.dirty:  # last_used_at, when it was due
                    await session.commit()
        except Refused:  # a session that must enrol a second factor first has no sockets
            return None
        return (actor, hashed) if actor is not None else None

    async def _ticket_lookup(self, ticket: str) -> tuple[Actor, str] | None:
        bound = await self.tickets.redeem(ticket)
        if bound is None:
            return None
        user_id, hashed = bound
        actor = await self.auth.session_actor(self.db, hashed, user_id=user_id)
        if actor is None:  # not a session: the ticket may be a personal API token's
            async with self.db.session() as session:
                actor = await actor_for_session(session, user_id, hashed, self.auth.idle)
        return (actor, hashed) if actor is not None else None

    async def _capped(self, websocket: WebSocket, per: str) -> None:
        CAPPED.labels(per).inc()
        await websocket.close(CloseCode.TOO_MANY_SOCKETS, f"too many open sockets for this {per}")


_NO_URL_TOKENS = "tokens are not accepted in the URL: send the cookie, an Authorization header, or a ?ticket="


def make_ticket_store(redis: Redis | RedisCluster | None, prefix: str) -> TicketStore:
    """Redis when the nodes share one (a ticket issued by one node is redeemed on another), else this node's."""
    return RedisTicketStore(redis, prefix) if redis is not None else MemoryTicketStore()
