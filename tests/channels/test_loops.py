"""channels.loops.Loop: passes on a driven clock, wake, backoff after failures, stop."""

from __future__ import annotations

import asyncio
import math

import pytest

from channels.loops import Loop, ManualClock

DEADLINE = 5.0


async def test_passes_run_on_the_clock_and_a_pass_sets_its_next_time() -> None:
    clock = ManualClock()
    wanted: list[float | None] = [None, 10.0, None]
    ran: list[float] = []

    async def step() -> float | None:
        ran.append(clock.now())
        return wanted.pop(0) if wanted else None

    loop = Loop("test", step, interval=3.0, clock=clock)
    loop.start()
    try:
        async with asyncio.timeout(DEADLINE):
            await asyncio.sleep(0)
            assert ran == []  # the first pass waits one interval
            clock.advance(3.0)
            await loop.wait_passes(1)
            clock.advance(3.0)  # the first pass asked for the interval
            await loop.wait_passes(2)
            clock.advance(9.0)  # the second asked for 10 s: not yet
            for _ in range(5):
                await asyncio.sleep(0)
            assert loop.passes == 2
            clock.advance(1.0)
            await loop.wait_passes(3)
        assert ran == [3.0, 6.0, 16.0]
    finally:
        await loop.stop()
    assert not loop.running


async def test_a_wake_runs_a_pass_now_and_first_delay_zero_runs_one_at_start() -> None:
    clock = ManualClock()
    loop = Loop("test", _nothing, interval=math.inf, first_delay=0, clock=clock)
    loop.start()
    try:
        async with asyncio.timeout(DEADLINE):
            await loop.wait_passes(1)
            loop.wake()
            await loop.wait_passes(2)
            loop.wake()
            await loop.wait_passes(3)
        assert clock.now() == 0.0  # no time had to pass
    finally:
        await loop.stop()


async def test_failed_passes_back_off_exponentially_and_a_success_resets(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    outcomes = [False, False, False, True, False]
    failures: list[int] = []

    async def step() -> None:
        if not outcomes.pop(0):
            raise RuntimeError("down")

    loop = Loop(
        "flaky",
        step,
        interval=1.0,
        first_delay=0,
        backoff_base=1.0,
        backoff_max=4.0,
        clock=clock,
        on_failure=failures.append,
    )
    loop.start()
    try:
        async with asyncio.timeout(DEADLINE):
            await loop.wait_passes(1)
            assert loop.failures == 1
            # Backoffs are jittered between half and all of 1, 2, 4 s: stepping by the ceiling always reaches them,
            # and a wake does not cut a backoff short.
            loop.wake()
            for _ in range(5):
                await asyncio.sleep(0)
            assert loop.passes == 1
            clock.advance(1.0)
            await loop.wait_passes(2)
            clock.advance(2.0)
            await loop.wait_passes(3)
            assert loop.failures == 3
            clock.advance(4.0)
            await loop.wait_passes(4)
            assert loop.failures == 0  # the fourth pass succeeded
            clock.advance(1.0)
            await loop.wait_passes(5)
        assert failures == [1, 2, 3, 1]
        assert "flaky: pass failed (3 in a row)" in caplog.text
    finally:
        await loop.stop()


async def test_stop_cancels_a_pass_in_flight() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def step() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    loop = Loop("test", step, interval=1.0, first_delay=0)
    loop.start()
    async with asyncio.timeout(DEADLINE):
        await started.wait()
        await loop.stop()
    assert cancelled.is_set() and not loop.running


async def _nothing() -> None:
    return None


async def test_a_loop_woken_and_stopped_in_the_same_turn_stops() -> None:
    # On Python 3.11, asyncio.wait_for returned the woken wait instead of raising the cancel that came in the same
    # turn: the loop went on and `stop` waited for it forever (a hub's close hung in CI this way).
    passes = 0

    async def step() -> None:
        nonlocal passes
        passes += 1

    loop = Loop("woken-and-stopped", step, interval=30)  # the real clock: its wait is what is under test
    loop.start()
    await asyncio.sleep(0)  # the task is waiting for its first pass

    loop.wake()
    async with asyncio.timeout(5):
        await loop.stop()

    assert not loop.running and passes == 0
