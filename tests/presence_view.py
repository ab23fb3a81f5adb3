"""How a client sees a presence room: its last ``presence_list`` reply with every later ``presence_diff`` applied
(docs/PROTOCOL.md). Shared by the hub's presence tests and the two-node ones."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def room_view(frames: Iterable[dict[str, Any]], channel: str) -> dict[str, dict[str, Any]]:
    """The entries present in ``channel`` by client id, after the frames a socket received, in order."""
    here: dict[str, dict[str, Any]] = {}
    for frame in frames:
        if frame.get("channel") != channel:
            continue
        if frame["type"] == "presence_list":
            here = {c["client_id"]: c for c in frame["clients"]}
        elif frame["type"] == "presence_diff":
            for entry in frame["left"]:
                here.pop(entry["client_id"], None)
            for entry in frame["joined"] + frame["updated"]:
                here[entry["client_id"]] = entry
        elif frame["type"] == "unsubscribed":
            here = {}
    return here
