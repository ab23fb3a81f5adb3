"""Bounded admission: how many sockets' lookups run at once, how many may wait, and for how long.

After a node restart or a network blip every client reconnects at the same moment. Each admission costs a database
read (the session, its user and memberships in one statement: `AuthService.session_actor`), sometimes a write. Run
two thousand of them at once and the event loop interleaves two thousand half-done lookups: every one of them, and
every HTTP request, waits behind all the others, and the connection pool's queue grows without bound. A gate lets
a few run, a bounded number wait (each for a bounded time), and turns the rest away at once with close code 1013
"try again later", which clients answer with backoff and jitter (``channels/client.py``, ``web/src/live.ts``).

Two gates with the same bounds: `AdmissionGate` gives slots to lookups one by one (a ticket's, a personal API
token's: few). `JoinedReads` takes sessions' lookups, nearly every socket's. Read one by one, each costs a
statement, a hop to the reader thread and back, and a connection's checkout and rollback; read together, those
are paid once per read (bench/README.md, ``bench/connect.py --storm``). So one read runs at a time and takes every
session waiting: under load reads begin at most every `READ_INTERVAL` and each carries what arrived meanwhile,
and when it is quiet a socket's read starts on the event loop's next turn. A burst that fills the queue starts
more reads rather than turning sockets away: a refusal is not cheap either, as the client's second try costs the
node the whole handshake again.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

from prometheus_client import Counter, Gauge

REFUSED = Counter("tandem_ws_admissions_refused_total", "Sockets closed with 1013: too many were being admitted.")
WAITING = Gauge("tandem_ws_admissions_waiting", "Sockets waiting for their turn to authenticate.")


def _smoothed(average: float, sample: float) -> float:
    """``average`` moved a tenth of the way to ``sample`` (the first sample taken as it is): the recent pace."""
    return sample if average == 0.0 else average + (sample - average) * 0.1


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
            self._held_seconds = _smoothed(self._held_seconds, time.monotonic() - started)

    def _refuse(self) -> None:
        self.refused += 1
        REFUSED.inc()


# -- joined reads ---------------------------------------------------------------------------------------------

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

READS = Counter("tandem_ws_admission_reads_total", "Joined admission reads (each one statement for many sockets).")
READ_KEYS = Counter("tandem_ws_admission_read_keys_total", "Sockets' lookups carried by joined admission reads.")

# Most keys one read takes: one statement binds each of them (SQLite allows 32,766 parameters, 999 before 3.32).
MAX_KEYS_PER_READ = 500
# Under load, reads begin at most this often (each then takes every session that arrived meanwhile).
READ_INTERVAL = 0.01


class JoinedReads(Generic[K, V]):
    """Lookups by key, joined into reads of many keys (one statement each), in the order they were asked.

    One read runs at a time and takes every key waiting when it starts (at most `MAX_KEYS_PER_READ`): a key asked
    while it runs waits for the next, which starts as it ends but no sooner than `READ_INTERVAL` after the last one
    began (when reads are rare, a key's read starts on the event loop's next turn).
    A burst that fills the queue before the running read ends starts another read at once, up to ``concurrency``
    reads, rather than turning sockets away that one more read would serve.

    Guarantees: each `get` is answered by exactly one read that started after it was asked (a value is never
    reused from an earlier read); at most ``concurrency`` reads run at once; at most ``max_waiting`` lookups wait
    for a read, none longer than ``wait_seconds``.

    Args:
        read: ``await read(keys)``: the value of each of ``keys`` that has one (distinct keys; one statement).
        concurrency: most reads running at once; 0 means unbounded (no gate: a read starts on every turn of the
            event loop that has keys waiting, and none is refused).
        max_waiting: lookups waiting for a read; one more is turned away at once when ``concurrency`` reads are
            running.
        wait_seconds: how long a lookup waits for its read to start before it is turned away; a newcomer is
            turned away at once when the reads running would not end within it at the recent pace.
    """

    def __init__(
        self,
        read: Callable[[Sequence[K]], Awaitable[dict[K, V]]],
        *,
        concurrency: int,
        max_waiting: int,
        wait_seconds: float,
    ) -> None:
        self._read = read
        self._bounded = concurrency > 0
        self._concurrency = concurrency if self._bounded else sys.maxsize
        self._max_waiting = max_waiting if self._bounded else sys.maxsize
        self._wait_seconds = wait_seconds
        self._waiting: deque[tuple[K, asyncio.Future[V | None]]] = deque()
        self._running = 0
        self._starting = False  # a read is due on the event loop's next turn
        self._read_seconds = 0.0  # how long a read takes, smoothed
        self._last_start = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self.refused = 0

    @property
    def waiting(self) -> int:
        """Lookups waiting for a read now."""
        return len(self._waiting)

    async def get(self, key: K) -> V | None:
        """The value of ``key``, or None if it has none, from the next read.

        Raises:
            AdmissionBusy: too many lookups are waiting, or this one's read would not (or did not) start within
                ``wait_seconds``.
            Exception: whatever the read raised (every lookup of that read gets it).
        """
        if len(self._waiting) >= self._max_waiting and self._running < self._concurrency:
            self._start_read()  # a burst: one more read now serves the queue
        if len(self._waiting) >= self._max_waiting or (
            self._bounded and self._running > 0 and self._read_seconds > self._wait_seconds
        ):
            self._refuse()
            raise AdmissionBusy("too many sockets waiting to be admitted")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V | None] = loop.create_future()
        self._waiting.append((key, future))
        WAITING.inc()
        if self._bounded:
            loop.call_later(self._wait_seconds, self._expire, future)
        if not self._starting and (self._running == 0 or not self._bounded):
            self._schedule()
        return await future

    def _expire(self, future: asyncio.Future[V | None]) -> None:
        if future.done():
            return
        for index, (_, waiting) in enumerate(self._waiting):
            if waiting is future:
                del self._waiting[index]
                WAITING.dec()
                self._refuse()
                future.set_exception(AdmissionBusy("no admission read within the wait"))
                return

    def _schedule(self) -> None:
        # On the next turn when reads are rare; under load, no sooner than READ_INTERVAL after the last one began,
        # so that each read carries what arrived meanwhile instead of a few sessions.
        self._starting = True
        loop = asyncio.get_running_loop()
        wait = self._last_start + READ_INTERVAL - time.monotonic()
        if wait > 0 and self._bounded:
            loop.call_later(wait, self._start_due)
        else:
            loop.call_soon(self._start_due)

    def _start_due(self) -> None:
        self._starting = False
        while self._waiting and (self._running == 0 or not self._bounded):
            self._start_read()

    def _start_read(self) -> None:
        batch: list[tuple[K, asyncio.Future[V | None]]] = []
        while self._waiting and len(batch) < MAX_KEYS_PER_READ:
            key, future = self._waiting.popleft()
            WAITING.dec()
            if not future.done():  # not given up on (its socket's task was cancelled)
                batch.append((key, future))
        if not batch:
            return
        self._running += 1
        self._last_start = time.monotonic()
        task = asyncio.get_running_loop().create_task(self._read_for(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read_for(self, batch: list[tuple[K, asyncio.Future[V | None]]]) -> None:
        started = time.monotonic()
        try:
            values = await self._read(list(dict.fromkeys(key for key, _ in batch)))
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        finally:
            self._running -= 1
            self._read_seconds = _smoothed(self._read_seconds, time.monotonic() - started)
            READS.inc()
            READ_KEYS.inc(len(batch))
            if self._running == 0 and self._waiting and not self._starting:
                self._schedule()
        for key, future in batch:
            if not future.done():
                future.set_result(values.get(key))

    def _refuse(self) -> None:
        self.refused += 1
        REFUSED.inc()
