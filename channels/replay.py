"""`Replay`: one read of a channel's history, shared by every subscriber resuming from it, each event encoded once.

After a reconnect storm thousands of sockets subscribe to the same channel with ``since`` positions that differ
little (most missed the same few events). Read per socket, history costs a broker round trip each and every missed
event is encoded again for every socket that missed it. A `Replay` is asked once and serves every subscriber of the
channel that resumes at or after its ``since`` while the channel delivers nothing new, as the live fan-out encodes an
event once for all its subscribers.

Why sharing keeps each subscriber's guarantee (``channels.channel``): a subscriber needs, from history, the events
after its ``since`` up to what the channel had delivered when it began recovering (later ones reach its recovery
buffer). A read asked from an earlier ``since`` while the channel stood at that same delivered position holds
exactly those, and reads in flight are shared only on the same condition.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from channels.broker import HistoryResult, StreamPosition
from channels.protocol import encode_event


class Replay:
    """A channel's history after ``since``, read (or being read) by ``read`` while the channel had delivered up to
    ``delivered``.

    Args:
        since: where the read starts.
        delivered: the channel's delivered position when the read was asked.
        read: the broker's history read (a task shared by everyone this replay serves; awaited shielded).
    """

    __slots__ = ("_frames", "delivered", "read", "since")

    def __init__(self, since: StreamPosition, delivered: StreamPosition, read: asyncio.Future[HistoryResult]) -> None:
        self.since = since
        self.delivered = delivered
        self.read = read
        self._frames: dict[int, str] | None = None
        read.add_done_callback(_retrieve)  # a failure reaches whoever awaits it, and is not logged if none does

    def serves(self, since: StreamPosition, delivered: StreamPosition) -> bool:
        """Whether this read holds every event a subscriber resuming from ``since`` needs from history, the channel
        having delivered up to ``delivered`` when that subscriber began recovering."""
        return (
            delivered == self.delivered
            and since.epoch == self.since.epoch == delivered.epoch
            and self.since.offset <= since.offset <= delivered.offset
            and not (self.read.done() and (self.read.cancelled() or self.read.exception() is not None))
        )

    async def history(self) -> HistoryResult:
        """The read's result (shared: one subscriber's cancellation does not cancel it for the others).

        Raises:
            BrokerUnavailable: the read failed (every subscriber it serves gets this).
        """
        if self.read.done():
            return self.read.result()
        return await asyncio.shield(self.read)

    def covers(self, since: StreamPosition) -> bool:
        """Whether the read (done) holds every event after ``since`` up to ``delivered``: else a subscriber resuming
        from a later ``since`` than the read's reads its own (the read may have stopped at the broker's limit)."""
        result = self.read.result()
        frames = self.frames()
        return result.recoverable and all(o in frames for o in range(since.offset + 1, self.delivered.offset + 1))

    def frames(self) -> Mapping[int, str]:
        """The read's events in ``since``'s epoch, each encoded once as an ``event`` frame, by offset. Call once the
        read is done."""
        if self._frames is None:
            epoch = self.since.epoch
            publications = self.read.result().publications
            self._frames = {pub.offset: encode_event(pub) for pub in publications if pub.epoch == epoch}
        return self._frames


def _retrieve(read: asyncio.Future[HistoryResult]) -> None:
    if not read.cancelled():
        read.exception()
