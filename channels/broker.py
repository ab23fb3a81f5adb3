"""The `Broker` seam: ordered, recoverable publication streams shared by every node.

A broker owns three things per channel: a strictly increasing offset, an epoch (a random string naming one
incarnation of the channel's history; when history is lost the epoch changes, so a client's old offset can never
be mistaken for a new one) and a bounded history. The hub does local fan-out and reference counting; a broker is
only asked to subscribe once per channel per process (see ``channels/hub.py``).

Implementations: ``channels/backends/memory.py`` (one process) and ``channels/backends/redis.py`` (many nodes).
Both are run through the same contract tests in ``tests/channels/test_broker_contract.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

IDEMPOTENCY_TTL_SECONDS = 300.0
"""How long a broker remembers an idempotency key (`Broker.publish`): well past the outbox's adoption of a dead
node's rows (``server/live/outbox.py``: 15 s without a stamp, then the next poll), so a row republished by the node that
adopts it is still recognised."""


class BrokerUnavailable(Exception):
    """The broker's backing store cannot be reached; the operation was not (or not certainly) applied."""


@dataclass(frozen=True, slots=True)
class StreamPosition:
    """Where a channel's stream stands: the offset of its last publication and the epoch of its history."""

    offset: int
    epoch: str


@dataclass(frozen=True, slots=True)
class Publication:
    """One message on a channel.

    ``data`` is the UTF-8 encoding of a JSON object, compact (no raw newline bytes), so it can be spliced into a
    frame without being parsed again. Ephemeral publications (published with ``history=None``) carry
    ``offset == 0`` and ``epoch == ""``. ``ts`` is when the broker accepted the publication, in milliseconds since
    the Unix epoch by the broker's clock (Redis's ``TIME`` for the Redis broker), kept in history; 0 for ephemeral
    publications.
    """

    channel: str
    offset: int
    epoch: str
    data: bytes
    ts: int = 0


@dataclass(frozen=True, slots=True)
class HistoryOptions:
    """How much history a channel keeps: at most ``size`` publications, none older than ``ttl_seconds``."""

    size: int
    ttl_seconds: float


@dataclass(frozen=True, slots=True)
class HistoryResult:
    """An answer from `Broker.history`.

    ``publications`` are in offset order. ``position`` is the channel's position when history was read.
    ``recoverable`` is False when the caller's position cannot be continued from history (another epoch, or the
    next publication it needs has been trimmed); the caller must then reload its state from the source of truth.
    """

    publications: list[Publication]
    position: StreamPosition
    recoverable: bool


PublicationHandler = Callable[[Publication], None]
ReconnectHandler = Callable[[], Awaitable[None]]


