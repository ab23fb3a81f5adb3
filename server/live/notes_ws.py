"""``/yjs/{note_id}``: co-edited notes over the y-websocket protocol, and the node's note rooms.

This is the Starlette side only: admit the socket (``server/live/admission.py``: cookie, bearer header or single-use
ticket), ask the policy what the user may do with the note, then hand the socket to `crdt.manager.RoomManager`.
Everything about documents, sync, awareness, durability and relaying between nodes lives in ``crdt/``; the
principal, the transport, the session sweep and control messages are the socket layer's (``server/live/sockets.py``),
which calls `NoteRooms.recheck` when access changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from sqlmodel import col, select
from starlette.types import Receive, Send
from starlette.types import Scope as AsgiScope
from starlette.websockets import WebSocket

from channels.backends import make_broker
from channels.protocol import CloseCode
from crdt.manager import Access, RoomManager
from crdt.protocol import encode_permission_denied
from crdt.room import RoomSettings
from crdt.transport import Peer, PeerLimits
from server.accounts.auth import AuthService
from server.db import Database
from server.live.admission import SocketAdmission
from server.live.control import AccessChanged, Subject
from server.live.sockets import AsgiSocket, LivePrincipal
from server.models import Note, Task
from server.notes.rules import note_for
from server.notes.store import SqlNoteStore
from server.policy import Action, Actor, Forbidden, NotFound, Scope
from server.settings import Settings

log = logging.getLogger(__name__)


def awareness_identity(actor: Actor) -> dict[str, object]:
    """The ``user`` every awareness state of ``actor``'s note sockets carries, whatever the client sent (the colours
    it picked stay): name, user id, and ``staff`` or ``customer``, as presence on ``/ws`` describes people."""
    return {"name": actor.name, "id": actor.user_id, "role": "staff" if actor.is_staff else "customer"}


def _messages_of(peer: Peer, handle: Callable[[bytes], bool]) -> Callable[[bytes | str], bool]:
    """``handle`` behind the checks every message of a note's socket passes: binary only, within the peer's rate."""

    def on_message(message: bytes | str) -> bool:
        if isinstance(message, str):
            peer.abort(CloseCode.BAD_FRAME, "text frames are not part of this protocol")
            return False
        return peer.allow_message() and handle(message)

    return on_message


async def access_to_note(db: Database, actor: Actor, note_id: int) -> Access:
    """What ``actor`` may do with the note: WRITE, READ (viewers, and anyone on a note they may not edit) or
    FORBIDDEN (cannot see it, it does not exist, or it hangs off a task they cannot see).

    The policy's one rule for notes (``server.notes.rules.note_for``, which ``may_see_note`` answers with), asked at
    admission and at every re-check.
    """
    async with db.session() as session:
        try:
            await note_for(session, actor, note_id, Action.NOTE_EDIT)
        except NotFound:
            return Access.FORBIDDEN
        except Forbidden:
            return Access.READ
    # An API token without the write scope reads along, as a viewer would.
    return Access.WRITE if actor.has_scope(Scope.WRITE) else Access.READ


class NoteRooms:
    """This node's note rooms and the ``/yjs/{note_id}`` endpoint; one kind of socket of
    `server.live.sockets.LiveSockets`."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        auth: AuthService,
        sockets: SocketAdmission,
        room_settings: RoomSettings | None = None,
    ) -> None:
        self.db = db
        self.auth = auth
        self.sockets = sockets  # admission, shared with /ws
        self.store = SqlNoteStore(db)
        broker = make_broker(settings.redis_url, settings.redis_prefix) if settings.redis_url else None
        self.settings = room_settings or RoomSettings(
            peer_limits=PeerLimits(
                messages_per_second=settings.notes_messages_per_second, message_burst=settings.notes_message_burst
            )
        )
        self.manager = RoomManager(self.store, self._access, broker=broker, settings=self.settings)

    async def start(self) -> None:
        await self.manager.start()

    async def stop(self) -> None:
        await self.manager.close()

    async def _access(self, principal: object, note_id: int) -> Access:
        assert isinstance(principal, LivePrincipal)
        async with self.db.session() as session:
            actor = await self.sockets.current_actor(session, principal)
        if actor is None:
            return Access.UNAUTHORIZED
        return await access_to_note(self.db, actor, note_id)

    # -- the socket layer (server.live.sockets.SocketRegistry) -------------------------------------------------

    def principals(self) -> Iterator[LivePrincipal]:
        for room in self.manager.rooms.values():
            for peer in room.peers:
                if isinstance(peer.principal, LivePrincipal):
                    yield peer.principal

    def close_where(self, which: Callable[[LivePrincipal], bool], code: CloseCode, reason: str) -> None:
        # Also advances the access epoch: a socket admitted meanwhile is checked again when it joins its room.
        self.manager.close_where(lambda p: isinstance(p, LivePrincipal) and which(p), code, reason)

    async def recheck(self, change: AccessChanged) -> None:
        """Re-check the note sockets that hang off ``change.subject``; unload the rooms of notes that were deleted."""
        # Before any await: a socket admitted meanwhile is re-checked once it joins (see RoomManager.serve).
        self.manager.access_epoch += 1
        match change:
            case AccessChanged(Subject.USER, user_id):
                await self.manager.recheck(lambda p: isinstance(p, LivePrincipal) and p.actor.user_id == user_id)
            case AccessChanged(Subject.PROJECT | Subject.EVERYTHING):
                # A deleted project's notes are gone from the database, so its rooms cannot be looked up: all.
                await self.manager.recheck(lambda p: True)
                await self._drop_deleted()
            case AccessChanged(Subject.NOTE, note_id):
                await self.manager.recheck(lambda p: True, note_ids={note_id})
                await self._drop_deleted()
            case AccessChanged(Subject.TASK | Subject.MILESTONE as subject, ident):
                notes = await self._open_notes_under(subject, ident)
                await self.manager.recheck(lambda p: True, note_ids=notes)

    async def _drop_deleted(self) -> None:
        """Unload at once the open rooms whose note no longer exists (see ``RoomManager.drop``)."""
        open_notes = list(self.manager.rooms)
        if not open_notes:
            return
        async with self.db.session() as session:
            alive = set((await session.exec(select(Note.id).where(col(Note.id).in_(open_notes)))).all())
        self.manager.drop([note_id for note_id in open_notes if note_id not in alive])

    async def _open_notes_under(self, subject: Subject, ident: int) -> set[int]:
        """The notes open on this node that are attached to task ``ident`` (or to a task of milestone ``ident``)."""
        open_notes = list(self.manager.rooms)
        if not open_notes:
            return set()
        statement = select(Note.id).where(col(Note.id).in_(open_notes))
        if subject is Subject.TASK:
            statement = statement.where(Note.task_id == ident)
        else:
            tasks = select(Task.id).where(Task.milestone_id == ident)
            statement = statement.where(col(Note.task_id).in_(tasks))
        async with self.db.session() as session:
            return {note_id for note_id in (await session.exec(statement)).all() if note_id is not None}

    async def endpoint(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        """``/yjs/{note_id}`` as a plain ASGI app: authenticate, check the Origin and the policy, then join the
        note's room."""
        websocket = WebSocket(scope, receive, send)
        note_id = int(websocket.path_params["note_id"])
        principal = await self.sockets.admit(websocket)
        if principal is None:
            return
        checked_at = self.manager.access_epoch
        access = await access_to_note(self.db, principal.actor, note_id)
        if access is Access.FORBIDDEN:
            # y-websocket clients show the reason of a permission-denied message; then the socket closes.
            await websocket.send_bytes(encode_permission_denied("no such note, or you may not open it"))
            await websocket.close(CloseCode.FORBIDDEN, "forbidden")
            return
        transport = AsgiSocket(send)
        peer = Peer(
            transport,
            principal,
            readonly=access is Access.READ,
            limits=self.settings.peer_limits,
            identity=awareness_identity(principal.actor),
        )

        async def pump(handle: Callable[[bytes], bool]) -> None:
            await transport.pump(receive, _messages_of(peer, handle))

        await self.manager.serve(note_id, peer, pump, checked_at=checked_at)
        if not peer.closed:
            peer.abort(CloseCode.NORMAL, "bye")
        await peer.wait_closed()
