"""`HubPresence`: the hub's presence duties — join, leave, update, heartbeat — over a `PresenceManager`.

Entries are stored in the `PresenceManager` (shared between nodes), owned by this node's lease: the hub registers a
lease before its first entry and renews it every ttl/3 (`heartbeat`: one store call, however many sockets), so a
node that dies takes its entries with it after at most one ttl. Nobody says goodbye for a dead node, so the
heartbeat also claims the entries of lapsed leases (`PresenceManager.claim_dead`) and announces ``left`` for them:
each entry is claimed once on one node, so ``left`` goes out once, at most ttl + ttl/3 (+ one housekeeping
interval) after the node died. A node whose own lease lapsed while it lived (its heartbeats did not reach the
store in time) takes a new lease and adds every entry again in one batch (`PresenceManager.add_many`): those that
were claimed meanwhile, and so announced as left, are announced ``joined`` again.

Presence *changes* (``joined``/``left``/``updated``) are ephemeral: each is published without history on the
sibling broker channel ``<channel>#presence`` (``#`` cannot appear in a client-visible channel name, so the two
never collide) as a one-change ``presence`` frame (what protocol 1 sent to clients, so nodes of either version
understand each other during a rolling deploy). Every node with sockets on the channel, the publishing one too,
coalesces them in the channel's `channels.presence_room.PresenceRoom` and sends its sockets one ``presence_diff``
per room at most every ``flush_seconds`` (`flusher`): a room's frames grow with sockets x flushes, no longer with
sockets x changes. The first change after a quiet spell goes out at once; later ones wait for the window.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import uuid
from collections.abc import Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any

from channels.broker import Broker, BrokerUnavailable
from channels.connection import Connection, Subscription
from channels.loops import Clock, Loop
from channels.presence import PresenceInfo, PresenceManager
from channels.presence_room import Entry, PresenceRoom
from channels.protocol import encode_presence_event

if TYPE_CHECKING:
    from channels.channel import LocalChannel

logger = logging.getLogger(__name__)

PRESENCE_SUFFIX = "#presence"
# Announcements a heartbeat sends at once (``left`` for a dead node's entries, ``joined`` again after a lapse, which
# can be thousands). Well under the Redis client's connection pool (redis-py's asyncio default is 100 connections,
# shared with joins and leaves): at 200 calls in flight, a node with 150 sockets in a room failed a third of them
# every heartbeat with "Too many connections".
_HEARTBEAT_BATCH = 50

Describe = Callable[[Connection], PresenceInfo]
Held = tuple[Connection, Subscription, PresenceInfo]  # a socket's entry on one channel


def presence_channel(channel: str) -> str:
    """The broker channel carrying ``channel``'s presence events."""
    return channel + PRESENCE_SUFFIX


def default_describe(conn: Connection) -> PresenceInfo:
    """Presence entry for a connection when the server gives no ``describe``: the principal as user id."""
    return PresenceInfo(client_id=conn.id, user_id=str(conn.principal), name="", role="")


