"""`MemoryBroker`: the `Broker` for a single process (development, tests, one-node deployments).

History is a per-channel deque bounded by size, entries carrying their own expiry time so the age bound is
checked on read. Handlers are called through ``loop.call_soon`` rather than inside `publish`, like a real
network broker would, so callers never see re-entrant delivery; FIFO scheduling keeps offset order.
Channel metadata (offset, epoch) lives as long as the broker: memory grows with the number of distinct channels.
Idempotency keys are kept per channel with their expiry, in arrival order, and dropped once expired on the next
publish, so they cost memory for one window only.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from dataclasses import dataclass, field

from channels.broker import (
    IDEMPOTENCY_TTL_SECONDS,
    HistoryOptions,
    HistoryResult,
    Publication,
    PublicationHandler,
    ReconnectHandler,
    StreamPosition,
)


@dataclass(slots=True)
class _ChannelHistory:
    epoch: str
    offset: int = 0
    # (expires_at monotonic seconds, publication), oldest first.
    entries: deque[tuple[float, Publication]] = field(default_factory=deque)

    def trim(self, size: int, now: float) -> None:
        while len(self.entries) > size:
            self.entries.popleft()
        while self.entries and self.entries[0][0] <= now:
            self.entries.popleft()


class MemoryBroker:
    """A `Broker` whose channels live in this process only. See `channels.broker.Broker` for guarantees."""

    def __init__(self, *, idempotency_ttl_seconds: float = IDEMPOTENCY_TTL_SECONDS) -> None:
        self._channels: dict[str, _ChannelHistory] = {}
        self._idempotency_ttl = idempotency_ttl_seconds
        # (channel, key) -> (expires_at monotonic seconds, position); insertion order is expiry order.
        self._seen: dict[tuple[str, str], tuple[float, StreamPosition]] = {}
        self._subscribed: set[str] = set()
        self._handler: PublicationHandler | None = None
        self._reconnect_handler: ReconnectHandler | None = None
        self._closed = False

    async def start(self) -> None:
        self._closed = False

    async def close(self) -> None:
        self._closed = True
        self._subscribed.clear()

    def set_handler(self, handler: PublicationHandler) -> None:
        self._handler = handler

    def set_reconnect_handler(self, handler: ReconnectHandler | None) -> None:
        # A process-local broker never loses its connection.
        self._reconnect_handler = handler

    def _channel(self, channel: str) -> _ChannelHistory:
        state = self._channels.get(channel)
        if state is None:
            state = _ChannelHistory(epoch=secrets.token_hex(4))
            self._channels[channel] = state
        return state

    async def publish(
        self, channel: str, data: bytes, history: HistoryOptions | None, *, idempotency_key: str | None = None
    ) -> StreamPosition:
        if history is None:
            pub = Publication(channel, 0, "", data)
            position = StreamPosition(0, "")
        else:
            now = time.monotonic()
            if idempotency_key is not None:
                self._forget_expired_keys(now)
                seen = self._seen.get((channel, idempotency_key))
                if seen is not None:
                    return seen[1]
            state = self._channel(channel)
            state.offset += 1
            pub = Publication(channel, state.offset, state.epoch, data, time.time_ns() // 1_000_000)
            state.entries.append((now + history.ttl_seconds, pub))
            state.trim(history.size, now)
            position = StreamPosition(state.offset, state.epoch)
            if idempotency_key is not None:
                self._seen[(channel, idempotency_key)] = (now + self._idempotency_ttl, position)
        if channel in self._subscribed:
            asyncio.get_running_loop().call_soon(self._deliver, pub)
        return position

    def _forget_expired_keys(self, now: float) -> None:
        while self._seen:
            key, (expires_at, _) = next(iter(self._seen.items()))
            if expires_at > now:
                return
            del self._seen[key]

    def _deliver(self, pub: Publication) -> None:
        if self._handler is not None and not self._closed and pub.channel in self._subscribed:
            self._handler(pub)

    async def subscribe(self, channel: str) -> None:
        self._subscribed.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._subscribed.discard(channel)

    async def has_subscribers(self, channel: str) -> bool:
        return channel in self._subscribed

    async def history(self, channel: str, since: StreamPosition | None, limit: int) -> HistoryResult:
        state = self._channel(channel)
        position = StreamPosition(state.offset, state.epoch)
        if since is None:
            return HistoryResult([], position, True)
        if since.epoch != state.epoch or since.offset > state.offset:
            return HistoryResult([], position, False)
        if since.offset == state.offset:
            return HistoryResult([], position, True)
        now = time.monotonic()
        live = [pub for expires_at, pub in state.entries if expires_at > now and pub.offset > since.offset]
        recoverable = bool(live) and live[0].offset == since.offset + 1
        return HistoryResult(live[:limit] if recoverable else [], position, recoverable)

    async def position(self, channel: str) -> StreamPosition:
        state = self._channel(channel)
        return StreamPosition(state.offset, state.epoch)
