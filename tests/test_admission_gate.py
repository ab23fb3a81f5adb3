"""`server.live.admission_gate`: bounded admission (a bounded number at once, a bounded queue, a bounded wait), and
sessions' lookups joined into reads of many keys."""

from __future__ import annotations

import asyncio

import pytest

from server.live import admission_gate
from server.live.admission_gate import AdmissionBusy, AdmissionGate, JoinedReads


async def _hold(gate: AdmissionGate, held: asyncio.Event, release: asyncio.Event) -> None:
    """Take a slot, say so (``held``), keep it until ``release``."""
    async with gate.slot():
        held.set()
        await release.wait()


async def test_at_most_concurrency_run_at_once_and_the_rest_wait_their_turn() -> None:
    gate = AdmissionGate(concurrency=3, max_waiting=100, wait_seconds=5)
    running = peak = 0

    async def admit() -> None:
        nonlocal running, peak
        async with gate.slot():
            running += 1
            peak = max(peak, running)
            for _ in range(3):  # stay a few loop turns, so the others pile up behind the slots
                await asyncio.sleep(0)
            running -= 1

    async with asyncio.timeout(5):
        await asyncio.gather(*(admit() for _ in range(30)))
    assert peak == 3
    assert gate.refused == 0 and gate.waiting == 0


async def test_a_full_queue_turns_newcomers_away_at_once() -> None:
    gate = AdmissionGate(concurrency=1, max_waiting=2, wait_seconds=5)
    release = asyncio.Event()
    held = asyncio.Event()
    tasks = [asyncio.create_task(_hold(gate, held, release)) for _ in range(3)]  # one runs, two wait
    await until(lambda: held.is_set() and gate.waiting == 2)
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
    release, held = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(_hold(gate, held, release))
    await held.wait()
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
    release, held = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(_hold(gate, held, release))
    await held.wait()
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


# -- joined reads ------------------------------------------------------------------------------------------------


class Store:
    """A read of many keys at once (one "statement"), held back until ``release`` is set when ``hold`` is."""

    def __init__(self, values: dict[str, int], *, hold: bool = False) -> None:
        self.values = values
        self.reads: list[list[str]] = []
        self.running = self.peak = 0
        self.release = asyncio.Event()
        if not hold:
            self.release.set()
        self.fail_next = False

    async def read(self, keys: object) -> dict[str, int]:
        assert isinstance(keys, list)
        self.reads.append(keys)
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await self.release.wait()
            if self.fail_next:
                self.fail_next = False
                raise RuntimeError("database went away")
            return {key: self.values[key] for key in keys if key in self.values}
        finally:
            self.running -= 1


async def until(condition: object, seconds: float = 2.0) -> None:
    async with asyncio.timeout(seconds):
        while not callable(condition) or not condition():
            await asyncio.sleep(0)


async def test_lookups_asked_together_are_answered_by_one_read_each_with_its_own_value() -> None:
    store = Store({f"s{i}": i for i in range(50)})
    reads = JoinedReads(store.read, concurrency=8, max_waiting=256, wait_seconds=5)
    keys = [f"s{i}" for i in range(50)] + ["s7", "unknown"]
    async with asyncio.timeout(5):
        values = await asyncio.gather(*(reads.get(key) for key in keys))
    assert values == [*range(50), 7, None]
    assert store.reads == [[f"s{i}" for i in range(50)] + ["unknown"]]  # one read, each key once, in order asked
    assert reads.refused == 0 and reads.waiting == 0


async def test_a_lookup_asked_while_a_read_runs_waits_for_the_next_read_and_one_read_runs_at_a_time() -> None:
    store = Store({"a": 1, "b": 2, "c": 3}, hold=True)
    reads = JoinedReads(store.read, concurrency=8, max_waiting=256, wait_seconds=5)
    first = asyncio.create_task(reads.get("a"))
    await until(lambda: store.reads == [["a"]])
    later = [asyncio.create_task(reads.get(key)) for key in ("b", "c", "a")]
    await until(lambda: reads.waiting == 3)
    assert store.reads == [["a"]]  # the first read is not answered from, nor joined by, what came after it
    store.release.set()
    async with asyncio.timeout(5):
        assert await first == 1
        assert await asyncio.gather(*later) == [2, 3, 1]
    assert store.reads == [["a"], ["b", "c", "a"]]
    assert store.peak == 1


