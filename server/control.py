"""The control bus: small messages every node must act on, such as "re-check this user's sockets".

It runs on its own broker instance (the same backend as the hub's, so Redis in a cluster and memory on one node),
on one channel, with a tiny history: control messages are acted on live; a node that misses one while Redis is
away re-checks everything it serves when the bus reconnects, so no socket keeps access it lost.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from channels.broker import Broker, BrokerUnavailable, HistoryOptions, Publication

log = logging.getLogger(__name__)

CONTROL_CHANNEL = "control:nodes"
Handler = Callable[[dict[str, Any]], Awaitable[None]]


class ControlBus:
    def __init__(self, broker: Broker, handler: Handler, on_reconnect: Callable[[], Awaitable[None]]) -> None:
        self._broker = broker
        self._handler = handler
        self._on_reconnect = on_reconnect
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

    async def send(self, message: dict[str, Any]) -> None:
        """Deliver ``message`` to every node, this one included (at most once; logged if the broker is down)."""
        try:
            await self._broker.publish(CONTROL_CHANNEL, json.dumps(message).encode(), HistoryOptions(10, 60.0))
        except BrokerUnavailable:
            # Sockets are re-checked on every node when the broker comes back (on_reconnect), and each
            # subscribe asks the policy afresh, so access cannot outlive this failure for long.
            log.warning("control message not delivered, broker unavailable: %s", message)

    def _received(self, publication: Publication) -> None:
        try:
            message = json.loads(publication.data)
        except ValueError:
            log.error("malformed control message on %s", publication.channel)
            return
        task = asyncio.get_running_loop().create_task(self._handle(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, message: dict[str, Any]) -> None:
        try:
            await self._handler(message)
        except Exception:
            log.exception("control message %s failed", message)
