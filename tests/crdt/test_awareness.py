"""Awareness in a room: each client id belongs to the peer that announced it, and a peer's authenticated identity is
bound into every state it sends, whatever name it claims."""

from __future__ import annotations

import json
from typing import Any

from crdt import protocol as p
from crdt.awareness import bind_identity
from crdt.manager import RoomManager
from tests.crdt.kit import SimClient

ANNA = {"name": "Anna Customer", "id": 11, "role": "customer"}
BOSS = {"name": "Boss Staff", "id": 1, "role": "staff"}


def seen(client: SimClient) -> dict[int, Any]:
    """Each client id's latest state as ``client`` applied them (None: removed)."""
    states: dict[int, tuple[int, Any]] = {}
    for message in client.received:
        if isinstance(message, p.Awareness):
            for entry in message.entries:
                if entry.client_id not in states or entry.clock >= states[entry.client_id][0]:
                    states[entry.client_id] = (entry.clock, json.loads(entry.state))
    return {client_id: state for client_id, (_, state) in states.items()}


def announce(client: SimClient, client_id: int, clock: int, state: dict[str, Any] | None) -> None:
    client.send(p.encode_awareness([p.AwarenessEntry(client_id, clock, json.dumps(state))]))


async def answered(client: SimClient) -> dict[int, Any]:
    """Who the room holds once it handled everything ``client`` sent so far (what a query-awareness answers).

    A peer's messages are handled in order, so once its sync step 1 is answered, all it sent before was.
    """
    before = sum(isinstance(m, p.SyncStep2) for m in client.received)
    client.send(p.encode_sync_step1(client.doc.get_state()))
    await client.wait_for(lambda: sum(isinstance(m, p.SyncStep2) for m in client.received) > before)
    return {e.client_id: json.loads(e.state) for e in client.manager.rooms[client.note_id].awareness.current()}


async def test_a_peer_is_shown_as_who_it_authenticated_as_whatever_it_claims(manager: RoomManager) -> None:
    anna = SimClient(manager, 1, identity=ANNA).connect()
    other = SimClient(manager, 1, identity=BOSS).connect()
    await anna.wait_for(lambda: anna.synced)
    await other.wait_for(lambda: other.synced)
    forged = {**BOSS, "color": "#1f6feb", "colorLight": "red; background:url(x)"}
    announce(anna, 500, 1, {"user": forged, "cursor": {"index": 3}})
    await other.wait_for(lambda: 500 in seen(other))
    assert seen(other)[500] == {"user": {**ANNA, "color": "#1f6feb"}, "cursor": {"index": 3}}
    # No user field at all: the identity is added. A state that is not an object is ignored.
    announce(anna, 500, 2, {"cursor": None})
    announce(anna, 501, 1, ["not", "an", "object"])  # type: ignore[arg-type]
    assert (await answered(anna)) == {500: {"cursor": None, "user": ANNA}}
    await other.wait_for(lambda: seen(other)[500] == {"cursor": None, "user": ANNA})


async def test_a_peer_cannot_set_or_remove_another_clients_state(manager: RoomManager) -> None:
    owner = SimClient(manager, 2, identity=BOSS).connect()
    intruder = SimClient(manager, 2, identity=ANNA).connect()
    await owner.wait_for(lambda: owner.synced)
    await intruder.wait_for(lambda: intruder.synced)
    announce(owner, 77, 1, {"user": {"name": "Boss Staff", "color": "#00f"}})
    await intruder.wait_for(lambda: 77 in seen(intruder))
    boss_state = seen(intruder)[77]
    # Higher clocks, a removal, and an echo of the owner's own state (what stock clients do): none take.
    announce(intruder, 77, 5, {"user": {"name": "Boss Staff"}, "cursor": {"index": 0}})
    announce(intruder, 77, 6, None)
    intruder.send(p.encode_awareness([p.AwarenessEntry(77, 1, json.dumps(boss_state))]))
    assert (await answered(intruder)) == {77: boss_state}
    assert (await answered(owner)) == {77: boss_state}
    assert intruder.transport.closed is None  # echoes are ignored, not punished
    # Another node cannot overwrite it either: a relayed entry for a local peer's client id is dropped.
    room = manager.rooms[2]
    room.awareness.apply([p.AwarenessEntry(77, 9, json.dumps({"user": {"name": "X"}}))], None)
    assert json.loads(room.awareness.states[77][1]) == boss_state
    # The owner itself still updates and removes it; once gone, the id is free.
    announce(owner, 77, 2, None)
    await intruder.wait_for(lambda: seen(intruder).get(77, 1) is None)
    announce(intruder, 77, 3, {"user": {}})
    assert (await answered(owner)) == {77: {"user": ANNA}}


def test_bind_identity_keeps_only_hex_colours_and_needs_an_object() -> None:
    state = json.dumps({"user": {"name": "X", "color": "#abc", "colorLight": "#aabbcc33", "avatar": "u"}, "k": 1})
    assert json.loads(bind_identity(state, ANNA) or "") == {
        "user": {**ANNA, "color": "#abc", "colorLight": "#aabbcc33"},
        "k": 1,
    }
    assert json.loads(bind_identity(json.dumps({"user": "Boss"}), ANNA) or "") == {"user": ANNA}
    assert bind_identity("3", ANNA) is None
    assert bind_identity("[]", ANNA) is None
