"""`PresenceRoom`: who this node knows to be on one presence channel, and the changes it has not sent yet.

Sending each presence change to every socket of a room as its own frame costs changes x sockets frames: 300
sockets churning in one room made millions of frames. Instead, a node keeps one `PresenceRoom` per presence
channel it has local subscribers on (on the channel's `channels.channel.LocalChannel`):

- ``members`` is the room as the node's sockets were last told it: loaded once from the `PresenceManager` when the
  first local socket needs it (`load`), then kept by the room's own changes.
- Changes arrive from the broker (``<channel>#presence``, each the one-change frame any node publishes; see
  ``channels/hub_presence.py``) and are *coalesced* per ``client_id`` in ``pending`` (`receive`): the latest
  state of each entry wins.
- `flush` (the hub runs it for every room with pending changes, at most every
  ``HubSettings.presence_flush_seconds``) folds them into ``members`` and returns *one* ``presence_diff`` frame
  for all the room's sockets: who joined, whose data changed, who left, relative to what they were last told,
  plus the room's new size. Encoded once, shared by every socket.

Exactness: every socket's picture of the room is derived from ``members`` only: a ``presence_list`` reply is read
from it (`listing`), synchronously, so the diffs a socket gets afterwards are exactly the changes after its list.
So an entry that joined and left within one window, never having been in ``members``, needs no frame: no socket
was told about it; and an entry in ``members`` that left is always sent as ``left``, however its window went.
One gap is left: a change published before `load` read the store but received after it is applied on top of the
snapshot. Changes are upserts and removals by ``client_id``, so that only matters when the same entry changed again
within that instant (it expired and its heartbeat brought it back), and the next change of that entry repairs it.

Nothing here awaits: each method runs atomically with respect to other broker deliveries.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from channels.protocol import encode_presence_diff

logger = logging.getLogger(__name__)

Entry = dict[str, Any]  # a presence entry as JSON (`channels.presence.PresenceInfo.to_json`)


class PresenceRoom:
    """One presence channel's members as this node's sockets know them, and the changes not yet sent."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.members: dict[str, Entry] = {}
        self.loaded = False
        # client_id -> its latest entry (present) or None (left), in the order the changes first arrived.
        self.pending: dict[str, Entry | None] = {}
        self._users: dict[str, int] = {}  # user_id -> entries in members

    @property
    def count(self) -> int:
        return len(self.members)

    @property
    def users(self) -> int:
        return len(self._users)

    def receive(self, data: bytes) -> bool:
        """Take one change as published on the broker (``{"type":"presence",..., kind: entry}``).

        Returns:
            True when the room now has pending changes it did not have before (the hub schedules a flush).
        """
        try:
            frame = json.loads(data)
            if "left" in frame:
                client_id, entry = str(frame["left"]["client_id"]), None
            else:
                entry = frame.get("joined") or frame["updated"]
                client_id = str(entry["client_id"])
        except (ValueError, KeyError, TypeError):
            logger.warning("presence change on %s not understood: %.200r", self.channel, data)
            return False
        was_idle = not self.pending
        self.pending.pop(client_id, None)  # re-inserted last: a diff lists changes in the order they ended
        self.pending[client_id] = entry
        return was_idle

    def load(self, entries: list[Entry]) -> None:
        """Set the room from the store's ``entries``.

        The first load just sets ``members`` (no socket was told anything yet). A reload (after the broker
        reconnected: changes may have been lost meanwhile) turns the difference into pending changes, under any
        change that arrived while the store was read (those are at least as new).
        """
        snapshot = {str(e["client_id"]): e for e in entries}
        if not self.loaded:
            for entry in snapshot.values():
                self._add(entry)
            self.loaded = True
            return
        changes: dict[str, Entry | None] = {cid: None for cid in self.members if cid not in snapshot}
        changes.update(snapshot)
        changes.update(self.pending)
        self.pending = changes

    def flush(self) -> str | None:
        """Fold the pending changes into ``members``.

        Returns:
            The ``presence_diff`` frame for every socket of the room, or None when nothing they know changed
            (or the room is not loaded yet: the changes stay pending).
        """
        if not self.loaded or not self.pending:
            return None
        pending, self.pending = self.pending, {}
        joined: list[Entry] = []
        updated: list[Entry] = []
        left: list[Entry] = []
        for client_id, entry in pending.items():
            known = self.members.get(client_id)
            if entry is None:
                if known is not None:
                    self._remove(client_id)
                    left.append(known)
            elif known is None:
                self._add(entry)
                joined.append(entry)
            elif known != entry:
                self._remove(client_id)
                self._add(entry)
                updated.append(entry)
        if not (joined or updated or left):
            return None
        return encode_presence_diff(self.channel, joined, updated, left, count=self.count, users=self.users)

    def listing(self, limit: int | None) -> tuple[list[Entry], bool]:
        """The members for a ``presence_list`` reply: all, or past ``limit`` a sample of ``limit`` entries that
        shows as many different users as it can (one entry each first, oldest first).

        Returns:
            The entries, and whether they are a sample.
        """
        if limit is None or len(self.members) <= limit:
            return list(self.members.values()), False
        sample: list[Entry] = []
        seen: set[str] = set()
        rest: list[Entry] = []
        for entry in self.members.values():
            if entry["user_id"] in seen:
                rest.append(entry)
            elif len(sample) < limit:
                seen.add(entry["user_id"])
                sample.append(entry)
        sample += rest[: limit - len(sample)]
        return sample, True

    def _add(self, entry: Entry) -> None:
        self.members[str(entry["client_id"])] = entry
        user = str(entry["user_id"])
        self._users[user] = self._users.get(user, 0) + 1

    def _remove(self, client_id: str) -> None:
        entry = self.members.pop(client_id)
        user = str(entry["user_id"])
        if self._users[user] <= 1:
            del self._users[user]
        else:
            self._users[user] -= 1
