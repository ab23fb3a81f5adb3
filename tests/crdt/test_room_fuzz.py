"""Property-based fuzzing of binary (Yjs) messages against a room: whatever a peer sends, the room neither crashes
nor stores anything but what its document holds, keeps its own buffers bounded, and keeps serving a bystander.

Messages are built from valid y-websocket messages (updates, sync steps, awareness) that hypothesis then
truncates, extends or corrupts, mixed with raw bytes; the cases that once broke a Yjs server are kept below as a
regression corpus.
"""

from __future__ import annotations

import asyncio
import json

import pycrdt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crdt import protocol as p
from crdt.awareness import MAX_IDS_PER_PEER
from crdt.document import CONTENT, legacy_text_of
from crdt.manager import RoomManager
from crdt.room import RoomSettings
from crdt.storage import MemoryNoteStore
from tests.crdt.kit import SimClient, allow_all

NOTE = 7


def _edit(text: str, client_id: int) -> bytes:
    doc: pycrdt.Doc = pycrdt.Doc(client_id=client_id)  # type: ignore[type-arg]
    doc.get(CONTENT, type=pycrdt.Text).insert(0, text)
    return doc.get_update()


def _awareness(client_id: int, clock: int, state: object) -> bytes:
    return p.encode_awareness([p.AwarenessEntry(client_id, clock, json.dumps(state))])


valid = st.one_of(
    st.builds(lambda t, c: p.encode_update(_edit(t, c)), st.text(max_size=30), st.integers(1, 2**31)),
    st.builds(lambda t, c: p.encode_sync_step2(_edit(t, c)), st.text(max_size=30), st.integers(1, 2**31)),
    st.builds(p.encode_sync_step1, st.binary(max_size=20)),
    st.builds(_awareness, st.integers(0, 2**53), st.integers(0, 2**40), st.text(max_size=50)),
    st.just(p.encode_query_awareness()),
)


def _corrupt(data: bytes, cut: int, extra: bytes, flip: int) -> bytes:
    mutated = bytearray(data[: max(0, len(data) - cut)] + extra)
    if mutated and flip:
        mutated[flip % len(mutated)] ^= flip & 0xFF or 1
    return bytes(mutated)


messages = st.one_of(
    valid,
    st.builds(_corrupt, valid, st.integers(0, 8), st.binary(max_size=8), st.integers(0, 1000)),
    st.binary(max_size=64),
)


async def scenario(inputs: list[bytes]) -> None:
    store = MemoryNoteStore()
    manager = RoomManager(store, allow_all, settings=RoomSettings(awareness_interval=0.01, unload_after_seconds=30))
    await manager.start()
    try:
        bystander = SimClient(manager, NOTE).connect()
        await bystander.wait_for(lambda: bystander.synced)
        fuzzer = SimClient(manager, NOTE).connect()
        for data in inputs:
            fuzzer.send(data)
        await asyncio.sleep(0.05)
        room = manager.rooms[NOTE]
        # Bounded: the fuzzer's announced awareness ids, and everything the room holds back.
        assert len(fuzzer.peer.awareness_ids) <= MAX_IDS_PER_PEER
        assert len(room.awareness.states) <= 2 * MAX_IDS_PER_PEER + len(inputs)
        assert len(room._held) <= 2 and len(room._buffered) == 0
        # Whatever the fuzzer did (or was closed for), the bystander still edits and the store matches the room.
        bystander.type("ok")
        await bystander.wait_for(lambda: "ok" in str(bystander))
        async with asyncio.timeout(5):
            while room._unsaved:
                await asyncio.sleep(0.01)
        stored: pycrdt.Doc = pycrdt.Doc()  # type: ignore[type-arg]
        stored.apply_update((await store.load(NOTE)).merged())
        assert legacy_text_of(stored) == str(room.doc.get(CONTENT, type=pycrdt.Text))
        if fuzzer.peer.close_code is not None:
            assert fuzzer.peer.close_code in (4400, 1009, 4429)
        await bystander.leave()
        await fuzzer.leave()
    finally:
        await manager.close()


@settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(messages, max_size=20))
def test_arbitrary_messages_never_break_the_room_or_its_store(inputs: list[bytes]) -> None:
    asyncio.run(asyncio.wait_for(scenario(inputs), timeout=30))


# Kept whatever hypothesis explores: each once broke, or nearly broke, a Yjs server somewhere.
REGRESSIONS: list[list[bytes]] = [
    [b"\x00\x02\xff\xff\xff\xff\x0f"],  # an update whose length varint claims 4 GB
    [b"\x00\x02\x80"],  # a truncated varint
    [b"\x00\x01\x05\x00\x00"],  # sync step 2 shorter than it says
    [b"\x00\x02\x02\x00\x00", b"\x00\x02\x02\x00\x00"],  # the empty update, twice
    [p.encode_update(b"\x01\x01\xff\xff\xff\xff\x0f\x00\x00")],  # a garbage update with a valid frame
    [_awareness(i, 1, {"cursor": i}) for i in range(100)],  # one peer announcing a hundred clients
    [_awareness(1, 1, {"x": "y" * 20_000})],  # an oversized awareness state
    [b"\x01"],  # awareness with nothing after the type
    [b"\x07\x00"],  # an unknown message type
]


def test_regression_corpus() -> None:
    for inputs in REGRESSIONS:
        asyncio.run(asyncio.wait_for(scenario(inputs), timeout=30))
