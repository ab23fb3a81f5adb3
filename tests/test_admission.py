"""`server.live.admission.AdmissionGate`: a bounded number admitted at once, a bounded queue, a bounded wait."""

from __future__ import annotations

import asyncio

import pytest

from server.live.admission import AdmissionBusy, AdmissionGate


async def test_at_most_concurrency_run_at_once_and_the_rest_wait_their_turn() -> None:
    gate = AdmissionGate(concurrency=3, max_waiting=100, wait_seconds=5)
    running = peak = 0

    async def admit() -> None:
        nonlocal running, peak
        async with gate.slot():
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01)
            running -= 1

    async with asyncio.timeout(5):
        await asyncio.gather(*(admit() for _ in range(30)))
    assert peak == 3
    assert gate.refused == 0 and gate.waiting == 0


async def test_a_full_queue_turns_newcomers_away_at_once() -> None:
    gate = AdmissionGate(concurrency=1, max_waiting=2, wait_seconds=5)
    release = asyncio.Event()

    async def hold() -> None:
        async with gate.slot():
            await release.wait()

    tasks = [asyncio.create_task(hold()) for _ in range(3)]  # one runs, two wait
    await asyncio.sleep(0.01)
    async with asyncio.timeout(0.5):  # refused at once, not after the wait
        with pytest.raises(AdmissionBusy):
            async with gate.slot():
                pass
    release.set()
    async with asyncio.timeout(5):
        await asyncio.gather(*tasks)
    assert gate.refused == 1


async def test_waiting_longer_than_the_wait_is_refused_and_frees_its_place() -> None:
    gate = AdmissionGate(concurrency=1, max_waiting=10, wait_seconds=0.05)
    release = asyncio.Event()

    async def hold() -> None:
        async with gate.slot():
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0.01)
    with pytest.raises(AdmissionBusy):
        async with asyncio.timeout(2), gate.slot():
            pass
    assert gate.waiting == 0
    release.set()
    async with asyncio.timeout(2):
        await holder
        async with gate.slot():  # the slot is free again
            pass


async def test_whoever_could_not_get_in_within_the_wait_is_told_at_once() -> None:
    gate = AdmissionGate(concurrency=1, max_waiting=100, wait_seconds=0.1)
    async with gate.slot():
        await asyncio.sleep(0.2)  # admissions take 0.2 s now
    release = asyncio.Event()

    async def hold() -> None:
        async with gate.slot():
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0.01)
    async with asyncio.timeout(0.05):  # not after waiting the 0.1 s in vain
        with pytest.raises(AdmissionBusy):
            async with gate.slot():
                pass
    release.set()
    async with asyncio.timeout(2):
        await holder


async def test_concurrency_zero_means_no_gate() -> None:
    gate = AdmissionGate(concurrency=0, max_waiting=0, wait_seconds=0)
    async with asyncio.timeout(1), gate.slot(), gate.slot():
        pass
