"""`ChannelRegistry`: the process's `LocalChannel`s, reference-counted onto one broker subscription each.

The first local subscriber of a channel triggers a *setup* (broker subscribe, then read the position, in that
order so nothing published after the position is missed); later subscribers await the same setup. When the
last one leaves, the broker subscription is dropped; a new setup for the same name waits for that unsubscribe
first, so the broker always sees subscribe/unsubscribe in order.

Broker publications are routed here: `on_publication` hands them to the channel (presence changes, from
``<channel>#presence``, to the channel's `PresenceRoom`, and ``on_presence`` is told so the hub schedules a
flush), and when a channel reports a
gap it is *synced* — history is read from its delivered position (one sync task per channel, at most
``sync_concurrency`` history reads at once), then held publications are drained. After a broker reconnect every
channel is synced, which is how events published while the connection was down still reach subscribers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from channels import metrics
from channels.broker import Broker, BrokerUnavailable, Publication
from channels.channel import LocalChannel
from channels.hub_presence import PRESENCE_SUFFIX, presence_channel
from channels.presence_room import PresenceRoom

logger = logging.getLogger(__name__)


class ChannelRegistry:
    """Local channels by name, their broker subscriptions and gap filling.

    Guarantees: at most one broker subscription per channel name; a channel with a gap is synced until it has
    delivered everything history holds, or reset (``reload``) when history does not reach back.
    """

    def __init__(
        self,
        broker: Broker,
        *,
        recovery_limit: int,
        sync_concurrency: int,
        presence_enabled: Callable[[str], bool],
        on_presence: Callable[[LocalChannel], None],
    ) -> None:
        self._broker = broker
        self._on_presence = on_presence
        self._recovery_limit = recovery_limit
        self._presence_enabled = presence_enabled
        self._channels: dict[str, LocalChannel] = {}
        self._setups: dict[str, asyncio.Task[None]] = {}
        self._unsubscribing: dict[str, asyncio.Task[None]] = {}
        self._syncs: dict[str, asyncio.Task[None]] = {}
        self._resync: set[str] = set()
        self._sync_slots = asyncio.Semaphore(sync_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    def get(self, name: str) -> LocalChannel | None:
        """The local channel ``name`` if it has local subscribers."""
        return self._channels.get(name)

    def channels(self) -> list[LocalChannel]:
        """The channels with local subscribers now."""
        return list(self._channels.values())

    def __len__(self) -> int:
        return len(self._channels)

    async def acquire(self, name: str) -> LocalChannel:
        """Take a reference on channel ``name``, subscribing the broker if it is the first.

        Returns:
            The channel, ready (its position known). Pair with exactly one `release`.

        Raises:
            BrokerUnavailable: the broker subscription could not be set up (no reference is held then).
        """
        ch = self._channels.get(name)
        if ch is None:
            ch = LocalChannel(name)
            ch.presence = self._presence_enabled(name)
            if ch.presence:
                ch.presence_room = PresenceRoom(name)
            self._channels[name] = ch
            self._setups[name] = self._spawn(self._setup(ch))
        ch.refs += 1
        setup = self._setups.get(name)
        if setup is not None:
            try:
                await asyncio.shield(setup)
            except BaseException:
                self.release(ch)
                raise
        return ch

    def release(self, ch: LocalChannel) -> None:
        """Drop a reference; the last one unsubscribes the broker (in the background)."""
        ch.refs -= 1
        if ch.refs > 0 or self._channels.get(ch.name) is not ch:
            return
        del self._channels[ch.name]
        sync = self._syncs.pop(ch.name, None)
        if sync is not None:
            sync.cancel()
        self._unsubscribing[ch.name] = self._spawn(self._broker_unsubscribe(ch, self._setups.get(ch.name)))

    def on_publication(self, pub: Publication) -> None:
        """Route a broker publication to its channel (or its channel's presence room)."""
        metrics.RECEIVED.inc()
        ch = self._channels.get(pub.channel)
        if ch is not None:
            if ch.accept(pub):
                self.request_sync(ch)
            return
        if pub.channel.endswith(PRESENCE_SUFFIX):
            ch = self._channels.get(pub.channel[: -len(PRESENCE_SUFFIX)])
            if ch is not None and ch.presence_room is not None and ch.presence_room.receive(pub.data):
                self._on_presence(ch)

    async def on_broker_reconnect(self) -> None:
        """Sync every ready channel: publications may have been lost while the broker was disconnected."""
        for ch in list(self._channels.values()):
            if ch.ready:
                self.request_sync(ch)

    def request_sync(self, ch: LocalChannel) -> None:
        """Start filling ``ch`` from history (or re-run the running fill once more)."""
        if self._closing or self._channels.get(ch.name) is not ch:
            return
        if ch.name in self._syncs:
            self._resync.add(ch.name)
            return
        ch.syncing = True
        self._syncs[ch.name] = self._spawn(self._sync(ch))

    async def close(self) -> None:
        """Stop syncs and wait (bounded) for pending broker (un)subscribes."""
        self._closing = True
        for task in self._syncs.values():
            task.cancel()
        async with asyncio.timeout(10):
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _setup(self, ch: LocalChannel) -> None:
        try:
            previous = self._unsubscribing.get(ch.name)
            if previous is not None:
                await asyncio.gather(previous, return_exceptions=True)
            await self._broker.subscribe(ch.name)
            if ch.presence:
                await self._broker.subscribe(presence_channel(ch.name))
            position = await self._broker.position(ch.name)
        except BaseException:
            if self._channels.get(ch.name) is ch:
                del self._channels[ch.name]
                self._unsubscribing[ch.name] = self._spawn(self._broker_unsubscribe(ch, None))
            raise
        finally:
            if self._setups.get(ch.name) is asyncio.current_task():
                del self._setups[ch.name]
        if self._channels.get(ch.name) is ch and ch.start_at(position):
            self.request_sync(ch)

    async def _broker_unsubscribe(self, ch: LocalChannel, setup: asyncio.Task[None] | None) -> None:
        try:
            if setup is not None:
                await asyncio.gather(setup, return_exceptions=True)
            await self._broker.unsubscribe(ch.name)
            if ch.presence:
                await self._broker.unsubscribe(presence_channel(ch.name))
        finally:
            if self._unsubscribing.get(ch.name) is asyncio.current_task():
                del self._unsubscribing[ch.name]

    async def _sync(self, ch: LocalChannel) -> None:
        delay = 0.05
        try:
            while self._channels.get(ch.name) is ch:
                self._resync.discard(ch.name)
                try:
                    async with self._sync_slots:
                        result = await self._broker.history(ch.name, ch.position, self._recovery_limit)
                except BrokerUnavailable:
                    logger.warning("gap fill on %s: broker unavailable, retrying", ch.name)
                    await asyncio.sleep(delay)
                    delay = min(2.0, delay * 2)
                    continue
                if result.recoverable:
                    ch.apply_history(result.publications)
                    if result.publications and ch.offset < result.position.offset:
                        continue
                else:
                    logger.info("channel %s lost history after %s; subscribers reload", ch.name, ch.position)
                    ch.reset(result.position)
                if not ch.drain_pending() and ch.name not in self._resync:
                    return
        finally:
            ch.syncing = False
            if self._syncs.get(ch.name) is asyncio.current_task():
                del self._syncs[ch.name]

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        # Setup failures reach the subscribers awaiting them; anything else is a bug worth logging.
        if exc is not None and not isinstance(exc, BrokerUnavailable):
            logger.error("channel registry task failed", exc_info=exc)
