"""Bounded admission of WebSockets: how many sockets may be authenticating at once, and how many may wait.

After a node restart or a network blip every client reconnects at the same moment. Each admission costs a database
session (the session lookup, memberships, sometimes a commit). Run two thousand of them at once and the event loop
interleaves two thousand half-done lookups: every one of them, and every HTTP request, waits behind all the others,
and the connection pool's queue grows without bound. The gate lets a few run, a bounded number wait (each for a
bounded time), and turns the rest away at once with close code 1013 "try again later", which clients answer with
backoff and jitter (``channels/client.py``, ``web/src/live.ts``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from prometheus_client import Counter, Gauge

REFUSED = Counter("tandem_ws_admissions_refused_total", "Sockets closed with 1013: too many were being admitted.")
WAITING = Gauge("tandem_ws_admissions_waiting", "Sockets waiting for their turn to authenticate.")


class AdmissionBusy(Exception):
    """Too many sockets are being admitted: the caller should close with 1013 and let the client retry."""


class AdmissionGate:
    """At most ``concurrency`` admissions at once; at most ``max_waiting`` waiting, each at most ``wait_seconds``.

    A newcomer is turned away at once, rather than after waiting in vain, when the queue is full or when the queue
    ahead of it would take longer than ``wait_seconds`` at the recent pace of admissions.

    Args:
        concurrency: admissions running at once; 0 means unbounded (no gate).
        max_waiting: admissions allowed to queue for a slot; one more is turned away at once.
        wait_seconds: how long a queued admission waits for a slot before it is turned away.
    """

    def __init__(self, concurrency: int, max_waiting: int, wait_seconds: float) -> None:
        self._slots = asyncio.Semaphore(concurrency) if concurrency > 0 else None
        self._concurrency = max(concurrency, 1)
        self._max_waiting = max_waiting
        self._wait_seconds = wait_seconds
        # How long one admission holds its slot, smoothed: the expected wait of a newcomer is the queue ahead of
        # it times this, divided by the slots. Whoever could not get in within the wait is told so at once.
        self._held_seconds = 0.0
        self.waiting = 0
        self.refused = 0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one admission slot for the body of the ``async with``.

        Raises:
            AdmissionBusy: the queue is full, or no slot freed up within ``wait_seconds``.
        """
        if self._slots is None:
            yield
            return
        if self._slots.locked() and (
            self.waiting >= self._max_waiting
            or (self.waiting + 1) * self._held_seconds / self._concurrency > self._wait_seconds
        ):
            self._refuse()
            raise AdmissionBusy("too many sockets waiting to be admitted")
        self.waiting += 1
        WAITING.inc()
        try:
            async with asyncio.timeout(self._wait_seconds):
                await self._slots.acquire()
        except TimeoutError:
            self._refuse()
            raise AdmissionBusy("no admission slot within the wait") from None
        finally:
            self.waiting -= 1
            WAITING.dec()
        started = time.monotonic()
        try:
            yield
        finally:
            self._slots.release()
            held = time.monotonic() - started
            smoothed = self._held_seconds + (held - self._held_seconds) * 0.1
            self._held_seconds = held if self._held_seconds == 0.0 else smoothed

    def _refuse(self) -> None:
        self.refused += 1
        REFUSED.inc()
