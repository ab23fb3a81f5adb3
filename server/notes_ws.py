"""``/yjs/{note_id}``: co-edited notes over the y-websocket protocol, and the node's note rooms.

This is the Starlette side only: authenticate the socket (session cookie or ``?token=``), ask the policy what the
user may do with the note, then hand the socket to `crdt.manager.RoomManager`. Everything about documents, sync,
awareness, durability and relaying between nodes lives in ``crdt/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Coroutine, Generator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.websockets import WebSocket

from channels.backends import make_broker
from channels.protocol import CloseCode
from crdt.manager import Access, RoomManager
from crdt.protocol import encode_permission_denied
from crdt.room import RoomSettings
from crdt.storage import SqlNoteStore
from crdt.transport import Peer
from server.auth import AuthService, admit_socket, refresh_actor
from server.db import Database
from server.models import Note, Project
from server.policy import Action, Actor, Forbidden, NotFound, authorize
from server.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class NotePrincipal:
    """Who is behind a note socket: refreshed whenever access is re-checked."""

    actor: Actor
    token_hash: str

    def __str__(self) -> str:
        return f"user {self.actor.user_id}"


class StarletteTransport:
    """`crdt.transport.Transport` over a Starlette WebSocket.

    `write` runs the ASGI send eagerly: with uvicorn it completes without suspending unless the socket is
    paused by flow control, so fanning an update out to a thousand peers costs no task and no event-loop turn
    per peer. Only a send that does wait becomes a task (Python 3.12's eager tasks do the same).
    """

    def __init__(self, websocket: WebSocket) -> None:
        self._send = websocket.send

    def write(self, data: bytes) -> Awaitable[None] | None:
        return _run_eagerly(self._send({"type": "websocket.send", "bytes": data}))

    async def close(self, code: int, reason: str) -> None:
        with contextlib.suppress(RuntimeError):  # already closed by the peer
            await self._send({"type": "websocket.close", "code": code, "reason": reason[:120]})


def _run_eagerly(coro: Coroutine[Any, Any, None]) -> Awaitable[None] | None:
    try:
        waiting_on = coro.send(None)
    except StopIteration:
        return None
    except BaseException:
        coro.close()
        raise
    return asyncio.ensure_future(_resume(coro, waiting_on))


async def _resume(coro: Coroutine[Any, Any, None], waiting_on: Any) -> None:
    """Drive ``coro`` on from where `_run_eagerly` left it, as a task would: wait for what it waits on."""
    while True:
        try:
            if waiting_on is None:
                await asyncio.sleep(0)
            else:
                await _Await(waiting_on)
        except BaseException as exc:
            try:
                waiting_on = coro.throw(exc)
            except StopIteration:
                return
            continue
        try:
            waiting_on = coro.send(None)
        except StopIteration:
            return


class _Await:
    def __init__(self, future: Any) -> None:
        self.future = future

    def __await__(self) -> Generator[Any, None, None]:
        yield from self.future.__await__()


async def _frames(websocket: WebSocket, peer: Peer) -> AsyncIterator[bytes]:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("bytes")
        if data is None:
            peer.abort(CloseCode.BAD_FRAME, "text frames are not part of this protocol")
            return
        if not peer.allow_message():
            return
        yield data


async def access_to_note(db: Database, actor: Actor, note_id: int) -> Access:
    """What ``actor`` may do with the note: WRITE, READ (viewers, and anyone on a note they may not edit) or
    FORBIDDEN (cannot see it, or it does not exist)."""
    async with db.session() as session:
        note = await session.get(Note, note_id)
        project = await session.get(Project, note.project_id) if note is not None else None
    if note is None or project is None:
        return Access.FORBIDDEN
    try:
        authorize(actor, Action.ITEM_READ, project, note)
    except (NotFound, Forbidden):
        return Access.FORBIDDEN
    try:
        authorize(actor, Action.NOTE_EDIT, project, note)
    except (NotFound, Forbidden):
        return Access.READ
    return Access.WRITE


class NoteRooms:
    """This node's note rooms and the ``/yjs/{note_id}`` endpoint."""

    def __init__(
        self, settings: Settings, db: Database, auth: AuthService, room_settings: RoomSettings | None = None
    ) -> None:
        self.db = db
        self.auth = auth
        self.store = SqlNoteStore(db)
        broker = make_broker(settings.redis_url, settings.redis_prefix) if settings.redis_url else None
        self.settings = room_settings or RoomSettings()
        self.manager = RoomManager(self.store, self._access, broker=broker, settings=self.settings)
        base = urlsplit(settings.base_url)
        self.allowed_origins = {f"{base.scheme}://{base.netloc}", *settings.allowed_origins}

    async def start(self) -> None:
        await self.manager.start()

    async def stop(self) -> None:
        await self.manager.close()

    async def _fresh_actor(self, principal: NotePrincipal) -> Actor | None:
        return await refresh_actor(self.db, principal)

    async def _access(self, principal: object, note_id: int) -> Access:
        assert isinstance(principal, NotePrincipal)
        actor = await self._fresh_actor(principal)
        if actor is None:
            return Access.UNAUTHORIZED
        return await access_to_note(self.db, actor, note_id)

    async def on_control(self, message: dict[str, Any]) -> None:
        """React to the control bus (see ``server/realtime.py``): access changes re-check note sockets."""
        kind = message.get("type")
        if kind == "recheck_user":
            user_id = message.get("user_id")
            await self.manager.recheck(lambda p: isinstance(p, NotePrincipal) and p.actor.user_id == user_id)
        elif kind in ("recheck_project", "recheck_all"):
            await self.manager.recheck(lambda p: True)
        elif kind == "recheck_note" and isinstance(message.get("note_id"), int):
            await self.manager.recheck(lambda p: True, note_id=message["note_id"])
        elif kind == "disconnect":

            def ended(p: object) -> bool:
                return (
                    isinstance(p, NotePrincipal)
                    and p.actor.user_id == message.get("user_id")
                    and message.get("token_hash", p.token_hash) == p.token_hash
                )

            self.manager.close_where(ended, CloseCode.UNAUTHORIZED, "session ended")

    async def endpoint(self, websocket: WebSocket) -> None:
        """``/yjs/{note_id}``: authenticate, check the Origin and the policy, then join the note's room."""
        note_id = int(websocket.path_params["note_id"])
        admitted = await admit_socket(websocket, self.db, self.auth, self.allowed_origins)
        if admitted is None:
            return
        actor, session_hash = admitted
        access = await access_to_note(self.db, actor, note_id)
        if access is Access.FORBIDDEN:
            # y-websocket clients show the reason of a permission-denied message; then the socket closes.
            await websocket.send_bytes(encode_permission_denied("no such note, or you may not open it"))
            await websocket.close(CloseCode.FORBIDDEN, "forbidden")
            return
        principal = NotePrincipal(actor, session_hash)
        peer = Peer(
            StarletteTransport(websocket),
            principal,
            readonly=access is Access.READ,
            limits=self.settings.peer_limits,
        )
        await self.manager.serve(note_id, peer, _frames(websocket, peer))
        if not peer.closed:
            peer.abort(CloseCode.NORMAL, "bye")
        await peer.wait_closed()
