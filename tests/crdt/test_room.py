"""Rooms on one node, through in-memory transports: sync, co-editing, durability order, read-only, limits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import pycrdt

from crdt import protocol as p
from crdt.document import content_update, text_of
from crdt.manager import Access, RoomManager
from crdt.room import RoomSettings
from crdt.storage import MemoryNoteStore
from crdt.transport import pump_from
from tests.crdt.kit import SimClient, allow_all


async def test_two_clients_sync_and_co_edit(manager: RoomManager, store: MemoryNoteStore) -> None:
    a = SimClient(manager, 1).connect()
    await a.wait_for(lambda: a.synced)
    a.type("hello")
    b = SimClient(manager, 1).connect()
    await b.wait_for(lambda: str(b) == "hello")
    b.type(" world")
    a.type("!", 0)
    await a.wait_for(lambda: len(str(a)) == 12)
    await b.wait_for(lambda: str(b) == str(a))
    assert sorted(str(a)) == sorted("!hello world")
    stored = await store.load(1)
    doc: pycrdt.Doc = pycrdt.Doc()  # type: ignore[type-arg]
    doc.apply_update(stored.merged())
    assert text_of(doc) == str(a)
    await a.leave()
    await b.leave()


async def test_an_update_reaches_others_only_after_it_is_stored(manager: RoomManager, store: MemoryNoteStore) -> None:
    a = SimClient(manager, 2).connect()
    b = SimClient(manager, 2).connect()
    await a.wait_for(lambda: a.synced)
    await b.wait_for(lambda: b.synced)
    release = asyncio.Event()
    appended: list[bytes] = []
    original = store.append

    async def slow_append(note_id: int, update: bytes) -> None:
        await release.wait()
        appended.append(update)
        await original(note_id, update)

    store.append = slow_append  # type: ignore[method-assign]
    store.refuse_now = True  # a store that stores here and now cannot at the moment: the room waits for it too
    a.type("durable first")
    await asyncio.sleep(0.1)
    b.pump()
    assert str(b) == "" and not appended
    # A newcomer's sync step 2 is held back too: it would carry the unsaved update.
    c = SimClient(manager, 2).connect()
    await asyncio.sleep(0.05)
    c.pump()
    assert not c.synced
    release.set()
    await b.wait_for(lambda: str(b) == "durable first")
    await c.wait_for(lambda: c.synced and str(c) == "durable first")
    assert appended


async def test_the_rooms_updates_of_a_turn_are_stored_together_before_anyone_receives_them() -> None:
    store = MemoryNoteStore(appends_now=True)
    manager = RoomManager(store, allow_all)
    await manager.start()
    rooms = [(SimClient(manager, 21).connect(), SimClient(manager, 21).connect())]
    rooms.append((SimClient(manager, 22).connect(), SimClient(manager, 22).connect()))
    for writer, reader in rooms:
        await writer.wait_for(lambda w=writer: w.synced)
        await reader.wait_for(lambda r=reader: r.synced)
    calls: list[list[int]] = []
    original = store.append_now

    def append_now(rows: Sequence[tuple[int, bytes]]) -> bool:
        for _, reader in rooms:
            reader.pump()
        calls.append([note for note, _ in rows])
        assert all(str(reader) == "" for _, reader in rooms)  # nobody has it before it is stored
        return original(rows)

    store.append_now = append_now  # type: ignore[method-assign]
    for writer, _ in rooms:
        writer.type("same turn")  # the in-memory transport hands both to their rooms in one turn
    for _, reader in rooms:
        await reader.wait_for(lambda r=reader: str(r) == "same turn")
    assert calls == [[21, 22]]  # one transaction for both rooms
    assert all(len(store.logs[note]) >= 1 for note in (21, 22))
    await manager.close()


async def test_a_viewer_is_told_its_edits_are_refused(manager: RoomManager, store: MemoryNoteStore) -> None:
    staff = SimClient(manager, 3).connect()
    viewer = SimClient(manager, 3, readonly=True).connect()
    await staff.wait_for(lambda: staff.synced)
    staff.type("by staff")
    await viewer.wait_for(lambda: str(viewer) == "by staff")
    viewer.type(" by viewer")
    await viewer.wait_for(lambda: any(isinstance(m, p.Auth) for m in viewer.received))
    denied = [m for m in viewer.received if isinstance(m, p.Auth)]
    assert denied[0].kind is p.AuthType.PERMISSION_DENIED and "read-only" in denied[0].reason
    await asyncio.sleep(0.05)
    staff.pump()
    assert str(staff) == "by staff"
    assert viewer.transport.closed is None  # still connected, still reading
    stored = await store.load(3)
    doc: pycrdt.Doc = pycrdt.Doc()  # type: ignore[type-arg]
    doc.apply_update(stored.merged())
    assert text_of(doc) == "by staff"


async def test_oversize_message_closes_with_1009_and_applies_nothing(manager: RoomManager) -> None:
    a = SimClient(manager, 4).connect()
    await a.wait_for(lambda: a.synced)
    doc: pycrdt.Doc = pycrdt.Doc()  # type: ignore[type-arg]
    doc.get("content", type=pycrdt.Text).insert(0, "x" * 1_100_000)
    a.send(p.encode_update(doc.get_update()))
    await a.wait_for(lambda: a.transport.closed is not None)
    assert a.transport.closed is not None and a.transport.closed[0] == 1009
    b = SimClient(manager, 4).connect()
    await b.wait_for(lambda: b.synced)
    assert str(b) == ""


async def test_many_clients_joining_a_cold_room_at_once_all_sync(manager: RoomManager, store: MemoryNoteStore) -> None:
    await store.append(5, content_update("seeded"))
    clients = [SimClient(manager, 5).connect() for _ in range(200)]
    async with asyncio.timeout(10):
        await asyncio.gather(*(c.wait_for(lambda c=c: c.synced and str(c) == "seeded") for c in clients))
    clients[0].type("!")
    await asyncio.gather(*(c.wait_for(lambda c=c: str(c) == "seeded!") for c in clients))
    for c in clients:
        await c.leave()


async def test_awareness_is_relayed_throttled_and_removed_on_leave(manager: RoomManager) -> None:
    a = SimClient(manager, 6).connect()
    b = SimClient(manager, 6).connect()
    await a.wait_for(lambda: a.synced)
    await b.wait_for(lambda: b.synced)
    for clock in range(1, 101):
        state = json.dumps({"user": {"name": "Anna", "color": "#f00"}, "cursor": clock})
        a.send(p.encode_awareness([p.AwarenessEntry(77, clock, state)]))
    await b.wait_for(lambda: any(isinstance(m, p.Awareness) and m.entries[-1].clock == 100 for m in b.received))
    frames = [m for m in b.received if isinstance(m, p.Awareness)]
    assert len(frames) <= 5, "awareness must be merged per interval, not sent per change"
    b.send(p.encode_query_awareness())
    await b.wait_for(lambda: sum(isinstance(m, p.Awareness) for m in b.received) > len(frames))
    await a.leave()
    await b.wait_for(lambda: any(e.removed for m in b.received if isinstance(m, p.Awareness) for e in m.entries))
    gone = [e for m in b.received if isinstance(m, p.Awareness) for e in m.entries if e.removed]
    assert gone[0].client_id == 77 and gone[0].clock == 101


async def test_rooms_unload_when_idle_and_reload_from_the_store(manager: RoomManager, store: MemoryNoteStore) -> None:
    a = SimClient(manager, 7).connect()
    await a.wait_for(lambda: a.synced)
    a.type("kept")
    await asyncio.sleep(0.05)
    await a.leave()
    async with asyncio.timeout(5):
        while 7 in manager.rooms:
            await asyncio.sleep(0.05)
    assert store.snapshots.get(7), "an emptied room compacts its log"
    assert not store.logs[7]
    b = SimClient(manager, 7).connect()
    await b.wait_for(lambda: str(b) == "kept")
    assert str(b) == "kept"  # loaded once, not duplicated


async def test_many_idle_notes_do_not_stay_in_memory(manager: RoomManager) -> None:
    clients = [SimClient(manager, 1000 + i).connect() for i in range(300)]
    await asyncio.gather(*(c.wait_for(lambda c=c: c.synced) for c in clients))
    clients[0].type("x")
    assert len(manager.rooms) == 300
    for c in clients:
        await c.leave()
    async with asyncio.timeout(5):
        while manager.rooms:
            await asyncio.sleep(0.05)


async def test_a_failing_store_closes_editors_with_1011_and_keeps_what_was_acknowledged(
    manager: RoomManager, store: MemoryNoteStore
) -> None:
    a = SimClient(manager, 9).connect()
    b = SimClient(manager, 9).connect()
    await a.wait_for(lambda: a.synced)
    await b.wait_for(lambda: b.synced)
    a.type("kept")
    await b.wait_for(lambda: str(b) == "kept")  # relayed, so stored
    store.fail_appends = True
    a.type(" lost")
    await a.wait_for(lambda: a.transport.closed is not None)
    await b.wait_for(lambda: b.transport.closed is not None)
    assert a.transport.closed is not None and a.transport.closed[0] == 1011
    assert b.transport.closed is not None and b.transport.closed[0] == 1011
    assert str(b) == "kept"  # the unstored edit reached nobody
    # The store comes back: a reconnecting editor finds what was acknowledged, and its own resync restores the rest.
    store.fail_appends = False
    again = SimClient(manager, 9).connect()
    await again.wait_for(lambda: again.synced and str(again) == "kept")
    # The first editor reconnects with its document, as a provider does: the resync stores the edit the room refused.
    retry = SimClient(manager, 9)
    retry.doc.apply_update(a.doc.get_update())
    retry.connect()
    await retry.wait_for(lambda: retry.synced)
    await again.wait_for(lambda: str(again) == "kept lost")


async def test_access_that_changed_between_admission_and_joining_is_checked_again(store: MemoryNoteStore) -> None:
    access = {"now": Access.WRITE}

    async def check(principal: object, note_id: int) -> Access:
        return access["now"]

    rooms = RoomManager(store, check, settings=RoomSettings(awareness_interval=0.02))
    await rooms.start()
    try:
        admitted_at = rooms.access_epoch  # the endpoint checked access here: WRITE
        access["now"] = Access.FORBIDDEN
        await rooms.recheck(lambda p: True, note_ids=set())  # the change arrives before the peer is in its room
        late = SimClient(rooms, 9)
        late.task = asyncio.get_running_loop().create_task(
            rooms.serve(9, late.peer, pump_from(late._frames()), checked_at=admitted_at)
        )
        await late.wait_for(lambda: late.transport.closed is not None)
        assert late.transport.closed == (4403, "access revoked")
        # Admitted after the change: nothing to check again.
        access["now"] = Access.WRITE
        fresh = SimClient(rooms, 9)
        fresh.task = asyncio.get_running_loop().create_task(
            rooms.serve(9, fresh.peer, pump_from(fresh._frames()), checked_at=rooms.access_epoch)
        )
        fresh.send(p.encode_sync_step1(fresh.doc.get_state()))
        await fresh.wait_for(lambda: fresh.synced)
        assert fresh.transport.closed is None
        await fresh.leave()
    finally:
        await rooms.close()


class CountingStore(MemoryNoteStore):
    """Counts compactions in flight; each one waits for ``release`` so the test sees them overlap or not."""

    def __init__(self) -> None:
        super().__init__()
        self.running = 0
        self.most = 0
        self.started = 0
        self.release = asyncio.Event()

    async def compact(self, note_id: int) -> bool:
        self.running += 1
        self.started += 1
        self.most = max(self.most, self.running)
        try:
            await self.release.wait()
            return await super().compact(note_id)
        finally:
            self.running -= 1


async def test_rooms_of_one_node_compact_one_at_a_time() -> None:
    """Rooms typed in at the same pace reach the compaction threshold together: they take turns."""
    store = CountingStore()
    rooms = RoomManager(store, allow_all, settings=RoomSettings(compact_after_rows=3))
    await rooms.start()
    try:
        clients = [SimClient(rooms, note).connect() for note in (1, 2, 3)]
        for client in clients:
            await client.wait_for(lambda c=client: c.synced)
        for i in range(4):
            for client in clients:
                client.type(str(i))
            await asyncio.sleep(0.02)
        async with asyncio.timeout(5):
            while store.started < 1 or any(len(store.logs[note]) < 3 for note in (1, 2, 3)):
                await asyncio.sleep(0.01)
        assert store.started == 1 and store.most == 1, "the other rooms wait for the one compacting"
        store.release.set()
        async with asyncio.timeout(5):
            while store.started < 3 or store.running:
                await asyncio.sleep(0.01)
        assert store.most == 1
        assert all(store.snapshots.get(note) for note in (1, 2, 3))
        for client in clients:
            await client.leave()
    finally:
        await rooms.close()
