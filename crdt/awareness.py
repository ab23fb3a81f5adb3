"""A room's awareness (who is here, their name, colour and cursor): merged from local peers and other nodes, and
fanned out at most once per interval, so a room where everyone moves their cursor costs one message per interval
per peer rather than one per cursor move per peer.

Rules follow y-protocols' awareness: a state replaces the one held for its client id only with a higher clock (or
the same clock, to remove it). Clients renew their state every 15 s; a state not renewed for `ttl` seconds is
removed (its client's node died, or it vanished without a goodbye). A peer that leaves takes its states with it.

Tandem adds two: a client id belongs to the local peer that first announced it (while its state is present), and
only that peer may change or remove it; and a peer with an `identity` has it bound into every state it announces
(`bind_identity`), so the name, user id and role others see are the ones the server authenticated.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from crdt.protocol import AwarenessEntry, encode_awareness

if TYPE_CHECKING:
    from crdt.transport import Peer

_NULL = "null"


# The fields of a state's ``user`` a client may choose itself (the colours y-codemirror and y-prosemirror draw its
# cursor with); everything else in ``user`` is the server-bound identity. Only hex colours: they land in CSS.
CLIENT_USER_FIELDS = ("color", "colorLight")
_HEX_COLOUR = re.compile(r"#[0-9A-Fa-f]{3,8}")

# What one peer may hold in a room's awareness: a y-websocket client announces one client id per document, with a
# small JSON state (name, colour, cursor). Past these, entries are ignored, so a hostile peer cannot grow the table.
MAX_IDS_PER_PEER = 8
MAX_STATE_CHARS = 16 * 1024


def bind_identity(state: str, identity: Mapping[str, object]) -> str | None:
    """``state`` (an awareness state's JSON) with its ``user`` field replaced by ``identity``, keeping only the
    colours the client picked (`CLIENT_USER_FIELDS`); None when the state is not a JSON object.

    So whatever name, id or role a client claims, every other client sees the identity the server authenticated.
    """
    try:
        value = json.loads(state)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    claimed = value.get("user")
    user = dict(identity)
    if isinstance(claimed, dict):
        for key in CLIENT_USER_FIELDS:
            colour = claimed.get(key)
            if isinstance(colour, str) and _HEX_COLOUR.fullmatch(colour):
                user[key] = colour
    value["user"] = user
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class AwarenessTable:
    """Awareness states of one room.

    Args:
        interval: at most one fan-out per ``interval`` seconds (the first change goes out at once).
        fan_out: sends an encoded awareness message to every local peer.
        publish: relays an encoded awareness message to other nodes (changes made by local peers only).
        ttl: a state not renewed for this long is removed.
    """

    def __init__(
        self,
        interval: float,
        fan_out: Callable[[bytes], None],
        publish: Callable[[bytes], None] | None = None,
        ttl: float = 35.0,
    ) -> None:
        self.interval = interval
        self.ttl = ttl
        self._fan_out = fan_out
        self._publish = publish
        self.states: dict[int, tuple[int, str]] = {}
        self._owners: dict[int, Peer] = {}  # client id -> the local peer that announced it
        self._seen: dict[int, float] = {}
        self._changed: dict[int, AwarenessEntry] = {}
        self._changed_local: dict[int, AwarenessEntry] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._last_flush = -1e9

    def current(self) -> list[AwarenessEntry]:
        """Every present client's state (for a newcomer or a query-awareness)."""
        return [AwarenessEntry(cid, clock, state) for cid, (clock, state) in self.states.items() if state != _NULL]

    def apply(self, entries: tuple[AwarenessEntry, ...] | list[AwarenessEntry], peer: Peer | None) -> None:
        """Merge ``entries`` sent by ``peer`` (None: relayed from another node).

        A local peer's entries are admitted by `_admit`: it may only set or remove the client ids it owns, and its
        identity is bound into each state it sets. Entries it may not send are ignored, not refused: stock
        y-websocket clients echo every state they receive, their peers' included.
        """
        now = asyncio.get_running_loop().time()
        for entry in entries:
            if peer is not None:
                admitted = self._admit(peer, entry)
                if admitted is None:
                    continue
                entry = admitted
            elif entry.client_id in self._owners:
                continue  # a local peer's client id: only that peer speaks for it
            held = self.states.get(entry.client_id)
            if held is not None:
                clock, state = held
                if entry.clock < clock or (entry.clock == clock and (not entry.removed or state == _NULL)):
                    continue
            self.states[entry.client_id] = (entry.clock, entry.state)
            self._seen[entry.client_id] = now
            if peer is not None:
                if entry.removed:
                    peer.awareness_ids.discard(entry.client_id)
                    self._owners.pop(entry.client_id, None)
                else:
                    peer.awareness_ids.add(entry.client_id)
                    self._owners[entry.client_id] = peer
                self._changed_local[entry.client_id] = entry
            self._changed[entry.client_id] = entry
        self._schedule()

    def local(self) -> list[AwarenessEntry]:
        """The present states of this node's own peers (what another node that just opened the room lacks)."""
        return [AwarenessEntry(cid, *self.states[cid]) for cid in self._owners if self.states[cid][1] != _NULL]

    def _admit(self, peer: Peer, entry: AwarenessEntry) -> AwarenessEntry | None:
        """``entry`` as ``peer`` may send it (its identity bound), or None when it may not."""
        if len(entry.state) > MAX_STATE_CHARS:
            return None
        owner = self._owners.get(entry.client_id)
        if owner is not peer:
            if owner is not None or entry.removed:
                return None  # another local peer's id, or removing a state it does not own
            held = self.states.get(entry.client_id)
            if held is not None and held[1] != _NULL:
                return None  # present, announced through another node
            if len(peer.awareness_ids) >= MAX_IDS_PER_PEER:
                return None
        if entry.removed or peer.identity is None:
            return entry
        bound = bind_identity(entry.state, peer.identity)
        return None if bound is None else AwarenessEntry(entry.client_id, entry.clock, bound)

    def remove(self, client_ids: set[int] | list[int], *, local: bool) -> None:
        """Remove the states of ``client_ids`` (a peer left, or they expired), telling everyone."""
        gone = []
        for client_id in client_ids:
            self._owners.pop(client_id, None)
            held = self.states.get(client_id)
            if held is None or held[1] == _NULL:
                continue
            gone.append(AwarenessEntry(client_id, held[0] + 1, _NULL))
        if gone:
            self.apply(gone, None)
            if local:
                for entry in gone:
                    self._changed_local[entry.client_id] = entry

    def expire(self) -> None:
        """Remove states not renewed within ``ttl``, and forget removed ones after that long."""
        now = asyncio.get_running_loop().time()
        stale = [cid for cid, seen in self._seen.items() if now - seen > self.ttl]
        present = [cid for cid in stale if self.states[cid][1] != _NULL]
        for cid in stale:
            if self.states[cid][1] == _NULL:
                del self.states[cid], self._seen[cid]
        self.remove(present, local=False)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self) -> None:
        if self._timer is not None or not self._changed:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._last_flush + self.interval - loop.time())
        self._timer = loop.call_later(delay, self.flush)

    def flush(self) -> None:
        """Send what changed since the last flush (normally called by the throttle timer)."""
        self._timer = None
        self._last_flush = asyncio.get_running_loop().time()
        if self._changed:
            self._fan_out(encode_awareness(list(self._changed.values())))
            self._changed = {}
        if self._changed_local:
            if self._publish is not None:
                self._publish(encode_awareness(list(self._changed_local.values())))
            self._changed_local = {}