class Broker(Protocol):
    """Ordered, recoverable pub/sub between nodes.

    Guarantees every implementation gives (checked by the contract tests):

    - Offsets on a channel start at 1 and grow by exactly 1 per `publish` within one epoch.
    - The publication handler is called at most once per publication, in offset order per channel, for channels
      this process subscribed to. Delivery is not guaranteed across a connection loss; after the broker
      reconnects it calls the reconnect handler so the caller can fill gaps with `history`.
    - The epoch of a channel is stable for as long as its history metadata lives.
    """

    async def start(self) -> None:
        """Open connections and start background readers. Idempotent."""

    async def close(self) -> None:
        """Stop background tasks and release connections. No handler is called after it returns."""

    def set_handler(self, handler: PublicationHandler) -> None:
        """Set the function called for every publication on subscribed channels (in offset order per channel).

        The handler runs in the broker's reader; it must not block and must not raise.
        """

    def set_reconnect_handler(self, handler: ReconnectHandler | None) -> None:
        """Set the coroutine function awaited after the broker re-established its connection and resubscribed.

        Publications may have been missed while disconnected; the handler should check positions and fill gaps.
        """

    async def publish(
        self, channel: str, data: bytes, history: HistoryOptions | None, *, idempotency_key: str | None = None
    ) -> StreamPosition:
        """Publish ``data`` (compact UTF-8 JSON object) on ``channel``.

        Atomically assigns the next offset, appends to history bounded by ``history.size`` and
        ``history.ttl_seconds``, and fans the publication out to every subscribed process. With
        ``history=None`` the publication is ephemeral: offset 0, empty epoch, not stored, not counted.

        ``idempotency_key`` makes a publish with history happen at most once per key and channel: when a
        publication with the same key was accepted on ``channel`` within the broker's idempotency window
        (`IDEMPOTENCY_TTL_SECONDS` unless configured), nothing is published, stored or counted, and the
        first publication's position is returned. The check and the publish are one atomic step, so two
        publishers racing with one key publish once. Ephemeral publishes ignore the key.

        Returns:
            The position of the new publication (or of the first one with the same ``idempotency_key``).

        Raises:
            BrokerUnavailable: the backing store could not be reached. The publication was applied at most once.
        """

    async def subscribe(self, channel: str) -> None:
        """Start receiving ``channel``'s publications in this process.

        When it returns the subscription is active: every publication made after it returns reaches the handler.
        Subscribing twice is harmless (the hub reference-counts, so it does not).

        Raises:
            BrokerUnavailable: the subscription could not be established.
        """

    async def unsubscribe(self, channel: str) -> None:
        """Stop receiving ``channel``'s publications in this process. Unknown channels are ignored."""

    async def has_subscribers(self, channel: str) -> bool:
        """Whether any process (this one included) is subscribed to ``channel`` now.

        Lets a publisher skip computing what nobody would receive. It may answer True when nobody is (never
        False when someone is subscribed).

        Raises:
            BrokerUnavailable: the backing store could not be reached.
        """

    async def history(self, channel: str, since: StreamPosition | None, limit: int) -> HistoryResult:
        """Read publications after ``since``.

        Args:
            channel: the channel.
            since: the last position the caller has seen; None to only ask for the current position.
            limit: at most this many publications are returned (the oldest ones after ``since``).

        Returns:
            Publications with ``offset > since.offset`` in order, and whether ``since`` is recoverable (same epoch
            and publication ``since.offset + 1`` still in history, or nothing missed at all).

        Raises:
            BrokerUnavailable: the backing store could not be reached.
        """

    async def position(self, channel: str) -> StreamPosition:
        """Return the channel's current position, creating its epoch if the channel is new.

        Raises:
            BrokerUnavailable: the backing store could not be reached.
        """


@dataclass(frozen=True, slots=True)
class Publishing:
    """One publication of a batch (`BatchPublisher.publish_batch`): always with history and an idempotency key."""

    channel: str
    data: bytes
    idempotency_key: str


@runtime_checkable
class BatchPublisher(Protocol):
    """A broker that can publish several publications in one round trip (the Redis broker on one Redis).

    Publications handed over together then reach every node together, so each node's hub fans them out in one
    event-loop turn and joins them into one message per socket, as one node's memory broker does.
    """

    async def publish_batch(self, items: Sequence[Publishing], history: HistoryOptions) -> list[StreamPosition | None]:
        """Publish ``items`` in order, each as `Broker.publish` with its idempotency key.

        Per channel, the publications made are a prefix of that channel's items: an item whose predecessor on
        its channel was not made is not made either, so a retry of the rest keeps the channel's order (items
        made already are dropped by their idempotency keys).

        Returns:
            Per item, its position (or that of the first publication with its key), or None if it was not made.

        Raises:
            BrokerUnavailable: the answer was lost; per channel, any prefix of its items may have been made.
        """
        ...


async def publish_one_by_one(
    broker: Broker, items: Sequence[Publishing], history: HistoryOptions
) -> list[StreamPosition | None]:
    """`BatchPublisher.publish_batch` for a broker without batches: one `Broker.publish` after another, stopping at
    the first that fails (the rest are None, so each channel's publications stay a prefix).

    Raises:
        BrokerUnavailable: the first publication failed (nothing was made).
    """
    positions: list[StreamPosition | None] = []
    for index, item in enumerate(items):
        try:
            key = item.idempotency_key
            positions.append(await broker.publish(item.channel, item.data, history, idempotency_key=key))
        except BrokerUnavailable:
            if not positions:
                raise
            return positions + [None] * (len(items) - index)
    return positions
