"""Who is on a channel right now: the `PresenceManager` seam and its in-process implementation.

Presence is kept apart from the `Broker` (as centrifuge keeps ``PresenceManager`` apart): it is a set of
expiring entries, not a stream. Each entry carries its own expiry; a live client's entry is refreshed every ttl/3
by its node's heartbeat, which hands the store all of the node's entries at once (`PresenceManager.refresh_many`:
a few calls per store shard, however many sockets), so the entries of a crashed node vanish by themselves once
their ttl passes. An expired entry is kept aside until one node claims it (`PresenceManager.claim_expired`, or the
claim every refresh makes on its channel) and tells the channel it ``left``: nobody else said goodbye for the dead
node. ``channels/backends/redis_presence.py`` is the shared implementation.
"""

from __future__ import annotations

import builtins
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

from channels.broker import BrokerUnavailable


@dataclass(frozen=True, slots=True)
class PresenceInfo:
    """One connected client on a channel.

    Attributes:
        client_id: the connection's id (one user may have several tabs, each its own entry).
        user_id: the user behind the connection.
        name: display name.
        role: the user's role as the server wants others to see it (e.g. ``staff``, ``customer``).
        data: small client-set JSON object (what they look at, whether they are typing).
    """

    client_id: str
    user_id: str
    name: str
    role: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The entry as a JSON-ready object (the shape used in ``presence`` frames)."""
        return {
            "client_id": self.client_id,
            "user_id": self.user_id,
            "name": self.name,
            "role": self.role,
            "data": self.data,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> PresenceInfo:
        """Inverse of `to_json`. Raises ``KeyError``/``TypeError`` on malformed input."""
        data = obj.get("data") or {}
        if not isinstance(data, dict):
            raise TypeError("presence data must be an object")
        return cls(str(obj["client_id"]), str(obj["user_id"]), str(obj["name"]), str(obj["role"]), data)


Refreshed: TypeAlias = tuple[bool, builtins.list[PresenceInfo]]
"""What one refresh returns: whether the caller announces ``joined`` (as `PresenceManager.add` returns), and the
expired entries of the channel it claimed (the caller announces ``left`` for each)."""


class PresenceManager(Protocol):
    """Expiring presence entries per channel, shared by every node using the same backend.

    Guarantees: `list` never returns an entry whose ttl has passed since its last `add`; `add` for an existing
    ``client_id`` replaces the entry and restarts its ttl (a heartbeat). An entry that expires is returned by
    exactly one `claim_expired` call, whichever node makes it, unless it is added or removed again first.
    """

    async def add(self, channel: str, info: PresenceInfo, ttl_seconds: float) -> bool:
        """Add or refresh ``info`` on ``channel``; it expires ``ttl_seconds`` from now unless added again.

        Returns:
            True when the channel did not hold the entry, or held it only as expired and already claimed (so the
            channel was told it left): the caller announces ``joined``. False for a refresh, including an entry
            that expired but was not claimed yet (it is taken back from the claimable ones).

        Raises:
            BrokerUnavailable: the backing store could not be reached.
        """

    async def refresh(
        self, channel: str, info: PresenceInfo, ttl_seconds: float
    ) -> tuple[bool, builtins.list[PresenceInfo]]:
        """`add`, then `claim_expired` on the same channel, in one round trip (one entry; the hub's heartbeat
        refreshes all of a node's entries with `refresh_many`).

        Returns:
            What `add` returns, and the expired entries this call claimed.

        Raises:
            BrokerUnavailable: the backing store could not be reached (neither happened).
        """

    async def refresh_many(
        self, entries: Sequence[tuple[str, PresenceInfo]], ttl_seconds: float
    ) -> builtins.list[Refreshed | BrokerUnavailable]:
        """`refresh` every ``(channel, info)`` of ``entries`` (a node's heartbeat), in as few store calls as the
        store allows: one per shard for a batch of moderate size, not one per entry.

        Per channel, the batch's entries are all stored first, then the channel's expired entries are claimed
        once: an entry of the batch that had expired but was not claimed yet is taken back, never claimed (and so
        never announced ``left`` only to be announced ``joined`` again by the same heartbeat).

        Args:
            entries: the entries to refresh; a ``client_id`` appears at most once per channel.
            ttl_seconds: each refreshed entry expires this long from now unless refreshed again.

        Returns:
            One result per entry, in order: what `refresh` would return for it, the claimed entries of a channel
            coming with that channel's first entry in the batch (its later entries claim nothing, unless the store
            splits a channel of very many entries over calls); or, for an
            entry the store could not refresh, the `BrokerUnavailable` saying why. A failure affects only the
            entries it reached (those of one shard, one call or one channel): the others are refreshed, so a
            partial outage does not let live entries on healthy shards expire.

        Raises:
            Nothing for a store failure: it is in the results.
        """

    async def remove(self, channel: str, client_id: str) -> None:
        """Remove ``client_id``'s entry from ``channel`` (no-op if absent), expired or not: it is not claimed.

        Raises:
            BrokerUnavailable: the backing store could not be reached.
        """

    async def claim_expired(self, channel: str) -> builtins.list[PresenceInfo]:
        """Take the entries of ``channel`` that expired and were not claimed yet (the caller announces ``left``).

        Each expired entry is returned once across every node sharing the store: the claim is atomic. Expired
        entries nobody claims are forgotten after a while (the store's retention, a minute by default).

        Raises:
            BrokerUnavailable: the backing store could not be reached.
        """

    async def list(self, channel: str) -> builtins.list[PresenceInfo]:
        """Return the unexpired entries on ``channel`` (any order).

        Raises:
            BrokerUnavailable: the backing store could not be reached.
        """

    async def close(self) -> None:
        """Release resources. Entries are left to expire."""


class MemoryPresence:
    """A `PresenceManager` for one process (hubs sharing it play nodes sharing a store). Expired entries are moved
    aside for `claim_expired` when the channel is next read, written or claimed; unclaimed ones are forgotten
    ``retention_seconds`` after they expired."""

    def __init__(self, *, retention_seconds: float = 60.0) -> None:
        self._channels: dict[str, dict[str, tuple[float, PresenceInfo]]] = {}
        self._expired: dict[str, dict[str, tuple[float, PresenceInfo]]] = {}  # channel -> client -> (forget at, info)
        # channel -> no entry of it expires, and none set aside is forgotten, before this time. Until then a
        # sweep has nothing to do: joining a room of N entries costs O(1), not a scan of all N (a room of 1,000
        # sockets connecting made 500,000 entry checks).
        self._due: dict[str, float] = {}
        self._retention = retention_seconds

    def _sweep(self, channel: str) -> dict[str, tuple[float, PresenceInfo]]:
        now = time.monotonic()
        if now < self._due.get(channel, math.inf):
            return self._channels.get(channel, {})
        entries = self._channels.get(channel, {})
        expired = [client_id for client_id, (expires_at, _) in entries.items() if expires_at <= now]
        if expired:
            aside = self._expired.setdefault(channel, {})
            for client_id in expired:
                aside[client_id] = (now + self._retention, entries.pop(client_id)[1])
        aside = self._expired.get(channel, {})
        for client_id in [c for c, (forget_at, _) in aside.items() if forget_at <= now]:
            del aside[client_id]
        if not aside:
            self._expired.pop(channel, None)
        if not entries:
            self._channels.pop(channel, None)
        due = min((t for t, _ in (*entries.values(), *aside.values())), default=math.inf)
        if math.isinf(due):
            self._due.pop(channel, None)
        else:
            self._due[channel] = due
        return entries

    async def add(self, channel: str, info: PresenceInfo, ttl_seconds: float) -> bool:
        entries = self._sweep(channel)
        unclaimed = self._expired.get(channel, {}).pop(info.client_id, None)
        new = info.client_id not in entries and unclaimed is None
        expires_at = time.monotonic() + ttl_seconds
        self._channels.setdefault(channel, entries)[info.client_id] = (expires_at, info)
        self._due[channel] = min(self._due.get(channel, math.inf), expires_at)
        return new

    async def refresh(
        self, channel: str, info: PresenceInfo, ttl_seconds: float
    ) -> tuple[bool, builtins.list[PresenceInfo]]:
        return await self.add(channel, info, ttl_seconds), await self.claim_expired(channel)

    async def refresh_many(
        self, entries: Sequence[tuple[str, PresenceInfo]], ttl_seconds: float
    ) -> builtins.list[Refreshed | BrokerUnavailable]:
        added = [await self.add(channel, info, ttl_seconds) for channel, info in entries]
        results: builtins.list[Refreshed | BrokerUnavailable] = [(new, []) for new in added]
        first: dict[str, int] = {}
        for index, (channel, _) in enumerate(entries):
            first.setdefault(channel, index)
        for channel, index in first.items():
            results[index] = (added[index], await self.claim_expired(channel))
        return results

    async def remove(self, channel: str, client_id: str) -> None:
        entries = self._sweep(channel)
        entries.pop(client_id, None)
        self._expired.get(channel, {}).pop(client_id, None)
        self._drop_if_empty(channel)

    async def list(self, channel: str) -> builtins.list[PresenceInfo]:
        return [info for _, info in self._sweep(channel).values()]

    async def claim_expired(self, channel: str) -> builtins.list[PresenceInfo]:
        self._sweep(channel)
        claimed = [info for _, info in self._expired.pop(channel, {}).values()]
        self._drop_if_empty(channel)
        return claimed

    def _drop_if_empty(self, channel: str) -> None:
        if not self._channels.get(channel):
            self._channels.pop(channel, None)
            if not self._expired.get(channel):
                self._expired.pop(channel, None)
                self._due.pop(channel, None)

    async def close(self) -> None:
        self._channels.clear()
        self._expired.clear()
        self._due.clear()
