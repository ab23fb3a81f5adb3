"""Who is on a channel right now: the `PresenceManager` seam and its in-process implementation.

Presence is kept apart from the `Broker` (as centrifuge keeps ``PresenceManager`` apart): it is a set of entries,
not a stream. Every entry belongs to the node that holds its socket, and lives as long as that node's *lease*: a
node registers a lease under a fresh id (`PresenceManager.register`) and renews it every ttl/3
(`PresenceManager.renew`), one call however many sockets it holds, so the store's work for liveness grows with
nodes, not sockets. When a node dies its lease lapses: its entries stop being listed at once, and the next node to
look (`PresenceManager.claim_dead`, every node's heartbeat) takes them out and tells their channels they ``left``:
nobody else says goodbye for a dead node. A node whose lease lapsed while it was alive (stalled, or cut off from
the store) does not renew it: it registers a new id and adds its entries again (`PresenceManager.add_many`), and
the entries already claimed are announced ``joined`` again. ``channels/backends/redis_presence.py`` is the shared
implementation.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

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


Claimed = tuple[str, PresenceInfo]
"""An entry `PresenceManager.claim_dead` took out: its channel and the entry (the caller announces ``left``)."""


class PresenceManager(Protocol):
    """Presence entries per channel, each owned by a node's lease, shared by every node using the same backend.

    Guarantees: `list` returns the entries whose node's lease holds; `add` for an existing ``client_id`` replaces
    the entry (and its owner). The entries of a lapsed lease are returned by exactly one `claim_dead` call,
    whichever node makes it, unless they are added (under a live lease) or removed first. A lease lapses
    ``ttl_seconds`` after its last `register` or `renew`, and a lapsed lease is never renewed.
    """

    async def register(self, node: str, ttl_seconds: float) -> None:
        """Start the lease of ``node`` (a new, unique id): its entries are listed until ``ttl_seconds`` pass
        without a `renew`.

        Raises:
            BrokerUnavailable: the backing store could not be reached.
        """

    async def renew(self, node: str, ttl_seconds: float) -> bool:
        """Extend ``node``'s lease to ``ttl_seconds`` from now: one store call, however many entries it owns.

        Returns:
            False, extending nothing, when the lease had lapsed (or was never registered): its entries may be
            claimed as dead already. The node then registers a new id and adds its entries again (`add_many`).

        Raises:
            BrokerUnavailable: the backing store could not be reached.
        """

    async def add(self, channel: str, info: PresenceInfo, node: str) -> bool:
        """Add or replace ``info`` on ``channel``, owned by ``node``'s lease.

        Returns:
            True when the channel did not hold the entry (it was never there, removed, or claimed as dead: the
            channel was told it left): the caller announces ``joined``. False when it replaced one (an update, or
            an entry of a lapsed lease not yet claimed, which nobody was told had left).

        Raises:
            BrokerUnavailable: the backing store could not be reached.
        """

    async def add_many(
        self, entries: Sequence[tuple[str, PresenceInfo]], node: str
    ) -> builtins.list[bool | BrokerUnavailable]:
        """`add` every ``(channel, info)`` of ``entries`` (a node taking its entries back under a new lease), in as
        few store calls as the store allows: one per shard for a batch of moderate size, not one per entry.

        Returns:
            One result per entry, in order: what `add` would return for it or, for an entry the store could not
            add, the `BrokerUnavailable` saying why. A failure affects only the entries it reached (those of one
            shard, one call or one channel): the others are added.

        Raises:
            Nothing for a store failure: it is in the results.
        """

    async def remove(self, channel: str, client_id: str) -> None:
        """Remove ``client_id``'s entry from ``channel`` (no-op if absent): it is not claimed.

        Raises:
            BrokerUnavailable: the backing store could not be reached.
        """

    async def claim_dead(self) -> builtins.list[Claimed]:
        """Take out the entries of every lapsed lease and forget the lease (the caller announces ``left`` for
        each entry). Atomic per channel: with several nodes claiming at once, each entry goes to one of them.

        Raises:
            BrokerUnavailable: the backing store could not be reached (what was claimed before is not returned
            twice: the next claim goes on with the rest).
        """

    async def list(self, channel: str) -> builtins.list[PresenceInfo]:
        """Return the entries on ``channel`` whose node's lease holds (any order).

        Raises:
            BrokerUnavailable: the backing store could not be reached.
        """

    async def close(self) -> None:
        """Release resources. Entries are left to their leases."""


class MemoryPresence:
    """A `PresenceManager` for one process (hubs sharing it play nodes sharing a store)."""

    def __init__(self) -> None:
        self._channels: dict[str, dict[str, tuple[str, PresenceInfo]]] = {}  # channel -> client -> (node, info)
        self._leases: dict[str, float] = {}  # node -> when its lease lapses (monotonic)
        self._rooms: dict[str, set[str]] = {}  # node -> the channels it may own entries on

    def _live(self, node: str, now: float) -> bool:
        return self._leases.get(node, -1.0) > now

    async def register(self, node: str, ttl_seconds: float) -> None:
        self._leases[node] = time.monotonic() + ttl_seconds

    async def renew(self, node: str, ttl_seconds: float) -> bool:
        now = time.monotonic()
        if not self._live(node, now):
            return False
        self._leases[node] = now + ttl_seconds
        return True

    async def add(self, channel: str, info: PresenceInfo, node: str) -> bool:
        entries = self._channels.setdefault(channel, {})
        new = info.client_id not in entries
        entries[info.client_id] = (node, info)
        self._rooms.setdefault(node, set()).add(channel)
        return new

    async def add_many(
        self, entries: Sequence[tuple[str, PresenceInfo]], node: str
    ) -> builtins.list[bool | BrokerUnavailable]:
        return [await self.add(channel, info, node) for channel, info in entries]

    async def remove(self, channel: str, client_id: str) -> None:
        entries = self._channels.get(channel, {})
        owner = entries.pop(client_id, None)
        if not entries:
            self._channels.pop(channel, None)
        if owner is not None and not any(node == owner[0] for node, _ in entries.values()):
            self._rooms.get(owner[0], set()).discard(channel)

    async def list(self, channel: str) -> builtins.list[PresenceInfo]:
        now = time.monotonic()
        return [info for node, info in self._channels.get(channel, {}).values() if self._live(node, now)]

    async def claim_dead(self) -> builtins.list[Claimed]:
        now = time.monotonic()
        claimed: builtins.list[Claimed] = []
        for node in [node for node, lapses_at in self._leases.items() if lapses_at <= now]:
            del self._leases[node]
            for channel in self._rooms.pop(node, set()):
                entries = self._channels.get(channel, {})
                for client_id in [c for c, (owner, _) in entries.items() if owner == node]:
                    claimed.append((channel, entries.pop(client_id)[1]))
                if not entries:
                    self._channels.pop(channel, None)
        return claimed

    async def close(self) -> None:
        self._channels.clear()
        self._leases.clear()
        self._rooms.clear()
