"""The live side of a node: the hub and its broker, presence, the outbox relay, the control bus, and the
Starlette adapter for ``/ws``.

A socket is admitted once (cookie, bearer header or single-use ticket: ``server/live/admission.py``); each subscribe
asks the policy with memberships read afresh, and access changes made anywhere in the cluster re-check the
affected sockets on every node (the control bus).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlmodel import select
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from channels.backends import make_broker
from channels.broker import HistoryOptions
from channels.connection import Connection, ConnectionLimits
from channels.hub import Hub, HubSettings
from channels.loops import Loop
from channels.presence import MemoryPresence, PresenceInfo, PresenceManager
from channels.protocol import CloseCode, ConnectionClosedError
from server.accounts.auth import AuthService, refresh_actor_in
from server.db import Database
from server.live.admission import SocketAdmission
from server.live.channels_policy import ChannelRef, is_presence_channel, may_subscribe, parse_channel
from server.live.control import AccessChanged, ControlBus, ControlMessage, Disconnect, Subject
from server.live.outbox import OutboxRelay
from server.live.session_upkeep import purger, session_sweeper
from server.live.uvicorn_socket import RawSocket
from server.models import Task
from server.policy import Actor
from server.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class SocketPrincipal:
    """Who is behind a socket. ``actor`` is refreshed on each subscribe and re-check."""

    actor: Actor
    token_hash: str

    def __str__(self) -> str:
        return str(self.actor.user_id)


class AsgiTransport:
    """A hub connection's socket: messages go straight to the server's ASGI ``send`` (one coroutine, which
    uvicorn completes without suspending while the socket buffer has room), or, framed once per flush for every
    connection, straight to uvicorn's socket (``server/live/uvicorn_socket.py``); the close through Starlette."""

    def __init__(self, websocket: WebSocket, send: Send) -> None:
        self.websocket = websocket
        self._send = send
        self._raw = RawSocket.behind(send)

    async def send_text(self, text: str) -> None:
        await self._send({"type": "websocket.send", "text": text})

    def write_frame(self, frame: bytes) -> bool:
        return self._raw is not None and self._raw.write(frame)

    async def close(self, code: int, reason: str) -> None:
        with contextlib.suppress(RuntimeError):  # already closed by the peer
            await self.websocket.close(code, reason[:120])


def _is(principal: SocketPrincipal) -> Callable[[object], bool]:
    return lambda other: other is principal


def _refs(conn: Connection) -> list[ChannelRef]:
    return [ref for channel in conn.subscriptions if (ref := parse_channel(channel)) is not None]


async def _frames(websocket: WebSocket) -> AsyncIterator[str]:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            raise ConnectionClosedError(CloseCode.BAD_FRAME, "binary frames are not part of this protocol")
        yield text


