"""One note being edited: its document, its peers, and the path every update takes.

An update from a peer is integrated into the room's pycrdt document (which validates it and yields the canonical
update it actually changed, so garbage is never stored or relayed), queued, and written to the note's log as one
merged update with everything else that arrived meanwhile. Only once that write is durable does the batch go to the
other peers (one frame for the whole batch) and to other nodes. So an update anyone else has seen survives a
SIGKILL of the node.

Who writes it: with a store that can commit here and now (a SQLite file), `crdt.manager.RoomManager` stores the
batches of every room that got updates in a turn of the event loop, in one transaction at the end of that turn, and
fans them out at once. Otherwise, or when that store cannot write at the moment, the room's single flusher awaits
the store; what arrives while it waits is stored after it, so a room's batches are durable and fanned out in order.

A sync step 2 answering a newcomer is held back the same way: it is sent once every update it contains is durable.

Updates relayed from other nodes are durable already (their node stored them first); they are integrated and fanned
out to local peers, merged per event-loop turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import pycrdt

from channels.frames import websocket_frame
from channels.protocol import CloseCode
from crdt import metrics
from crdt.awareness import AwarenessTable
from crdt.protocol import (
    Auth,
    Awareness,
    Message,
    ProtocolError,
    QueryAwareness,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    decode,
    encode_awareness,
    encode_permission_denied,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
)
from crdt.storage import NoteStore
from crdt.transport import Peer, PeerLimits

log = logging.getLogger(__name__)

EMPTY_UPDATE = b"\x00\x00"
_MAX_PENDING_LOCAL = 256


@dataclass(frozen=True)
class RoomSettings:
    """Tunables of every room of a node.

    Attributes:
        max_message_bytes: a larger incoming message closes the socket with 1009 (nothing of it is applied).
        compact_after_rows: compact the note's log into its snapshot once it holds this many rows.
        awareness_interval: awareness fan-out happens at most once per this many seconds per room.
        unload_after_seconds: a room without peers is unloaded after this grace period.
        peer_limits: send-queue bounds of each peer.
    """

    max_message_bytes: int = 1_000_000
    compact_after_rows: int = 256
    awareness_interval: float = 0.05
    unload_after_seconds: float = 10.0
    awareness_ttl_seconds: float = 35.0
    peer_limits: PeerLimits = field(default_factory=PeerLimits)


class RoomFailed(Exception):
    """The room could not load or store its note; its peers are closed with 1011 and may reconnect."""


Publish = Callable[[int, bytes], None]


@dataclass(frozen=True, slots=True)
class Batch:
    """Updates of one room stored together: as they arrived (with who sent each), and merged into one."""

    updates: list[tuple[bytes, Peer | None]]
    upto: int  # the room's count of applied updates when the batch was taken
    merged: bytes


class Room:
    """The live state of one note on this node.

    Args:
        note_id: the note.
        store: where its updates are made durable.
        settings: tunables.
        publish: relays an encoded message to the other nodes (None on a single node).
        on_unsaved: called when updates wait to be stored and no store is underway (`RoomManager` stores them at
            the end of the turn, `take_unsaved` / `stored` / `not_stored`); None: the flusher stores everything.
        compactions: held while this room compacts, shared by every room of a `RoomManager`: one compaction at a
            time on a node. Rooms typed in at the same pace reach the threshold together (a review call's notes;
            every room after a restart), and their compactions at once were a stall of tens of milliseconds.
    """

    def __init__(
        self,
        note_id: int,
        store: NoteStore,
        settings: RoomSettings,
        publish: Publish | None,
        on_unsaved: Callable[[Room], None] | None = None,
        compactions: asyncio.Lock | None = None,
    ) -> None:
        self.note_id = note_id
        self._compactions = compactions or asyncio.Lock()
        self.store = store
        self.settings = settings
        self._publish = publish
        self.doc: pycrdt.Doc = pycrdt.Doc()  # type: ignore[type-arg]
        self._subscription: pycrdt.Subscription | None = self.doc.observe(self._on_doc_update)
        self._captured: list[bytes] = []
        self.peers: set[Peer] = set()
        self.awareness = AwarenessTable(
            settings.awareness_interval,
            self._fan_out,
            (lambda data: publish(note_id, data)) if publish is not None else None,
            ttl=settings.awareness_ttl_seconds,
        )
        self.loaded = False
        self.failed = False
        self.log_rows = 0
        self._buffered: list[Message] = []  # relayed while loading
        self._unsaved: list[tuple[bytes, Peer | None]] = []
        self._pending_local = 0  # local updates yrs holds back (missing dependencies); see _integrate_local
        self._applied = 0  # local updates integrated so far
        self._durable = 0  # ... and made durable
        self._held: list[tuple[int, Peer, bytes]] = []  # sync step 2 replies waiting for durability
        self._remote_out: list[bytes] = []
        self._wake = asyncio.Event()
        self._storing = False  # the flusher waits for the store: what arrives meanwhile waits for it
        self._on_unsaved = on_unsaved
        self._flusher: asyncio.Task[None] | None = None
        self._compactor: asyncio.Task[None] | None = None
        self.idle_since: float | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------

    async def load(self) -> None:
        """Read the note from the store into the document, then apply what other nodes relayed meanwhile.

        Raises:
            RoomFailed: the store could not be read.
        """
        try:
            stored = await self.store.load(self.note_id)
        except Exception as exc:
            raise RoomFailed(f"cannot load note {self.note_id}") from exc
        metrics.NOTE_SIZE_BYTES.observe(sum(len(update) for update in stored.updates))
        for update in stored.updates:
            try:
                self.doc.apply_update(update)
            except ValueError:
                log.error("note %s: a stored update does not decode; skipped", self.note_id)
        self._captured.clear()
        self.log_rows = stored.log_rows
        self.loaded = True
        buffered, self._buffered = self._buffered, []
        for message in buffered:
            self.receive_remote(message)
        self._flusher = asyncio.get_running_loop().create_task(self._flush_loop(), name=f"crdt-flush-{self.note_id}")

    async def close(self) -> None:
        """Store what is still unsaved, stop background work. Peers must have left (or be closed) already."""
        self.awareness.close()
        if self._unsaved and not self.failed:
            await self._drained()
        for task in (self._flusher, self._compactor):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._subscription is not None:
            self.doc.unobserve(self._subscription)
            self._subscription = None

    async def _drained(self) -> None:
        async with asyncio.timeout(10):
            while self._unsaved and not self.failed:
                self._wake.set()
                await asyncio.sleep(0.01)

    def fail(self, reason: str) -> None:
        """Give up on this room: close every peer with 1011; the manager drops the room, clients reconnect."""
        if self.failed:
            return
        self.failed = True
        log.error("note %s room failed: %s", self.note_id, reason)
        for peer in list(self.peers):
            peer.abort(CloseCode.INTERNAL, reason)

    # -- peers -------------------------------------------------------------------------------------------

    def join(self, peer: Peer) -> None:
        """Add ``peer`` and open the handshake: our sync step 1 (so it sends what we lack) and who is here."""
        self.peers.add(peer)
        self.idle_since = None
        peer.send(encode_sync_step1(self.doc.get_state()))
        present = self.awareness.current()
        if present:
            peer.send(encode_awareness(present))

    def leave(self, peer: Peer) -> None:
        self.peers.discard(peer)
        self._held = [h for h in self._held if h[1] is not peer]
        if peer.awareness_ids:
            self.awareness.remove(list(peer.awareness_ids), local=True)
            peer.awareness_ids.clear()
        if not self.peers:
            self.idle_since = asyncio.get_running_loop().time()

    def receive(self, peer: Peer, data: bytes) -> None:
        """Handle one message from ``peer``; a malformed one closes that peer (4400), never the room."""
        if peer.closed or self.failed:
            return
        if len(data) > self.settings.max_message_bytes:
            peer.abort(CloseCode.MESSAGE_TOO_BIG, f"message over {self.settings.max_message_bytes} bytes")
            return
        try:
            message = decode(data)
            self._handle(peer, message)
        except (ProtocolError, ValueError) as exc:
            log.info("note %s: bad message from %s: %s", self.note_id, peer, exc)
            peer.abort(CloseCode.BAD_FRAME, "malformed message")

    def _handle(self, peer: Peer, message: Message) -> None:
        match message:
            case SyncStep1(state_vector):
                self._answer_sync(peer, state_vector)
            case SyncStep2(update) | SyncUpdate(update):
                self._local_update(peer, update)
            case Awareness(entries):
                self.awareness.apply(entries, peer)
            case QueryAwareness():
                peer.send(encode_awareness(self.awareness.current()))
            case Auth():
                pass  # clients do not send auth messages; nothing to do

    def _answer_sync(self, peer: Peer, state_vector: bytes) -> None:
        diff = self.doc.get_update(state_vector)  # ValueError for a malformed state vector
        if self._durable >= self._applied:
            peer.send(encode_sync_step2(diff))
        else:
            self._held.append((self._applied, peer, diff))

    def _local_update(self, peer: Peer, update: bytes) -> None:
        if update == EMPTY_UPDATE:
            return
        if peer.readonly:
            peer.send(encode_permission_denied("read-only: your changes to this note are not saved"))
            return
        integrated = self._integrate(update)
        if integrated is None:
            # Nothing new, or yrs holds it back until its dependencies arrive: when they do, whatever comes
            # out must be stored even if a relayed update set it free.
            self._pending_local = min(self._pending_local + 1, _MAX_PENDING_LOCAL)
            return
        self._queue_durable(integrated, peer)

    def _queue_durable(self, update: bytes, origin: Peer | None) -> None:
        self._unsaved.append((update, origin))
        self._applied += 1
        if self._on_unsaved is not None and not self._storing:
            self._on_unsaved(self)  # stored at the end of this turn with every other room's (RoomManager)
        else:
            self._wake.set()

    def _integrate(self, update: bytes) -> bytes | None:
        """Apply ``update``; return what it changed (canonical encoding), or None if nothing."""
        captured = self._captured
        captured.clear()
        self.doc.apply_update(update)
        if not captured:
            return None
        result = captured[0] if len(captured) == 1 else pycrdt.merge_updates(*captured)
        captured.clear()
        return result

    def _on_doc_update(self, event: pycrdt.TransactionEvent) -> None:
        self._captured.append(event.update)

    def _fan_out(self, data: bytes, exclude: Peer | None = None) -> None:
        frame = websocket_frame(data)  # framed once for every peer
        for peer in self.peers:
            if peer is not exclude:
                peer.send(data, frame)

    # -- durability --------------------------------------------------------------------------------------

    def take_unsaved(self) -> Batch | None:
        """What arrived since the last store, merged into one update; None if nothing, or if a store is underway
        (its flusher stores the rest after it, in order)."""
        if not self._unsaved or self._storing or self.failed:
            return None
        updates, self._unsaved = self._unsaved, []
        merged = updates[0][0] if len(updates) == 1 else pycrdt.merge_updates(*(u for u, _ in updates))
        return Batch(updates, self._applied, merged)

    def stored(self, batch: Batch) -> None:
        """``batch`` is durable: tell the other peers and nodes, answer the newcomers it held back."""
        self._durable = batch.upto
        self.log_rows += 1
        origins = {origin for _, origin in batch.updates}
        only = next(iter(origins)) if len(origins) == 1 else None
        message = encode_update(batch.merged)
        self._fan_out(message, only)
        if self._publish is not None:
            self._publish(self.note_id, message)
        self._release_held()
        if self.log_rows >= self.settings.compact_after_rows:
            self.compact_soon()

    def not_stored(self, batch: Batch) -> None:
        """``batch`` could not be stored now: its flusher stores it (and what came after), waiting as it must."""
        self._unsaved[:0] = batch.updates
        self._wake.set()

    async def _flush_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch = self.take_unsaved()
            if batch is None:
                continue
            self._storing = True
            try:
                await self.store.append(self.note_id, batch.merged)
            except Exception:
                log.exception("note %s: storing an update failed", self.note_id)
                self.fail("storage unavailable")
                return
            finally:
                self._storing = False
            self.stored(batch)
            if self._unsaved:
                self._wake.set()  # arrived while storing: not handed to the manager, so stored from here

    def _release_held(self) -> None:
        if not self._held:
            return
        waiting = []
        for seq, peer, diff in self._held:
            if seq <= self._durable:
                peer.send(encode_sync_step2(diff))
            else:
                waiting.append((seq, peer, diff))
        self._held = waiting

    def compact_soon(self) -> None:
        """Fold the log into the snapshot in the background (one compaction at a time)."""
        if self._compactor is None or self._compactor.done():
            self._compactor = asyncio.get_running_loop().create_task(self._compact())

    async def _compact(self) -> None:
        async with self._compactions:
            try:
                rows = self.log_rows
                if await self.store.compact(self.note_id):
                    self.log_rows = max(0, self.log_rows - rows)
                    metrics.COMPACTIONS.labels(outcome="compacted").inc()
                else:
                    metrics.COMPACTIONS.labels(outcome="nothing").inc()
            except Exception:  # the log keeps everything; the next compaction retries
                metrics.COMPACTIONS.labels(outcome="failed").inc()
                log.warning("note %s: compaction failed", self.note_id, exc_info=True)

    # -- other nodes -------------------------------------------------------------------------------------

    def receive_remote(self, message: Message) -> None:
        """Handle a message another node relayed (already durable there)."""
        if not self.loaded:
            self._buffered.append(message)
            return
        match message:
            case SyncUpdate(update) | SyncStep2(update):
                self.integrate_durable(update)
            case Awareness(entries):
                self.awareness.apply(entries, None)
            case QueryAwareness():
                # A node that just opened the room asks who is here: tell it about our own peers.
                present = self.awareness.local()
                if present and self._publish is not None:
                    self._publish(self.note_id, encode_awareness(present))
            case _:
                pass

    def integrate_durable(self, update: bytes) -> None:
        """Integrate an update that is durable already (relayed, or re-read from the store) and fan it out."""
        try:
            integrated = self._integrate(update)
        except ValueError:
            log.error("note %s: a relayed update does not decode; dropped", self.note_id)
            return
        if integrated is None:
            return
        if self._pending_local:
            # It may carry local updates yrs held back: store it before anyone sees it.
            self._pending_local = 0
            self._queue_durable(integrated, None)
            return
        if not self._remote_out:
            asyncio.get_running_loop().call_soon(self._flush_remote)
        self._remote_out.append(integrated)

    def _flush_remote(self) -> None:
        updates, self._remote_out = self._remote_out, []
        if updates:
            merged = updates[0] if len(updates) == 1 else pycrdt.merge_updates(*updates)
            self._fan_out(encode_update(merged))
