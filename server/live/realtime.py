"""``/ws``: the hub and its broker, presence, the outbox relay, the session purge, and the hub's part of the socket
layer (``server/live/sockets.py``).

A socket is admitted once (cookie, bearer header or single-use ticket: ``server/live/admission.py``); each subscribe
asks the policy with memberships read afresh, and access changes made anywhere in the cluster re-check the
affected sockets on every node (`Realtime.recheck`, called by `server.live.sockets.LiveSockets`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence

from sqlmodel import select
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from channels.backends import make_broker
from channels.broker import HistoryOptions, Publishing, StreamPosition
from channels.connection import Connection, ConnectionLimits
from channels.hub import Hub, HubSettings
from channels.loops import Loop
from channels.presence import MemoryPresence, PresenceInfo, PresenceManager
from channels.protocol import CloseCode, ConnectionClosedError
from server.accounts.auth import AuthService
from server.db import Database, SessionOnDemand
from server.live.admission import SocketAdmission
from server.live.channels_policy import ChannelFacts, ChannelRef, is_presence_channel, may_subscribe, parse_channel
from server.live.control import AccessChanged, Subject
from server.live.outbox import OutboxRelay
from server.live.session_upkeep import purger
from server.live.sockets import AsgiSocket, LivePrincipal
from server.models import Task
from server.settings import Settings

log = logging.getLogger(__name__)


def _is(principal: LivePrincipal) -> Callable[[object], bool]:
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
    """This node's hub and the ``/ws`` endpoint; one kind of socket of `server.live.sockets.LiveSockets`."""

    def __init__(self, settings: Settings, db: Database, auth: AuthService, sockets: SocketAdmission) -> None:
        self.settings = settings
        self.db = db
        self.auth = auth
        self.sockets = sockets  # admission, shared with /yjs
        self.facts = ChannelFacts(sockets.epoch)
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
        self.relay = OutboxRelay(db, self._publish, publish_batch=self._publish_batch)
        self.upkeep: list[Loop] = []  # the session purge (tests wait on its passes)
        self.limits = ConnectionLimits(
            max_queue_messages=settings.ws_max_queue_messages, max_subscriptions=settings.ws_max_subscriptions
        )

    async def start(self) -> None:
        await self.broker.start()
        await self.hub.start()
        self.relay.start()
        self.upkeep = [
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
        await self.broker.close()
        await self.presence.close()

    async def _publish(self, channel: str, data: bytes, event_id: str | None = None) -> None:
        # Outbox rows pass their event id: a row published again (adopted from a node that died) is dropped.
        await self.hub.publish(channel, data, idempotency_key=event_id)

    async def _publish_batch(self, items: Sequence[tuple[str, bytes, str]]) -> list[StreamPosition | None]:
        # Rows handed over together: one Redis round trip, so every node fans them out in one turn.
        return await self.hub.publish_batch([Publishing(channel, data, key) for channel, data, key in items])

    # -- policy ------------------------------------------------------------------------------------------

    async def _authorize(self, principal: object, channel: str) -> bool:
        assert isinstance(principal, LivePrincipal)
        # One session for both questions, made only if one of them is not answered from what this node keeps
        # (`AccessEpoch`, `ChannelFacts`): most subscribes make none.
        async with SessionOnDemand(self.db) as session:
            actor = await self.sockets.current_actor(session, principal)
            return actor is not None and await may_subscribe(self.facts, session, actor, channel)

    def _describe(self, conn: Connection) -> PresenceInfo:
        principal = conn.principal
        assert isinstance(principal, LivePrincipal)
        role = "staff" if principal.actor.is_staff else "customer"
        return PresenceInfo(
            client_id=conn.id, user_id=str(principal.actor.user_id), name=principal.actor.name, role=role
        )

    # -- the socket layer (server.live.sockets.SocketRegistry) -------------------------------------------------

    def principals(self) -> Iterator[LivePrincipal]:
        return (c.principal for c in self.hub.connections if isinstance(c.principal, LivePrincipal))

    def close_where(self, which: Callable[[LivePrincipal], bool], code: CloseCode, reason: str) -> None:
        for conn in self.hub.connections:
            if isinstance(conn.principal, LivePrincipal) and which(conn.principal):
                conn.abort(code, reason)

    async def recheck(self, change: AccessChanged) -> None:
        """Re-check the subscriptions that hang off ``change.subject`` (notes have no channels: nothing to do)."""
        match change:
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

    async def _tasks_of_milestone(self, milestone_id: int) -> set[int]:
        if not any(ref.kind == "task" for conn in self.hub.connections for ref in _refs(conn)):
            return set()
        async with self.db.session() as session:
            rows = await session.exec(select(Task.id).where(Task.milestone_id == milestone_id))
            return {task_id for task_id in rows.all() if task_id is not None}

    async def _recheck(
        self, which: Callable[[LivePrincipal], bool], touches: Callable[[ChannelRef], bool] | None = None
    ) -> None:
        """Ask the policy again for every subscription of matching sockets; drop what it now refuses.

        With ``touches``, only sockets subscribed to a channel it selects are re-checked (all their channels).
        """
        for conn in self.hub.connections:
            principal = conn.principal
            if not isinstance(principal, LivePrincipal) or not which(principal):
                continue
            if touches is not None and not any(touches(ref) for ref in _refs(conn)):
                continue
            channels = list(conn.subscriptions)
            if not channels:
                continue
            async with self.db.session() as session:  # one session for both questions, as in _authorize
                actor = await self.sockets.current_actor(session, principal)
                if actor is None:
                    conn.abort(CloseCode.UNAUTHORIZED, "session ended")
                    continue
                refused = {c for c in channels if not await may_subscribe(self.facts, session, actor, c)}
            if refused:
                await self.hub.unsubscribe_where(_is(principal), refused.__contains__)

    # -- the endpoint --------------------------------------------------------------------------------------

    async def endpoint(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``/ws`` as a plain ASGI app (mounted ahead of the router, see ``server.app.WebSocketFastPath``):
        authenticate, check the Origin, then hand the socket to the hub."""
        websocket = WebSocket(scope, receive, send)
        principal = await self.sockets.admit(websocket)
        if principal is None:
            return
        conn = Connection(AsgiSocket(send), principal, limits=self.limits)
        try:
            await self.hub.serve(conn, _frames(websocket))
        except WebSocketDisconnect:
            await self.hub.disconnect(conn)
        await conn.wait_closed()