class Realtime:
    def __init__(self, settings: Settings, db: Database, auth: AuthService, sockets: SocketAdmission) -> None:
        self.settings = settings
        self.db = db
        self.auth = auth
        self.sockets = sockets  # admission, shared with /yjs
        self.broker = make_broker(settings.redis_url, settings.redis_prefix)
        self.presence: PresenceManager
        if settings.redis_url:
            from channels.backends.redis_presence import RedisPresence

            self.presence = RedisPresence(settings.redis_url, settings.redis_prefix)
        else:
            self.presence = MemoryPresence()
        self.hub = Hub(
            self.broker,
            self.presence,
            authorize=self._authorize,
            settings=HubSettings(
                history=HistoryOptions(size=settings.history_size, ttl_seconds=float(settings.history_ttl_seconds)),
                idle_timeout_seconds=90.0,
                presence_ttl_seconds=float(settings.presence_ttl_seconds),
            ),
            presence_enabled=is_presence_channel,
            describe=self._describe,
        )
        self.control = ControlBus(
            make_broker(settings.redis_url, settings.redis_prefix), self._on_control, self._recheck_everyone
        )
        self.relay = OutboxRelay(db, self._publish)
        self.upkeep: list[Loop] = []  # the session sweep and purge (tests wait on their passes)
        self.limits = ConnectionLimits(
            max_queue_messages=settings.ws_max_queue_messages, max_subscriptions=settings.ws_max_subscriptions
        )
        # Other sockets (``/yjs`` notes) act on the same control messages; AccessChanged(EVERYTHING) after a reconnect.
        self.control_hooks: list[Callable[[ControlMessage], Awaitable[None]]] = []
        base = urlsplit(settings.base_url)
        self.allowed_origins = {f"{base.scheme}://{base.netloc}", *settings.allowed_origins}

    async def start(self) -> None:
        await self.broker.start()
        await self.hub.start()
        await self.control.start()
        self.relay.start()
        self.upkeep = [
            session_sweeper(
                self.db, self.settings.session_sweep_seconds, self.auth.idle, self._session_hashes, self._close_sessions
            ),
            # Once per node: deleting what ended is idempotent, so nodes need not agree on who does it.
            purger(self.db, self.settings),
        ]
        for loop in self.upkeep:
            loop.start()

    async def stop(self) -> None:
        for loop in self.upkeep:
            await loop.stop()
        await self.relay.stop()
        await self.hub.close()
        await self.control.close()
        await self.broker.close()
        await self.presence.close()

    async def _publish(self, channel: str, data: bytes, event_id: str | None = None) -> None:
        # Outbox rows pass their event id: a row published again (adopted from a node that died) is dropped.
        await self.hub.publish(channel, data, idempotency_key=event_id)

    # -- policy ------------------------------------------------------------------------------------------

    async def _authorize(self, principal: object, channel: str) -> bool:
        assert isinstance(principal, SocketPrincipal)
        # One session for both questions: a subscribe storm after a restart pays one pool checkout each.
        async with self.db.session() as session:
            actor = await refresh_actor_in(session, principal, self.auth.idle)
            return actor is not None and await may_subscribe(session, actor, channel)

    def _describe(self, conn: Connection) -> PresenceInfo:
        principal = conn.principal
        assert isinstance(principal, SocketPrincipal)
        role = "staff" if principal.actor.is_staff else "customer"
        return PresenceInfo(
            client_id=conn.id, user_id=str(principal.actor.user_id), name=principal.actor.name, role=role
        )

    # -- access changes ------------------------------------------------------------------------------------

    async def _on_control(self, message: ControlMessage) -> None:
        match message:
            case Disconnect(user_id, hashed):
                for conn in self.hub.connections:
                    principal = conn.principal
                    if not isinstance(principal, SocketPrincipal) or principal.actor.user_id != user_id:
                        continue
                    if hashed is not None and principal.token_hash != hashed:
                        continue
                    conn.abort(CloseCode.UNAUTHORIZED, "session ended")
            case AccessChanged(Subject.USER, user_id):
                await self._recheck(lambda p: p.actor.user_id == user_id)
            case AccessChanged(Subject.PROJECT, project_id):
                await self._recheck(lambda p: True, lambda ref: ref.kind == "project" and ref.id == project_id)
            case AccessChanged(Subject.TASK, task_id):
                await self._recheck(lambda p: True, lambda ref: ref.kind == "task" and ref.id == task_id)
            case AccessChanged(Subject.MILESTONE, milestone_id):
                tasks = await self._tasks_of_milestone(milestone_id)
                if tasks:
                    await self._recheck(lambda p: True, lambda ref: ref.kind == "task" and ref.id in tasks)
            case AccessChanged(Subject.EVERYTHING):
                await self._recheck(lambda p: True)
        for hook in self.control_hooks:
            await hook(message)

    async def _tasks_of_milestone(self, milestone_id: int) -> set[int]:
        if not any(ref.kind == "task" for conn in self.hub.connections for ref in _refs(conn)):
            return set()
        async with self.db.session() as session:
            rows = await session.exec(select(Task.id).where(Task.milestone_id == milestone_id))
            return {task_id for task_id in rows.all() if task_id is not None}

    def _session_hashes(self) -> set[str]:
        return {c.principal.token_hash for c in self.hub.connections if isinstance(c.principal, SocketPrincipal)}

    def _close_sessions(self, ended: set[str]) -> None:
        """Close the sockets of sessions that ended, expired or went idle since they connected (the sweep)."""
        for conn in self.hub.connections:
            if isinstance(conn.principal, SocketPrincipal) and conn.principal.token_hash in ended:
                conn.abort(CloseCode.UNAUTHORIZED, "session ended")

    async def _recheck_everyone(self) -> None:
        await self._on_control(AccessChanged(Subject.EVERYTHING))

    async def _recheck(
        self, which: Callable[[SocketPrincipal], bool], touches: Callable[[ChannelRef], bool] | None = None
    ) -> None:
        """Ask the policy again for every subscription of matching sockets; drop what it now refuses.

        With ``touches``, only sockets subscribed to a channel it selects are re-checked (all their channels).
        """
        for conn in self.hub.connections:
            principal = conn.principal
            if not isinstance(principal, SocketPrincipal) or not which(principal):
                continue
            if touches is not None and not any(touches(ref) for ref in _refs(conn)):
                continue
            channels = list(conn.subscriptions)
            if not channels:
                continue
            async with self.db.session() as session:  # one session for both questions, as in _authorize
                actor = await refresh_actor_in(session, principal, self.auth.idle)
                if actor is None:
                    conn.abort(CloseCode.UNAUTHORIZED, "session ended")
                    continue
                refused = {c for c in channels if not await may_subscribe(session, actor, c)}
            if refused:
                await self.hub.unsubscribe_where(_is(principal), refused.__contains__)

    # -- the endpoint --------------------------------------------------------------------------------------

    async def endpoint(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``/ws`` as a plain ASGI app (mounted ahead of the router, see ``server.app.WebSocketFastPath``):
        authenticate, check the Origin, then hand the socket to the hub."""
        websocket = WebSocket(scope, receive, send)
        admitted = await self.sockets.admit(websocket)
        if admitted is None:
            return
        principal = SocketPrincipal(*admitted)
        conn = Connection(AsgiTransport(websocket, send), principal, limits=self.limits)
        try:
            await self.hub.serve(conn, _frames(websocket))
        except WebSocketDisconnect:
            await self.hub.disconnect(conn)
        await conn.wait_closed()
