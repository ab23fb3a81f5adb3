"""`TandemClient`: a small asyncio client for the real-time protocol, over ``websockets``.

Used by tests and benchmarks (and as a reference for the browser client). It splits coalesced messages on
``"\\n"``, matches replies to requests by ``id``, tracks the last position of every channel, and reconnects
(exponential backoff with jitter, capped) resubscribing each channel *since* its last position, so it gets
exactly what it missed or a ``reload`` answer. It does not hide duplicates or gaps: tests rely on seeing
exactly what the server sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from channels.broker import StreamPosition

logger = logging.getLogger(__name__)

Frame = dict[str, Any]

# Close codes after which connecting again cannot help (the web client's FINAL_CODES).
FINAL_CLOSE_CODES = frozenset({4400, 4401, 4403, 1009})


class ClientError(Exception):
    """The server answered a request with an ``error`` frame."""

    def __init__(self, frame: Frame) -> None:
        super().__init__(f"{frame.get('code')}: {frame.get('message')}")
        self.code = str(frame.get("code"))
        self.frame = frame


class TandemClient:
    """One WebSocket to the hub, any number of channel subscriptions.

    Pushed frames (``event``, ``reload``, ``presence``, forced ``unsubscribed``, and a synthetic
    ``{"type":"reconnected","subscribed":{channel: subscribed-frame}}`` after an automatic reconnect) are
    delivered in arrival order through `events` / `next_event`.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        ticket: str | None = None,
        headers: Mapping[str, str] | None = None,
        auto_reconnect: bool = False,
        ping_interval: float | None = 20.0,
        max_reconnect_delay: float = 2.0,
        max_queue: int = 100_000,
        max_size: int | None = 4 * 1024 * 1024,
    ) -> None:
        """Args:
        url: ``ws://``/``wss://`` URL of the endpoint.
        token: a session or personal API token, sent in the ``Authorization: Bearer`` header (never in the URL,
            which proxies log; docs/PROTOCOL.md).
        ticket: a single-use ticket from ``POST /api/ws-ticket``, sent as ``?ticket=`` (it opens one socket, so
            a client that reconnects needs a token or a fresh ticket per connection).
        headers: extra HTTP headers for the handshake (e.g. a session cookie).
        auto_reconnect: reconnect and resubscribe by itself when the socket drops.
        ping_interval: send a protocol ``ping`` this often (keeps the hub's idle timeout at bay); None: never.
        max_reconnect_delay: cap of the reconnect backoff.
        max_queue: pushed frames buffered before the reader stops reading (back-pressure to the server).
        max_size: largest incoming WebSocket message.
        """
        self.url = _with_ticket(url, ticket)
        self.headers = dict(headers or {})
        if token is not None:
            self.headers["Authorization"] = f"Bearer {token}"
        self.auto_reconnect = auto_reconnect
        self.positions: dict[str, StreamPosition] = {}
        self.close_code: int | None = None
        self._ping_interval = ping_interval
        self._max_delay = max_reconnect_delay
        self._max_size = max_size
        self._channels: set[str] = set()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Frame]] = {}
        self._events: asyncio.Queue[Frame] = asyncio.Queue(max_queue)
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pinger: asyncio.Task[None] | None = None
        self._reconnector: asyncio.Task[None] | None = None
        self._closing = False
        self._reconnecting = False
        self.retries = 0  # connection attempts that failed or were turned away and were tried again

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        token: str | None = None,
        ticket: str | None = None,
        headers: Mapping[str, str] | None = None,
        **options: Any,
    ) -> TandemClient:
        """Open a client (see `__init__` for options).

        Raises:
            OSError, websockets.exceptions.InvalidHandshake: the connection failed.
        """
        client = cls(url, token=token, ticket=ticket, headers=headers, **options)
        await client._open()
        return client

    async def _open(self) -> None:
        self._ws = await connect(self.url, additional_headers=self.headers, max_size=self._max_size)
        self.close_code = None
        self._reader = asyncio.get_running_loop().create_task(self._read_loop(self._ws))
        if self._ping_interval is not None and self._pinger is None:
            self._pinger = asyncio.get_running_loop().create_task(self._ping_loop(self._ping_interval))

    async def close(self) -> None:
        """Close the socket and stop background tasks."""
        self._closing = True
        for task in (self._pinger, self._reconnector, self._reader):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()
        self._fail_pending(ConnectionError("client closed"))

    def resume_from(self, positions: Mapping[str, StreamPosition]) -> None:
        """Take over positions saved by an earlier client: `reconnect` then subscribes each channel since its own."""
        self.positions.update(positions)
        self._channels.update(positions)

    async def request(self, frame: Frame, timeout: float = 10.0) -> Frame:  # noqa: ASYNC109 (a default deadline keeps every wait bounded)
        """Send ``frame`` with a fresh ``id`` and return the reply carrying that id.

        Raises:
            ClientError: the reply is an ``error`` frame.
            TimeoutError: no reply within ``timeout``.
            ConnectionError: the socket closed first.
        """
        frame_id = next(self._ids)
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._pending[frame_id] = future
        try:
            await self.send({**frame, "id": frame_id})
            async with asyncio.timeout(timeout):
                reply = await future
        finally:
            self._pending.pop(frame_id, None)
            if future.done() and not future.cancelled():
                future.exception()  # failed by a closing socket while the send raised: nobody else reads it
        if reply.get("type") == "error":
            raise ClientError(reply)
        return reply

    async def send(self, frame: Frame) -> None:
        """Send one frame as-is (no reply tracking)."""
        if self._ws is None:
            raise ConnectionError("not connected")
        await self._ws.send(json.dumps(frame, separators=(",", ":")))

    async def subscribe(
        self,
        channel: str,
        since: StreamPosition | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 (a default deadline keeps every wait bounded)
    ) -> Frame:
        """Subscribe; returns the ``subscribed`` frame. Missed events (``since``) follow through `events`.

        Raises:
            ClientError: e.g. ``forbidden``, ``too_many_subscriptions``.
        """
        frame: Frame = {"type": "subscribe", "channel": channel}
        if since is not None:
            frame["since"] = {"offset": since.offset, "epoch": since.epoch}
        reply = await self.request(frame, timeout)
        self._channels.add(channel)
        return reply

    async def unsubscribe(self, channel: str, timeout: float = 10.0) -> Frame:  # noqa: ASYNC109 (a default deadline keeps every wait bounded)
        """Unsubscribe; returns the ``unsubscribed`` frame."""
        self._channels.discard(channel)
        return await self.request({"type": "unsubscribe", "channel": channel}, timeout)

    async def next_event(self, timeout: float = 10.0) -> Frame:  # noqa: ASYNC109 (a default deadline keeps every wait bounded)
        """The next pushed frame.

        Raises:
            TimeoutError: none within ``timeout``.
        """
        async with asyncio.timeout(timeout):
            return await self._events.get()

    async def events(self) -> AsyncIterator[Frame]:
        """Pushed frames, forever (wrap the loop in ``asyncio.timeout``)."""
        while True:
            yield await self._events.get()

    async def reconnect(self, deadline: float = 30.0) -> dict[str, Frame]:
        """Drop the socket, connect again (backoff with jitter), resubscribe every channel since its position.

        A connection that fails, or that the server closes before the resubscribes are answered with a code
        worth retrying (1013 "try again later" during a reconnect storm, 1012 restart, 1001, 1006, 1011), is
        retried after a growing, jittered delay capped at ``max_reconnect_delay``.

        Returns:
            The ``subscribed`` reply per channel (check ``recovered`` / ``reload``).

        Raises:
            TimeoutError: not reconnected within ``deadline`` seconds.
            ConnectionError: the server closed with a code retrying cannot help (4400, 4401, 4403, 1009).
        """
        self._reconnecting = True
        try:
            async with asyncio.timeout(deadline):
                attempt = 0
                while True:
                    await self._drop_socket()
                    try:
                        await self._open()
                        results: dict[str, Frame] = {}
                        for channel in sorted(self._channels):
                            results[channel] = await self.subscribe(channel, self.positions.get(channel))
                        return results
                    except (OSError, WebSocketException) as exc:  # ConnectionError is an OSError
                        if self.close_code in FINAL_CLOSE_CODES:
                            raise ConnectionError(f"connection closed ({self.close_code})") from exc
                        attempt += 1
                        self.retries += 1
                        delay = min(self._max_delay, 0.05 * 2**attempt)
                        logger.info("reconnect attempt %d failed (%s); retrying", attempt, exc)
                        await asyncio.sleep(delay / 2 + random.uniform(0, delay / 2))
        finally:
            self._reconnecting = False

    async def _drop_socket(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        if self._ws is not None:
            with contextlib.suppress(WebSocketException, OSError):
                await self._ws.close()
        self._fail_pending(ConnectionError("reconnecting"))

    def _fail_pending(self, exc: Exception) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(exc)
        self._pending.clear()

    async def _read_loop(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                text = message if isinstance(message, str) else message.decode()
                for line in text.split("\n"):
                    await self._handle(json.loads(line))
        except ConnectionClosed:
            pass
        self.close_code = ws.close_code
        self._fail_pending(ConnectionError(f"connection closed ({ws.close_code})"))
        if self.auto_reconnect and not self._closing and not self._reconnecting:
            self._reconnector = asyncio.get_running_loop().create_task(self._auto_reconnect())

    async def _auto_reconnect(self) -> None:
        results = await self.reconnect()
        await self._events.put({"type": "reconnected", "subscribed": results})

    async def _handle(self, frame: Frame) -> None:
        kind = frame.get("type")
        channel = frame.get("channel")
        if kind == "event" and isinstance(channel, str):
            self.positions[channel] = StreamPosition(int(frame["offset"]), str(frame["epoch"]))
        elif kind in ("subscribed", "reload") and isinstance(channel, str):
            position = frame["position"]
            self.positions[channel] = StreamPosition(int(position["offset"]), str(position["epoch"]))
        elif kind == "unsubscribed" and isinstance(channel, str):
            self._channels.discard(channel)
        frame_id = frame.get("id")
        future = self._pending.get(frame_id) if isinstance(frame_id, int) else None
        if future is not None:
            if not future.done():
                future.set_result(frame)
            return
        await self._events.put(frame)

    async def _ping_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.request({"type": "ping"}, timeout=interval)
            except (ConnectionError, TimeoutError, ConnectionClosed) as exc:
                logger.debug("ping failed: %s", exc)


def _with_ticket(url: str, ticket: str | None) -> str:
    if ticket is None:
        return url
    parts = urlsplit(url)
    query = f"{parts.query}&" if parts.query else ""
    return urlunsplit(parts._replace(query=query + urlencode({"ticket": ticket})))
