"""A room's awareness (who is here, their name, colour and cursor): merged from local peers and other nodes, and
fanned out at most once per interval, so a room where everyone moves their cursor costs one message per interval
per peer rather than one per cursor move per peer.

Rules follow y-protocols' awareness: a state replaces the one held for its client id only with a higher clock (or
the same clock, to remove it). Clients renew their state every 15 s; a state not renewed for `ttl` seconds is
removed (its client's node died, or it vanished without a goodbye). A peer that leaves takes its states with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from crdt.protocol import AwarenessEntry, encode_awareness

if TYPE_CHECKING:
    from crdt.transport import Peer

_NULL = "null"


# What one peer may hold in a room's awareness: a y-websocket client announces one client id per document, with a
# small JSON state (name, colour, cursor). Past these, entries are ignored, so a hostile peer cannot grow the table.
MAX_IDS_PER_PEER = 8
MAX_STATE_CHARS = 16 * 1024


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
        self._seen: dict[int, float] = {}
        self._changed: dict[int, AwarenessEntry] = {}
        self._changed_local: dict[int, AwarenessEntry] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._last_flush = -1e9

    def current(self) -> list[AwarenessEntry]:
        """Every present client's state (for a newcomer or a query-awareness)."""
        return [AwarenessEntry(cid, clock, state) for cid, (clock, state) in self.states.items() if state != _NULL]

    def apply(self, entries: tuple[AwarenessEntry, ...] | list[AwarenessEntry], peer: Peer | None) -> None:
        """Merge ``entries`` sent by ``peer`` (None: relayed from another node)."""
        now = asyncio.get_running_loop().time()
        for entry in entries:
            if peer is not None and not self._may_hold(peer, entry):
                continue
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
                else:
                    peer.awareness_ids.add(entry.client_id)
                self._changed_local[entry.client_id] = entry
            self._changed[entry.client_id] = entry
        self._schedule()

    @staticmethod
    def _may_hold(peer: Peer, entry: AwarenessEntry) -> bool:
        if len(entry.state) > MAX_STATE_CHARS:
            return False
        return entry.removed or entry.client_id in peer.awareness_ids or len(peer.awareness_ids) < MAX_IDS_PER_PEER

    def remove(self, client_ids: set[int] | list[int], *, local: bool) -> None:
        """Remove the states of ``client_ids`` (a peer left, or they expired), telling everyone."""
        gone = []
        for client_id in client_ids:
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