async def test_a_full_queue_starts_another_read_rather_than_turn_sockets_away_up_to_the_reads_allowed() -> None:
    store = Store({str(i): i for i in range(20)}, hold=True)
    reads = JoinedReads(store.read, concurrency=2, max_waiting=3, wait_seconds=5)
    tasks = [asyncio.create_task(reads.get("0"))]
    await until(lambda: len(store.reads) == 1)
    tasks += [asyncio.create_task(reads.get(str(i))) for i in range(1, 8)]  # 3 wait, the 4th starts a second read
    await until(lambda: sum(t.done() for t in tasks) == 1 and len(store.reads) == 2)
    assert store.reads == [["0"], ["1", "2", "3"]] and reads.waiting == 3
    assert reads.refused == 1  # the eighth: two reads running and the queue full again
    with pytest.raises(AdmissionBusy):
        await tasks[-1]
    store.release.set()
    async with asyncio.timeout(5):
        assert list(await asyncio.gather(*tasks[:-1])) == list(range(7))
    assert store.peak == 2 and reads.waiting == 0


async def test_a_lookup_waiting_longer_than_the_wait_is_refused_and_frees_its_place() -> None:
    store = Store({"a": 1, "b": 2}, hold=True)
    reads = JoinedReads(store.read, concurrency=1, max_waiting=10, wait_seconds=0.05)
    first = asyncio.create_task(reads.get("a"))
    await until(lambda: len(store.reads) == 1)
    with pytest.raises(AdmissionBusy):
        async with asyncio.timeout(2):
            await reads.get("b")
    assert reads.waiting == 0 and reads.refused == 1
    store.release.set()
    async with asyncio.timeout(2):
        assert await first == 1
        assert await reads.get("b") == 2  # served again once reads keep up
    assert store.reads == [["a"], ["b"]]


async def test_a_failed_read_fails_its_lookups_and_the_next_read_is_made() -> None:
    store = Store({"a": 1, "b": 2})
    store.fail_next = True
    reads = JoinedReads(store.read, concurrency=8, max_waiting=256, wait_seconds=5)
    async with asyncio.timeout(5):
        failed = await asyncio.gather(reads.get("a"), reads.get("b"), return_exceptions=True)
        assert [type(f) for f in failed] == [RuntimeError, RuntimeError]
        assert [await reads.get("a"), await reads.get("b")] == [1, 2]
    assert store.reads == [["a", "b"], ["a"], ["b"]]


async def test_concurrency_zero_means_joined_reads_without_a_gate() -> None:
    store = Store({str(i): i for i in range(600)}, hold=True)
    reads = JoinedReads(store.read, concurrency=0, max_waiting=0, wait_seconds=0)
    tasks = [asyncio.create_task(reads.get(str(i))) for i in range(600)]
    await until(lambda: reads.waiting == 0 and len(store.reads) == 2)
    store.release.set()
    async with asyncio.timeout(5):
        assert list(await asyncio.gather(*tasks)) == list(range(600))
    assert [len(keys) for keys in store.reads] == [500, 100]  # at most MAX_KEYS_PER_READ in one statement
    assert reads.refused == 0


async def test_under_load_reads_begin_at_most_every_read_interval_and_a_quiet_lookup_is_read_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(admission_gate, "READ_INTERVAL", 0.3)
    store = Store({"a": 1, "b": 2, "c": 3})
    reads = JoinedReads(store.read, concurrency=8, max_waiting=256, wait_seconds=5)
    async with asyncio.timeout(0.2):  # the first read begins on the next turns, not after the interval
        assert await reads.get("a") == 1
    later = [asyncio.create_task(reads.get(key)) for key in ("b", "c")]
    for _ in range(20):
        await asyncio.sleep(0)
    assert store.reads == [["a"]] and reads.waiting == 2  # held back until the interval since the first has passed
    async with asyncio.timeout(5):
        assert list(await asyncio.gather(*later)) == [2, 3]
    assert store.reads == [["a"], ["b", "c"]]
