"""Who is on a channel right now: the `PresenceManager` seam and its in-process implementation.

Presence is kept apart from the `Broker` (as centrifuge keeps ``PresenceManager`` apart): it is a set of
expiring entries, not a stream. Each entry carries its own expiry; a live client refreshes its entry by calling
`PresenceManager.add` again (the hub heartbeats every ttl/3), so the entries of a crashed node vanish by
themselves once their ttl passes. ``channels/backends/redis_presence.py`` is the shared implementation.
"""

from __future__ import annotations

import builtins
import time
from dataclasses import dataclass, field
from typing import Any, Protocol


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


class PresenceManager(Protocol):
    """Expiring presence entries per channel, shared by every node using the same backend.

    Guarantees: `list` never returns an entry whose ttl has passed since its last `add`; `add` for an existing
    ``client_id`` replaces the entry and restarts its ttl (a heartbeat).
    """

    async def add(self, channel: str, info: PresenceInfo, ttl_seconds: float) -> None:
        """Add or refresh ``info`` on ``channel``; it expires ``ttl_seconds`` from now unless added again.

        Raises:
            BrokerUnavailable: the backing store could not be reached.
        """

    async def remove(self, channel: str, client_id: str) -> None:
        """Remove ``client_id``'s entry from ``channel`` (no-op if absent).

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
    """A `PresenceManager` for one process. Expired entries are dropped when read or overwritten."""

    def __init__(self) -> None:
        self._channels: dict[str, dict[str, tuple[float, PresenceInfo]]] = {}

    async def add(self, channel: str, info: PresenceInfo, ttl_seconds: float) -> None:
        self._channels.setdefault(channel, {})[info.client_id] = (time.monotonic() + ttl_seconds, info)

    async def remove(self, channel: str, client_id: str) -> None:
        entries = self._channels.get(channel)
        if entries is not None:
            entries.pop(client_id, None)
            if not entries:
                del self._channels[channel]

    async def list(self, channel: str) -> builtins.list[PresenceInfo]:
        entries = self._channels.get(channel)
        if not entries:
            return []
        now = time.monotonic()
        expired = [client_id for client_id, (expires_at, _) in entries.items() if expires_at <= now]
        for client_id in expired:
            del entries[client_id]
        if not entries:
            del self._channels[channel]
        return [info for _, info in entries.values()]

    async def close(self) -> None:
        self._channels.clear()
