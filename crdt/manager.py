"""The rooms of one node: opening (single-flight load), serving peers, unloading idle rooms, relaying between
nodes, and re-checking access when it changes.

Between nodes, rooms speak through a `channels.broker.Broker` (Redis in a cluster) with ephemeral publications on
``yjs:{note_id}``, one channel per note, subscribed while the note is open on this node. A node subscribes
*before* it loads the note from the store and applies what arrived meanwhile after loading, and every node stores
an update before publishing it, so a node that opens a note late misses nothing and has caught up before it
answers anyone's sync step 1. Once loaded, it sends a query-awareness on the channel, and every node answers
with its own peers' awareness states, so people who joined elsewhere earlier show up at once. After a broker
reconnect (publications may have been missed) every open room re-reads its note from the store; CRDT updates are
idempotent, so duplicates are harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, Collection
from enum import Enum

from channels.broker import Broker, BrokerUnavailable, Publication
from channels.loops import Loop
from channels.protocol import CloseCode
from crdt import metrics
from crdt.protocol import (
    ProtocolError,
    decode_envelope,
    encode_envelope,
    encode_permission_denied,
    encode_query_awareness,
)
from crdt.room import Room, RoomFailed, RoomSettings
from crdt.storage import NoteStore
from crdt.transport import Peer, Pump

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "yjs:"
_HOUSEKEEPING_SECONDS = 1.0


class Access(Enum):
    """What a principal may do with a note, as the access check answers."""

    UNAUTHORIZED = "unauthorized"  # no valid session: close 4401
    FORBIDDEN = "forbidden"  # may not open it (or it does not exist): permission-denied, close 4403
    READ = "read"
    WRITE = "write"


AccessCheck = Callable[[object, int], Awaitable[Access]]


class RoomManager:
    """Every open note room of this node.

    Args:
        store: durable note state (shared by every node).
        access: asks the policy what a principal may do with a note (used when access changes).
        broker: relays updates and awareness between nodes; None on a single node.
        settings: room tunables.
        node_id: this node's name on the relay (random by default).
    """

    def __init__(
        self,
        store: NoteStore,
        access: AccessCheck,
        *,
        broker: Broker | None = None,
        settings: RoomSettings | None = None,
        node_id: str | None = None,
    ) -> None:
        self.store = store
        self.access = access
        self.broker = broker
        self.settings = settings or RoomSettings()
        self.node_id = node_id or secrets.token_hex(8)
        self.rooms: dict[int, Room] = {}
        # Counts re-checks and forced closes: a peer whose access was checked at an older epoch is checked again
        # when it joins its room (see `serve`), so a change landing between its admission and its join is not missed.
        self.access_epoch = 0
        self._ready: dict[int, asyncio.Task[None]] = {}
        self._unloading: dict[int, asyncio.Task[None]] = {}
        self._outbox: deque[tuple[str, bytes]] = deque()
        self._unsaved: dict[Room, None] = {}  # rooms with updates to store at the end of this turn, in order
        self._compactions = asyncio.Lock()  # one room compacts at a time (see `Room`)
        # Idle rooms unload after ``unload_after_seconds``; stale awareness entries expire.
        self.housekeeping = Loop(
            "crdt-housekeeping",
            self._housekeep,
            interval=min(_HOUSEKEEPING_SECONDS, self.settings.unload_after_seconds),
        )
        # Relays what rooms stored to the other nodes, in order, when woken by `_publish`.
        self.relay = Loop(
            "crdt-relay-publish",
            self._publish_pending,
            interval=math.inf,
            first_delay=math.inf,
            backoff_base=0.1,
            backoff_max=5.0,
        )
        metrics.ROOMS_OPEN.set_function(lambda: len(self.rooms))

    async def start(self) -> None:
        if self.broker is not None:
            self.broker.set_handler(self._on_publication)
            self.broker.set_reconnect_handler(self._catch_up_all)
            await self.broker.start()
            self.relay.start()
        self.housekeeping.start()

    async def close(self) -> None:
        """Close every peer (1001: reconnect elsewhere), store what is unsaved, stop."""
        for room in list(self.rooms.values()):
            for peer in list(room.peers):
                peer.abort(CloseCode.GOING_AWAY, "node shutting down")
        for room in list(self.rooms.values()):
            with contextlib.suppress(Exception):
                await room.close()
        self.rooms.clear()
        await self.relay.stop()
        await self.housekeeping.stop()
        if self.broker is not None:
            await self.broker.close()

    # -- serving -----------------------------------------------------------------------------------------

    async def serve(self, note_id: int, peer: Peer, pump: Pump, *, checked_at: int | None = None) -> None:
        """Run ``peer`` in the note's room until its socket ends. Never raises for a peer's misbehaviour.

        Args:
            pump: reads the peer's socket (`crdt.transport.Pump`): each message goes to the room as it comes.
            checked_at: the `access_epoch` at which the caller checked the peer's access. If access changed since
                (a re-check ran while the peer was not in its room yet), the peer is checked again once it joined.
        """
        try:
            room = await self.open(note_id)
        except RoomFailed:
            peer.abort(CloseCode.INTERNAL, "note unavailable, retry")
            return
        room.join(peer)
        if checked_at is not None and checked_at != self.access_epoch:
            await self._recheck_peer(room, peer)

        def handle(data: bytes) -> bool:
            room.receive(peer, data)
            return not peer.closed

        try:
            await pump(handle)
        finally:
            room.leave(peer)
            if room.failed:
                self._forget(room)
            elif not room.peers:
                room.compact_soon()

    async def open(self, note_id: int) -> Room:
        """The note's room, loaded (and caught up with other nodes) before it returns.

        Raises:
            RoomFailed: the note could not be loaded.
        """
        while True:
            unloading = self._unloading.get(note_id)
            if unloading is not None:
                await asyncio.shield(unloading)
                continue
            room = self.rooms.get(note_id)
            if room is None or room.failed:
                room = Room(
                    note_id,
                    self.store,
                    self.settings,
                    self._publish if self.broker is not None else None,
                    self._store_soon if self.store.appends_now else None,
                    self._compactions,
                )
                self.rooms[note_id] = room
                self._ready[note_id] = asyncio.get_running_loop().create_task(self._load(room))
            ready = self._ready.get(note_id)
            if ready is not None:
                await asyncio.shield(ready)
            if room.loaded and not room.failed:
                return room
            if room.failed:
                raise RoomFailed(f"note {note_id} unavailable")

    def _store_soon(self, room: Room) -> None:
        """Store ``room``'s new updates with every other room's that arrive in this turn of the event loop, in one
        transaction, then fan them out: the turn's updates reach the other peers one turn after they arrived."""
        if not self._unsaved:
            asyncio.get_running_loop().call_soon(self._store_unsaved)
        self._unsaved[room] = None

    def _store_unsaved(self) -> None:
        rooms, self._unsaved = list(self._unsaved), {}
        taken = [(room, batch) for room in rooms if (batch := room.take_unsaved()) is not None]
        if not taken:
            return
        try:
            stored = self.store.append_now([(room.note_id, batch.merged) for room, batch in taken])
        except Exception:
            # Nothing was stored; each room's flusher stores its own, one at a time, and a row that still fails
            # fails only its room.
            log.info("storing %d rooms' updates together failed; each room stores its own", len(taken), exc_info=True)
            stored = False
        for room, batch in taken:
            if stored:
                room.stored(batch)
            else:
                room.not_stored(batch)

    async def _load(self, room: Room) -> None:
        try:
            if self.broker is not None:
                try:
                    await self.broker.subscribe(CHANNEL_PREFIX + str(room.note_id))
                except BrokerUnavailable as exc:
                    raise RoomFailed("relay unavailable") from exc
            await room.load()
            if self.broker is not None:
                # Other nodes' peers announced themselves before this node listened: ask them again.
                self._publish(room.note_id, encode_query_awareness())
        except RoomFailed:
            room.failed = True
            self._forget(room)
            raise
        finally:
            if self._ready.get(room.note_id) is asyncio.current_task():
                del self._ready[room.note_id]

    def _forget(self, room: Room) -> None:
        if self.rooms.get(room.note_id) is room:
            del self.rooms[room.note_id]
            self._unloading[room.note_id] = asyncio.get_running_loop().create_task(self._unload(room))

    async def _unload(self, room: Room) -> None:
        try:
            await room.close()
            if self.broker is not None:
                with contextlib.suppress(BrokerUnavailable):
                    await self.broker.unsubscribe(CHANNEL_PREFIX + str(room.note_id))
        except Exception:
            log.exception("note %s: unloading failed", room.note_id)
        finally:
            self._unloading.pop(room.note_id, None)

    async def _housekeep(self) -> None:
        now = asyncio.get_running_loop().time()  # the clock of `Room.idle_since`
        for room in list(self.rooms.values()):
            room.awareness.expire()
            idle = room.idle_since
            if room.loaded and not room.peers and idle is not None and now - idle >= self.settings.unload_after_seconds:
                self._forget(room)

    # -- access --------------------------------------------------------------------------------------------

    async def recheck(self, which: Callable[[object], bool], note_ids: Collection[int] | None = None) -> None:
        """Ask the access check again for every matching peer (of the rooms of ``note_ids``, or of all rooms).

        Peers that lost access get a permission-denied message and are closed (4403, or 4401 when their session
        ended); peers that became read-only stay, read-only. Call it for every access change, even when no room is
        concerned (``note_ids`` empty): it also advances `access_epoch`.
        """
        self.access_epoch += 1
        rooms = [r for r in self.rooms.values() if note_ids is None or r.note_id in note_ids]
        for room in rooms:
            for peer in list(room.peers):
                if not peer.closed and which(peer.principal):
                    await self._recheck_peer(room, peer)

    async def _recheck_peer(self, room: Room, peer: Peer) -> None:
        access = await self.access(peer.principal, room.note_id)
        if access is Access.UNAUTHORIZED:
            peer.abort(CloseCode.UNAUTHORIZED, "session ended")
        elif access is Access.FORBIDDEN:
            peer.send(encode_permission_denied("access revoked"))
            peer.abort(CloseCode.FORBIDDEN, "access revoked")
        else:
            peer.readonly = access is Access.READ

    def drop(self, note_ids: Collection[int]) -> None:
        """Unload the rooms of ``note_ids`` now, not after the idle grace period: their notes were deleted, and a
        note created later under the same id (SQLite reuses the highest deleted id) must not be served their text.
        Peers still in them get permission-denied and are closed (4403)."""
        for note_id in note_ids:
            room = self.rooms.get(note_id)
            if room is None or not room.loaded:
                continue
            for peer in list(room.peers):
                peer.send(encode_permission_denied("access revoked"))
                peer.abort(CloseCode.FORBIDDEN, "access revoked")
            self._forget(room)

    def close_where(self, which: Callable[[object], bool], code: CloseCode, reason: str) -> None:
        self.access_epoch += 1
        for room in list(self.rooms.values()):
            for peer in list(room.peers):
                if which(peer.principal):
                    peer.abort(code, reason)

    # -- relay ---------------------------------------------------------------------------------------------

    def _publish(self, note_id: int, message: bytes) -> None:
        self._outbox.append((CHANNEL_PREFIX + str(note_id), encode_envelope(self.node_id, message)))
        self.relay.wake()

    async def _publish_pending(self) -> None:
        assert self.broker is not None
        while self._outbox:
            channel, data = self._outbox.popleft()
            try:
                await self.broker.publish(channel, data, None)
            except BrokerUnavailable:
                # Stored already: other nodes re-read the store when their relay reconnects.
                log.warning("relay unavailable; %s not relayed", channel)

    def _on_publication(self, publication: Publication) -> None:
        if not publication.channel.startswith(CHANNEL_PREFIX):
            return
        try:
            room = self.rooms.get(int(publication.channel[len(CHANNEL_PREFIX) :]))
        except ValueError:
            return
        if room is None or room.failed:
            return
        try:
            origin, message = decode_envelope(publication.data)
        except ProtocolError:
            log.error("malformed relayed message on %s", publication.channel)
            return
        if origin != self.node_id:
            room.receive_remote(message)

    async def _catch_up_all(self) -> None:
        for room in list(self.rooms.values()):
            if not room.loaded or room.failed:
                continue
            try:
                stored = await self.store.load(room.note_id)
            except Exception:
                log.warning("note %s: catch-up after relay reconnect failed", room.note_id, exc_info=True)
                continue
            for update in stored.updates:
                room.integrate_durable(update)
