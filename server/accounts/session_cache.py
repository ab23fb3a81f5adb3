"""What a node may reuse of a session it read: the access epoch, and the sessions read recently by its requests.

Reading a request's session, its user and their memberships is one statement, but on PostgreSQL a round trip and
on either database about a fifth of what a small request costs. Every change to what that read returns is announced
on the control bus (``server/live/control.py``): a membership or role, a session ended, a second factor enrolled, a
name. Each announcement advances the node's `AccessEpoch` the moment it arrives (and on the node that sends it, the
moment it is sent), so a read made at the current epoch differs from the database only by a change whose message is
still on its way, the window any read has. ``max_age`` bounds what no message announces (a change made outside
the server, or missed while the bus was away and not yet made up for by the reconnect's re-check) to the session
sweep's interval, the time an open socket already keeps receiving after its session ends.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from server.accounts.auth import SessionRead


class Checked(Protocol):
    """Something whose actor was read at an epoch: a live socket's principal."""

    checked_epoch: int
    checked_at: float


class AccessEpoch:
    """Whether an actor, read earlier, is still its principal's actor: no control message since, and recent.

    Sockets' subscribes and note joins reuse the actor read at admission while it is fresh, and requests reuse a
    session read while it is (`SessionCache`), instead of reading the session, user and memberships again.
    """

    def __init__(self, max_age: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.value = 0
        self.max_age = max_age
        self._clock = clock

    def advance(self) -> None:
        self.value += 1

    def now(self) -> float:
        return self._clock()

    def fresh(self, principal: Checked) -> bool:
        return principal.checked_epoch == self.value and self._clock() - principal.checked_at < self.max_age

    def stamp(self, principal: Checked, epoch: int) -> None:
        """``principal``'s actor was read after the epoch was ``epoch`` (read the epoch before the database)."""
        principal.checked_epoch = epoch
        principal.checked_at = self._clock()


class _Entry:
    __slots__ = ("checked_at", "checked_epoch", "read")

    def __init__(self, read: SessionRead, epoch: int, at: float) -> None:
        self.read = read
        self.checked_epoch = epoch
        self.checked_at = at


class SessionCache:
    """Valid sessions a node's requests read recently, by token hash, while the `AccessEpoch` says they are fresh.

    An entry is also dropped once its session would have expired or gone idle by its own times, so a cached session
    never outlives what the database's condition allows. At most ``max_entries``; the oldest go first.
    """

    def __init__(self, epoch: AccessEpoch, idle: dt.timedelta, max_entries: int = 10_000) -> None:
        self.epoch = epoch
        self.idle = idle
        self.max_entries = max_entries
        self._entries: dict[str, _Entry] = {}

    def get(self, hashed: str, now: dt.datetime) -> SessionRead | None:
        entry = self._entries.get(hashed)
        if entry is None:
            return None
        read = entry.read
        if self.epoch.fresh(entry) and read.expires_at > now and read.last_seen_at > now - self.idle:
            return read
        del self._entries[hashed]
        return None

    def put(self, hashed: str, read: SessionRead, epoch: int) -> None:
        """Keep ``read``, made after the epoch was ``epoch``; nothing if a message arrived since (it may be stale)."""
        if epoch != self.epoch.value:
            return
        self._entries.pop(hashed, None)
        if len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]
        entry = _Entry(read, epoch, 0.0)
        self.epoch.stamp(entry, epoch)
        self._entries[hashed] = entry

    def touched(self, hashed: str, now: dt.datetime) -> None:
        """This node recorded a use of the session at ``now``."""
        entry = self._entries.get(hashed)
        if entry is not None:
            entry.read = dataclasses.replace(entry.read, last_seen_at=now)

    def forget(self, hashed: str) -> None:
        self._entries.pop(hashed, None)

    def __len__(self) -> int:
        return len(self._entries)
