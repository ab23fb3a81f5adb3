"""One way to run a background loop: start, stop, wake, back off after failures, on a clock tests can drive.

Every periodic job of Tandem (the outbox relay, webhook and digest workers, session sweeps, the hub's and the note
rooms' housekeeping) is a `Loop` around one *pass*: an async function that does a round of work and says when it
wants to run again. The loop owns what each job used to write by hand: the task, cancellation on `stop`, an early
run on `wake`, logging a failed pass and retrying after an exponential, jittered backoff (a failing dependency is
not hammered, and nodes do not retry in step), and a count of finished passes that tests wait on (in process:
`Loop.wait_passes`; from outside: ``tandem_loop_passes_total`` on /metrics).

Time comes from a `Clock`: `MonotonicClock` in production; tests pass a `ManualClock` and `advance` it, so a job due
in an hour runs now, and no test sleeps for a period it hopes is long enough.

This module lives in channels/ because the hub uses it; crdt/ and server/ import it too (channels/ imports nothing
of theirs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from channels import metrics

log = logging.getLogger(__name__)

# What a pass returns: seconds until the next pass, or None for the loop's interval.
Pass = Callable[[], Awaitable[float | None]]


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic scale (only differences mean anything)."""
        ...

    async def wait(self, seconds: float, wake: asyncio.Event) -> None:
        """Return once ``seconds`` have passed on this clock or ``wake`` is set, whichever comes first."""
        ...


class MonotonicClock:
    """The real clock: `time.monotonic` and the event loop's timers."""

    def now(self) -> float:
        return time.monotonic()

    async def wait(self, seconds: float, wake: asyncio.Event) -> None:
        if wake.is_set() or seconds <= 0:
            return
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that lands in the turn the event is
        # set (it returns the result instead), and the loop's `stop` then waited forever for a task that went on.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(None if math.isinf(seconds) else seconds):
                await wake.wait()


class ManualClock:
    """A clock that only moves when a test calls `advance`: waits end when their time is reached or on a wake."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._moved = asyncio.Event()

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds
        self._moved.set()
        self._moved = asyncio.Event()

    async def wait(self, seconds: float, wake: asyncio.Event) -> None:
        deadline = self._now + seconds
        while self._now < deadline and not wake.is_set():
            moved = asyncio.ensure_future(self._moved.wait())
            woken = asyncio.ensure_future(wake.wait())
            try:
                await asyncio.wait({moved, woken}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                moved.cancel()
                woken.cancel()


class Loop:
    """Runs ``step`` over and over in a task of its own until `stop`.

    Args:
        name: the task's name, and what the log says when a pass fails.
        step: one pass; returns the seconds until the next one (``None``: ``interval``).
        interval: seconds between passes (``math.inf``: only when woken).
        first_delay: seconds before the first pass (default ``interval``; 0 runs one pass right away).
        backoff_base: the wait after the first failed pass in a row, doubled for each further one (default
            ``interval``), up to ``backoff_max`` (default ``max(interval, backoff_base)``), with jitter (half to all).
            A wake does not cut a backoff short.
        clock: where time comes from (`MonotonicClock` unless a test drives it).
        on_failure: called with the count of failures in a row after each failed pass (metrics).
    """

    def __init__(
        self,
        name: str,
        step: Pass,
        *,
        interval: float,
        first_delay: float | None = None,
        backoff_base: float | None = None,
        backoff_max: float | None = None,
        clock: Clock | None = None,
        on_failure: Callable[[int], None] | None = None,
    ) -> None:
        self.name = name
        self.step = step
        self.interval = interval
        self.first_delay = interval if first_delay is None else first_delay
        self.backoff_base = interval if backoff_base is None else backoff_base
        self.backoff_max = max(interval, self.backoff_base) if backoff_max is None else backoff_max
        self.clock: Clock = clock or MonotonicClock()
        self.on_failure = on_failure
        self.passes = 0  # finished passes, failed ones included
        self.failures = 0  # failed passes in a row
        self._wake = asyncio.Event()
        self._never = asyncio.Event()  # what a backoff waits on: nothing cuts it short
        self._passed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Cancel the loop (a pass in flight is cancelled too) and wait for it to end."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def wake(self) -> None:
        """Run the next pass now rather than at its time (a pass running now is followed by one more)."""
        self._wake.set()

    async def wait_passes(self, count: int) -> None:
        """Wait until ``count`` passes in all have finished (callers bound it with a deadline)."""
        async with self._passed:
            await self._passed.wait_for(lambda: self.passes >= count)

    def backoff(self, failures: int) -> float:
        ceiling = min(self.backoff_max, self.backoff_base * 2.0 ** min(failures - 1, 30))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    async def _run(self) -> None:
        delay = self.first_delay
        while True:
            await self.clock.wait(delay, self._never if self.failures else self._wake)
            self._wake.clear()
            try:
                wanted = await self.step()
            except Exception:
                self.failures += 1
                delay = self.backoff(self.failures)
                log.warning(
                    "%s: pass failed (%d in a row); retrying in %.2fs", self.name, self.failures, delay, exc_info=True
                )
                if self.on_failure is not None:
                    self.on_failure(self.failures)
            else:
                self.failures = 0
                delay = self.interval if wanted is None else max(0.0, wanted)
            metrics.LOOP_PASSES.labels(self.name, "error" if self.failures else "ok").inc()
            async with self._passed:
                self.passes += 1
                self._passed.notify_all()
