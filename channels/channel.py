"""`LocalChannel`: one channel's local subscribers and ordered, gap-free delivery to them.

This is the synchronous core of the hub's fan-out; the hub (``channels/hub.py``) does the awaiting (broker
subscribe, history reads) and calls in here. Nothing in this file awaits, so each method runs atomically with
respect to publications arriving from the broker.

Delivery rules, per channel:

- The channel knows the position it has delivered up to. A publication with the next offset in the same epoch
  is encoded once (`channels.protocol.encode_event`) and enqueued to every live subscriber: O(1) per subscriber.
- A publication that skips ahead, or carries another epoch, is held in ``pending`` and the hub starts a sync:
  it reads history from the delivered position and feeds it to `apply_history`, then `drain_pending`. When
  history no longer reaches back, `reset` sends every subscriber a ``reload`` frame instead.
- A connection that subscribed with a ``since`` position is *recovering* until its missed publications were
  read from history: live publications are buffered for it (already encoded) and `finish_recovery` merges
  history and buffer by offset, so it gets every missed event exactly once and in order, then joins the live
  subscribers with no gap and no duplicate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from channels import metrics
from channels.broker import HistoryResult, Publication, StreamPosition
from channels.connection import Connection
from channels.presence_room import PresenceRoom
from channels.protocol import encode_event, encode_reload, encode_subscribed
from channels.replay import Replay


@dataclass(slots=True)
class Recovery:
    """Live frames buffered for a connection whose subscribe is still reading history."""

    buffer: list[tuple[int, str]] = field(default_factory=list)
    reset: bool = False


class LocalChannel:
    """Local state of one channel in one process. See the module docstring for the delivery rules."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.subscribers: set[Connection] = set()
        self.recovering: dict[Connection, Recovery] = {}
        # Connections holding this channel (live, recovering or waiting for setup); the broker subscription
        # lives while refs > 0.
        self.refs = 0
        self.presence = False
        self.presence_room: PresenceRoom | None = None  # set when the channel has presence
        self.offset = 0
        self.epoch = ""
        self.ready = False
        self.syncing = False
        self.pending: list[Publication] = []
        # The last history read, shared by the subscribers resuming while nothing new is delivered (the hub's).
        self.replay: Replay | None = None
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    @property
    def position(self) -> StreamPosition:
        """The position delivered to live subscribers."""
        return StreamPosition(self.offset, self.epoch)

    def start_at(self, position: StreamPosition) -> bool:
        """Mark the channel ready at ``position`` (after the broker subscription is active).

        Returns:
            True if publications held meanwhile show a gap, so the hub must sync from history.
        """
        self.offset, self.epoch = position.offset, position.epoch
        self.ready = True
        return self.drain_pending()

    def accept(self, pub: Publication) -> bool:
        """Take a live publication from the broker.

        Returns:
            True when it cannot be delivered yet (gap or new epoch) and the hub must sync from history.
        """
        if not self.ready or self.syncing:
            self.pending.append(pub)
            return False
        if pub.epoch == self.epoch:
            if pub.offset == self.offset + 1:
                self._deliver(pub)
                return False
            if pub.offset <= self.offset:
                return False
        self.pending.append(pub)
        return True

    def apply_history(self, publications: list[Publication]) -> None:
        """Deliver publications read from history that continue the delivered position; skip the rest."""
        for pub in publications:
            if pub.epoch == self.epoch and pub.offset == self.offset + 1:
                self._deliver(pub)

    def drain_pending(self) -> bool:
        """Deliver held publications that now continue the position; drop stale ones.

        Returns:
            True if a gap remains (the rest stays pending and the hub must sync again).
        """
        pending, self.pending = self.pending, []
        for index, pub in enumerate(pending):
            if pub.epoch != self.epoch or pub.offset <= self.offset:
                continue
            if pub.offset == self.offset + 1:
                self._deliver(pub)
                continue
            self.pending = pending[index:]
            return True
        return False

    def reset(self, position: StreamPosition) -> None:
        """History cannot fill the gap: jump to ``position`` and tell every subscriber to reload."""
        self.offset, self.epoch = position.offset, position.epoch
        self.replay = None
        frame = encode_reload(self.name, position)
        for conn in self.subscribers:
            conn.enqueue(frame)
        for recovery in self.recovering.values():
            recovery.reset = True
            recovery.buffer.clear()
        waiters, self._waiters = self._waiters, []
        for _, future in waiters:
            if not future.done():
                future.set_result(None)

    def wait_for(self, offset: int) -> asyncio.Future[None]:
        """A future resolved once the delivered offset reaches ``offset``."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.offset >= offset:
            future.set_result(None)
        else:
            self._waiters.append((offset, future))
        return future

    def begin_recovery(self, conn: Connection) -> None:
        """Start buffering live frames for ``conn`` until `finish_recovery`."""
        self.recovering[conn] = Recovery()

    def finish_recovery(
        self,
        conn: Connection,
        frame_id: int | None,
        since: StreamPosition | None,
        history: HistoryResult | None,
        frames: Mapping[int, str] | None = None,
    ) -> list[str]:
        """Make ``conn`` a live subscriber and return the frames it must get first, in order.

        Without ``since``: just the ``subscribed`` reply at the current position. With ``since``: ``subscribed``
        with ``recovered=true`` followed by every event after ``since`` up to the current position exactly once,
        or ``reload=true`` when that range cannot be rebuilt from history and the buffer.

        ``frames``: ``history``'s events already encoded, by offset (a `Replay`'s, shared by the subscribers it
        serves); encoded here when not given.
        """
        recovery = self.recovering.pop(conn, None) or Recovery()
        self.subscribers.add(conn)
        position = self.position
        if since is None:
            return [encode_subscribed(frame_id, self.name, position, recovered=False, reload=False)]
        events = self._recovered_events(since, history, recovery, frames)
        if events is None:
            return [encode_subscribed(frame_id, self.name, position, recovered=False, reload=True)]
        return [encode_subscribed(frame_id, self.name, position, recovered=True, reload=False), *events]

    def _recovered_events(
        self,
        since: StreamPosition,
        history: HistoryResult | None,
        recovery: Recovery,
        frames: Mapping[int, str] | None,
    ) -> list[str] | None:
        if recovery.reset or history is None or not history.recoverable or since.epoch != self.epoch:
            return None
        if since.offset > self.offset:
            return None
        if frames is None:
            frames = {
                pub.offset: encode_event(pub)
                for pub in history.publications
                if pub.epoch == self.epoch and since.offset < pub.offset <= self.offset
            }
        buffered = dict(recovery.buffer) if recovery.buffer else {}
        events: list[str] = []
        for offset in range(since.offset + 1, self.offset + 1):
            event = buffered.get(offset) or frames.get(offset)
            if event is None:
                return None
            events.append(event)
        return events

    def remove(self, conn: Connection) -> None:
        """Forget ``conn`` (live or recovering). Reference counting is the hub's."""
        self.subscribers.discard(conn)
        self.recovering.pop(conn, None)

    def _deliver(self, pub: Publication) -> None:
        started = time.perf_counter()
        text = encode_event(pub)
        self.offset = pub.offset
        self.replay = None  # serves no one now: whoever resumes next needs this event too
        for conn in self.subscribers:
            conn.enqueue(text)
        metrics.DELIVERED.inc(len(self.subscribers))
        metrics.FANOUT_SECONDS.observe(time.perf_counter() - started)
        if self.recovering:
            for recovery in self.recovering.values():
                recovery.buffer.append((pub.offset, text))
        if self._waiters:
            self._wake_waiters()

    def _wake_waiters(self) -> None:
        still: list[tuple[int, asyncio.Future[None]]] = []
        for offset, future in self._waiters:
            if future.done():
                continue
            if offset <= self.offset:
                future.set_result(None)
            else:
                still.append((offset, future))
        self._waiters = still
