"""The control bus: small typed messages every node must act on, such as "re-check the sockets that hang off task 7".

It runs on its own broker instance (the same backend as the hub's, so Redis in a cluster and memory on one node),
on one channel, with a tiny history: control messages are acted on live; a node that misses one while Redis is
away re-checks everything it serves when the bus reconnects, so no socket keeps access it lost.

`server.live.sockets.LiveSockets` runs the bus and acts on each message for every kind of live socket of a node: one
`AccessChanged` makes the ``/ws`` hub (``server/live/realtime.py``) and the ``/yjs`` note rooms
(``server/live/notes_ws.py``) each re-check what of theirs depends on its subject.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from channels.broker import Broker, BrokerUnavailable, HistoryOptions, Publication

log = logging.getLogger(__name__)

CONTROL_CHANNEL = "control:nodes"


class Subject(StrEnum):
    """What an access change is about; each socket kind re-checks what of its own hangs off it."""

    USER = "user"  # a user's memberships or role: every socket of that user
    PROJECT = "project"  # a project's settings, or its deletion: everything on the project
    MILESTONE = "milestone"  # a milestone's visibility: its tasks, their threads and their notes
    TASK = "task"  # a task's visibility or deletion: its thread, its presence rooms and its notes
    NOTE = "note"  # a note's visibility, task or deletion: its editors
    EVERYTHING = "everything"  # this node missed messages (the bus reconnected): every socket; never sent


@dataclass(frozen=True)
class AccessChanged:
    """Who may see ``subject`` ``id``, or what hangs off it, may have changed: re-ask the policy for every live
    socket that depends on it, on every node, and drop what it now refuses."""

    subject: Subject
    id: int = 0


@dataclass(frozen=True)
class Disconnect:
    """Close the user's sockets: all of them, or those of one session or API token (its SHA-256 ``token_hash``)."""

    user_id: int
    token_hash: str | None = None


ControlMessage = AccessChanged | Disconnect
Handler = Callable[[ControlMessage], Awaitable[None]]

_SUBJECTS = frozenset(s.value for s in Subject)

# Names nodes of the previous release send, read as their typed equivalents during a rolling upgrade.
_LEGACY = {
    "recheck_user": (Subject.USER, "user_id"),
    "recheck_project": (Subject.PROJECT, "project_id"),
    "recheck_task": (Subject.TASK, "task_id"),
    "recheck_note": (Subject.NOTE, "note_id"),
}


def encode_control(message: ControlMessage) -> dict[str, Any]:
    """The JSON object sent on the bus for ``message``."""
    if isinstance(message, AccessChanged):
        return {"type": "access_changed", "subject": message.subject.value, "id": message.id}
    encoded: dict[str, Any] = {"type": "disconnect", "user_id": message.user_id}
    if message.token_hash is not None:
        encoded["token_hash"] = message.token_hash
    return encoded


def decode_control(raw: object) -> ControlMessage | None:
    """``raw`` (a decoded JSON value) as a typed message, or None when it is not a well-formed one."""
    if not isinstance(raw, dict):
        return None
    kind = raw.get("type")
    if kind == "access_changed":
        subject, ident = raw.get("subject"), raw.get("id")
        if isinstance(subject, str) and subject in _SUBJECTS and type(ident) is int:
            return AccessChanged(Subject(subject), ident)
    elif kind == "disconnect":
        user_id, hashed = raw.get("user_id"), raw.get("token_hash")
        if type(user_id) is int and (hashed is None or isinstance(hashed, str)):
            return Disconnect(user_id, hashed)
    elif isinstance(kind, str) and kind in _LEGACY:
        subject, key = _LEGACY[kind]
        if type(raw.get(key)) is int:
            return AccessChanged(subject, raw[key])
    return None


class ControlBus:
    def __init__(
        self,
        broker: Broker,
        handler: Handler,
        on_reconnect: Callable[[], Awaitable[None]],
        on_send: Callable[[], None] = lambda: None,
    ) -> None:
        """``on_send``: called as a message leaves, before the broker has it: this node stops reusing what it read
        before the change (the access epoch, server/accounts/session_cache.py) without waiting for its own copy."""
        self._broker = broker
        self._handler = handler
        self._on_reconnect = on_reconnect
        self._on_send = on_send
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._broker.set_handler(self._received)
        self._broker.set_reconnect_handler(self._on_reconnect)
        await self._broker.start()
        await self._broker.subscribe(CONTROL_CHANNEL)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._broker.close()

    async def send(self, message: ControlMessage) -> None:
        """Deliver ``message`` to every node, this one included (at most once; logged if the broker is down)."""
        self._on_send()
        try:
            await self._broker.publish(
                CONTROL_CHANNEL, json.dumps(encode_control(message)).encode(), HistoryOptions(10, 60.0)
            )
        except BrokerUnavailable:
            # This node acts on it now; the others re-check every socket when the broker comes back to them
            # (on_reconnect), and what they read for subscribes is kept no longer than the session sweep's
            # interval (AccessEpoch, server/accounts/session_cache.py), so access cannot outlive this failure for long.
            log.warning("control message not delivered to other nodes, broker unavailable: %s", message)
            await self._handle(message)

    def _received(self, publication: Publication) -> None:
        try:
            message = decode_control(json.loads(publication.data))
        except ValueError:
            message = None
        if message is None:
            log.error("malformed control message on %s", publication.channel)
            return
        task = asyncio.get_running_loop().create_task(self._handle(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, message: ControlMessage) -> None:
        try:
            await self._handler(message)
        except Exception:
            log.exception("control message %s failed", message)
