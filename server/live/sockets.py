"""One socket layer for ``/ws`` (the hub, ``server/live/realtime.py``) and ``/yjs`` (``server/live/notes_ws.py``).

Both kinds of socket share, from here: the principal `SocketAdmission.admit` makes (`LivePrincipal`), the ASGI
transport (`AsgiSocket`), and `LiveSockets`, the node's one view of every live socket of both kinds. `LiveSockets`
runs the session sweep and the control bus, and acts on every control message in one place: a `Disconnect` (a
session ended, a logout, a reset password) closes matching sockets of every kind, and an `AccessChanged` asks every
kind to re-check what of its own hangs off the subject. A kind of socket is a `SocketRegistry`; `LiveSockets` is
built from all of them (``server/services.py``), so no control message or sweep can miss one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from starlette.types import Receive, Send

from channels.backends import make_broker
from channels.eager import start_eagerly
from channels.protocol import CloseCode
from server.accounts.session_cache import AccessEpoch
from server.db import Database
from server.live.control import AccessChanged, ControlBus, ControlMessage, Disconnect, Subject
from server.live.session_upkeep import session_sweeper
from server.live.uvicorn_socket import OnMessage, RawSocket, received
from server.policy import Actor
from server.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class LivePrincipal:
    """Who is behind a socket of either kind: the actor and the SHA-256 of the session or API token it was admitted
    with (what the sweep and `Disconnect` match). ``checked_epoch``/``checked_at``: when the actor was last read
    (`AccessEpoch`)."""

    actor: Actor
    token_hash: str
    checked_epoch: int = -1
    checked_at: float = 0.0

    def __str__(self) -> str:
        return str(self.actor.user_id)


class AsgiSocket:
    """The transport of both kinds of socket over the server's own ASGI ``send`` (see
    ``server.app.WebSocketFastPath``): `channels.connection.Transport` (text) and `crdt.transport.Transport` (binary).

    A send is stepped eagerly by its caller: with uvicorn it completes without suspending unless the socket is
    paused by flow control, so a fan-out costs no task and no event-loop turn per socket. `write_frame` writes a
    fan-out's frame, built once, straight to uvicorn's socket (``server/live/uvicorn_socket.py``).
    """

    def __init__(self, send: Send) -> None:
        self._send = send
        self._raw = RawSocket.behind(send)

    async def send_text(self, text: str) -> None:
        await self._send({"type": "websocket.send", "text": text})

    def write(self, data: bytes) -> Awaitable[None] | None:
        return start_eagerly(self._send({"type": "websocket.send", "bytes": data}))

    def write_frame(self, frame: bytes) -> bool:
        return self._raw is not None and self._raw.write(frame)

    async def close(self, code: int, reason: str) -> None:
        with contextlib.suppress(RuntimeError):  # already closed by the peer
            await self._send({"type": "websocket.close", "code": code, "reason": reason[:120]})

    async def pump(self, receive: Receive, on_message: OnMessage) -> None:
        """Hand each message the client sends to ``on_message`` (bytes or str), in order, until the client
        disconnects or ``on_message`` returns False. ``on_message`` must not suspend: on uvicorn it runs as the
        message is parsed (`RawSocket.pump`), elsewhere after ASGI's ``receive``."""
        if self._raw is not None:
            await self._raw.pump(on_message)
            return
        while True:
            message = received(await receive())
            if message is None or not on_message(message):
                return


class SocketRegistry(Protocol):
    """One kind of live socket on this node (the ``/ws`` hub, the ``/yjs`` note rooms), as `LiveSockets` sees it."""

    def principals(self) -> Iterable[LivePrincipal]:
        """The principals of this kind's open sockets (one per socket)."""

    def close_where(self, which: Callable[[LivePrincipal], bool], code: CloseCode, reason: str) -> None:
        """Close, without waiting, every socket of this kind whose principal ``which`` selects."""

    async def recheck(self, change: AccessChanged) -> None:
        """Ask the policy again for every socket of this kind that depends on ``change.subject``; drop what it now
        refuses (and close the sockets whose session ended). Called for every change, on every node."""


class LiveSockets:
    """Every live socket of this node, of every kind: the session sweep and the control bus.

    Args:
        settings: the sweep's interval, and the control bus's broker (Redis in a cluster, memory on one node).
        db: where sessions live (the sweep asks which are still valid).
        idle: the idle timeout of sessions.
        registries: every kind of socket this node serves.
        epoch: advanced by every control message (`AccessEpoch`), shared with the admission.
    """

    def __init__(
        self,
        settings: Settings,
        db: Database,
        idle: dt.timedelta,
        registries: Sequence[SocketRegistry],
        epoch: AccessEpoch,
    ) -> None:
        self.registries = tuple(registries)
        self.epoch = epoch
        self.control = ControlBus(
            make_broker(settings.redis_url, settings.redis_prefix),
            self.handle,
            self._recheck_everything,
            on_send=epoch.advance,
        )
        self.sweeper = session_sweeper(
            db, settings.session_sweep_seconds, idle, self.session_hashes, self.close_sessions
        )

    async def start(self) -> None:
        await self.control.start()
        self.sweeper.start()

    async def stop(self) -> None:
        await self.sweeper.stop()
        await self.control.close()

    async def handle(self, message: ControlMessage) -> None:
        """Act on a control message (from any node, this one included) for every kind of socket."""
        self.epoch.advance()  # first: actors read before this message are no longer taken as current
        match message:
            case Disconnect(user_id, None):
                self._close_where(lambda p: p.actor.user_id == user_id)
            case Disconnect(user_id, hashed):
                self._close_where(lambda p: p.actor.user_id == user_id and p.token_hash == hashed)
            case AccessChanged():
                for registry in self.registries:
                    try:
                        await registry.recheck(message)
                    except Exception:  # one kind failing must not leave the others unchecked
                        log.exception("re-checking %s after %s failed", type(registry).__name__, message)

    def session_hashes(self) -> set[str]:
        """The token hashes of every open socket of this node (the sweep asks the database about them)."""
        return {principal.token_hash for registry in self.registries for principal in registry.principals()}

    def close_sessions(self, ended: set[str]) -> None:
        """Close the sockets of sessions that ended, expired or went idle since they connected (the sweep)."""
        self._close_where(lambda p: p.token_hash in ended)

    def _close_where(self, which: Callable[[LivePrincipal], bool]) -> None:
        for registry in self.registries:
            registry.close_where(which, CloseCode.UNAUTHORIZED, "session ended")

    async def _recheck_everything(self) -> None:
        # The bus reconnected: messages may have been missed while it was away.
        await self.handle(AccessChanged(Subject.EVERYTHING))