class HubPresence:
    """Presence bookkeeping for the hub's connections.

    Failures of the backing store are logged, never raised: presence is advisory, and the next heartbeat
    re-adds entries once the store is back.
    """

    def __init__(
        self,
        manager: PresenceManager,
        broker: Broker,
        ttl_seconds: float,
        describe: Describe,
        *,
        flush_seconds: float,
        clock: Clock | None = None,
    ) -> None:
        self.manager = manager
        self.ttl_seconds = ttl_seconds
        self.flush_seconds = flush_seconds
        self._broker = broker
        self._describe = describe
        self._dirty: dict[str, LocalChannel] = {}  # channels whose room has pending changes
        self._loads: dict[PresenceRoom, asyncio.Event] = {}
        # Idle until a change arrives (`changed` wakes it); then one pass per window while changes keep coming.
        self.flusher = Loop("tandem-presence-flush", self._flush, interval=math.inf, clock=clock)
        self._last_flush = -math.inf
        self._node = ""  # this node's lease, once registered: `_lease`
        self._leasing = asyncio.Lock()
        self._unadded: list[Held] = []  # entries a heartbeat failed to add again: the next one retries them

    # -- batched delivery --------------------------------------------------------------------------------

    def changed(self, ch: LocalChannel) -> None:
        """``ch``'s room has pending changes: flush it with the next window."""
        if not self._dirty:
            self.flusher.wake()
        self._dirty[ch.name] = ch

    async def _flush(self) -> float | None:
        now = self.flusher.clock.now()
        if now < self._last_flush + self.flush_seconds:
            return self._last_flush + self.flush_seconds - now
        self._last_flush = now
        dirty, self._dirty = self._dirty, {}
        for name, ch in dirty.items():
            room = ch.presence_room
            if room is None:
                continue
            if not room.loaded:
                self._dirty[name] = ch  # sent once the room is loaded
                continue
            frame = room.flush()
            if frame is not None:
                for conn in ch.subscribers:
                    conn.enqueue(frame)
        return self.flush_seconds if self._dirty else None

    async def ready(self, ch: LocalChannel) -> PresenceRoom:
        """``ch``'s room, loaded from the store first if this node has not yet (one read however many wait).

        Raises:
            BrokerUnavailable: the store could not be reached.
        """
        room = ch.presence_room
        assert room is not None, f"{ch.name} has no presence"
        while not room.loaded:
            loading = self._loads.get(room)
            if loading is not None:
                await loading.wait()
                continue  # loaded, or the load failed: then this caller tries
            self._loads[room] = asyncio.Event()
            try:
                await self._load(ch, room)
            finally:
                self._loads.pop(room).set()
        return room

    async def reload(self, channels: Iterable[LocalChannel]) -> None:
        """Read the loaded rooms of ``channels`` again and send what differs (changes may have been lost while
        the broker was disconnected)."""
        for ch in channels:
            room = ch.presence_room
            if room is None or not room.loaded:
                continue
            try:
                await self._load(ch, room)
            except BrokerUnavailable:
                logger.warning("presence of %s not reloaded after a broker reconnect", ch.name, exc_info=True)

    async def _load(self, ch: LocalChannel, room: PresenceRoom) -> None:
        entries: list[Entry] = [info.to_json() for info in await self.manager.list(ch.name)]
        room.load(entries)
        if room.pending:
            self.changed(ch)

    # -- entries ---------------------------------------------------------------------------------------------

    async def join(self, conn: Connection, sub: Subscription) -> None:
        """Add ``conn``'s entry on ``sub.channel`` and announce ``joined``."""
        info = self._describe(conn)
        if info.client_id != conn.id:
            info = dataclasses.replace(info, client_id=conn.id)
        sub.presence = info
        await self._store_and_announce(sub.channel, info, "joined")

    async def update(self, sub: Subscription, data: dict[str, Any]) -> None:
        """Replace the entry's client-set ``data`` and announce ``updated``."""
        if sub.presence is None:
            return
        info = dataclasses.replace(sub.presence, data=data)
        sub.presence = info
        await self._store_and_announce(sub.channel, info, "updated")

    async def leave(self, channel: str, info: PresenceInfo) -> None:
        """Remove the entry and announce ``left``."""
        try:
            await self.manager.remove(channel, info.client_id)
            await self._announce(channel, info, "left")
        except BrokerUnavailable:
            logger.warning(
                "presence leave on %s not recorded; entry goes with the node's lease", channel, exc_info=True
            )

    async def _lease(self) -> str:
        """This node's lease id, registered first if it has none (the first entry, or after a lapse)."""
        if self._node:
            return self._node
        async with self._leasing:
            if not self._node:
                node = uuid.uuid4().hex
                await self.manager.register(node, self.ttl_seconds)
                self._node = node
        return self._node

    async def heartbeat(self, connections: Iterable[Connection]) -> None:
        """Renew this node's lease (one store call), and announce ``left`` for the entries of lapsed leases it
        claimed (those of dead nodes).

        Each dead entry is claimed once however many nodes heartbeat, so ``left`` is announced once. When this
        node's own lease had lapsed, it takes a new one and adds its entries again (`_add_again`). A store failure
        is logged and left to the next heartbeat, ttl/3 later, as are the entries it failed to add again.
        """
        try:
            if self._node and not await self.manager.renew(self._node, self.ttl_seconds):
                logger.warning("presence lease %s lapsed: entries added again under a new lease", self._node)
                self._node = ""
                self._unadded = [
                    (conn, sub, sub.presence)
                    for conn in list(connections)
                    for sub in list(conn.subscriptions.values())
                    if sub.presence is not None and not conn.closed
                ]
            if self._unadded:
                await self._add_again()
            claimed = await self.manager.claim_dead()
        except BrokerUnavailable:
            logger.warning("presence heartbeat failed", exc_info=True)
            return
        await self._gathered([self._announce_claimed(channel, info) for channel, info in claimed])

    async def _add_again(self) -> None:
        """Add the entries of `_unadded` still held by their sockets, in one batch under this node's lease (a new
        one after a lapse), and announce ``joined`` for those the store no longer had (claimed as dead, so
        announced as left). Those the store fails to add stay for the next heartbeat."""
        node = await self._lease()
        held = [(conn, sub, info) for conn, sub, info in self._unadded if sub.presence is info and not conn.closed]
        self._unadded = []
        if not held:
            return
        results = await self.manager.add_many([(sub.channel, info) for _, sub, info in held], node)
        self._unadded = [
            entry for entry, result in zip(held, results, strict=True) if isinstance(result, BrokerUnavailable)
        ]
        if self._unadded:
            logger.warning(
                "presence: %d of %d entries not added again",
                len(self._unadded),
                len(held),
                exc_info=next(r for r in results if isinstance(r, BrokerUnavailable)),
            )
        await self._gathered(
            [
                self._after_readd(conn, sub, info)
                for (conn, sub, info), new in zip(held, results, strict=True)
                if new is True
            ]
        )

    @staticmethod
    async def _gathered(announcements: list[Coroutine[Any, Any, None]]) -> None:
        for start in range(0, len(announcements), _HEARTBEAT_BATCH):
            await asyncio.gather(*announcements[start : start + _HEARTBEAT_BATCH])

    async def _after_readd(self, conn: Connection, sub: Subscription, info: PresenceInfo) -> None:
        try:
            if sub.presence is info and not conn.closed:
                await self._announce(sub.channel, info, "joined")
            else:  # its `leave` ran while the entry was added again: take it out again
                await self.manager.remove(sub.channel, info.client_id)
        except BrokerUnavailable:
            logger.warning("presence of %s on %s not re-announced", info.client_id, sub.channel, exc_info=True)

    async def _announce_claimed(self, channel: str, info: PresenceInfo) -> None:
        try:
            await self._announce(channel, info, "left")
        except BrokerUnavailable:
            logger.warning("presence: %s's node died, its left on %s not announced", info.client_id, channel)

    async def _store_and_announce(self, channel: str, info: PresenceInfo, kind: str) -> None:
        try:
            await self.manager.add(channel, info, await self._lease())
            await self._announce(channel, info, kind)
        except BrokerUnavailable:
            logger.warning("presence %s on %s not recorded", kind, channel, exc_info=True)

    async def _announce(self, channel: str, info: PresenceInfo, kind: str) -> None:
        frame = encode_presence_event(channel, kind, info.to_json())
        await self._broker.publish(presence_channel(channel), frame.encode(), None)
