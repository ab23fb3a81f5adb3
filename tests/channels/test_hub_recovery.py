"""Recovery: a client resubscribing with its last position gets exactly what it missed, or ``reload``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from channels.backends.memory import MemoryBroker
from channels.broker import Broker, HistoryOptions, StreamPosition
from channels.hub import HubSettings
from tests.channels.conftest import HubFactory, wait_until
from tests.channels.hubkit import HubClient, InstrumentedBroker

CHANNEL = "project:12:staff"


@pytest.mark.parametrize("gate_after_read", [False, True], ids=["history-read-late", "history-read-early"])
async def test_missed_events_arrive_exactly_once_in_order_while_live_events_race(
    broker: Broker, make_hub: HubFactory, gate_after_read: bool
) -> None:
    slow_history = InstrumentedBroker(broker)
    hub = await make_hub(broker=slow_history)
    watcher = HubClient(hub, "watcher")
    await watcher.subscribe(CHANNEL)
    for n in range(1, 11):
        position = await hub.publish(CHANNEL, {"n": n})
    await watcher.transport.wait_for_offsets(CHANNEL, 10)

    slow_history.history_gate = asyncio.Event()
    slow_history.gate_after_read = gate_after_read
    returning = HubClient(hub, "returning")
    subscribing = asyncio.create_task(returning.subscribe(CHANNEL, since=StreamPosition(3, position.epoch)))
    async with asyncio.timeout(5):
        await slow_history.history_entered.wait()
    for n in range(11, 16):  # live while the returning client's history read is in flight
        await hub.publish(CHANNEL, {"n": n})
    await watcher.transport.wait_for_offsets(CHANNEL, 15)
    slow_history.history_gate.set()
    async with asyncio.timeout(5):
        reply = await subscribing
    for n in range(16, 21):
        await hub.publish(CHANNEL, {"n": n})

    assert (reply["type"], reply["recovered"], reply["reload"]) == ("subscribed", True, False)
    assert await returning.transport.wait_for_offsets(CHANNEL, 20) == list(range(4, 21))
    assert [e["data"]["n"] for e in returning.events(CHANNEL)] == list(range(4, 21))
    frames = returning.transport.frames()
    assert frames[0]["type"] == "subscribed"  # missed events follow the reply, never precede it


async def test_resubscribe_with_nothing_missed_is_recovered_and_empty(make_hub: HubFactory) -> None:
    hub = await make_hub()
    position = await hub.publish(CHANNEL, {"n": 1})
    client = HubClient(hub)

    reply = await client.subscribe(CHANNEL, since=position)
    await hub.publish(CHANNEL, {"n": 2})

    assert (reply["recovered"], reply["reload"]) == (True, False)
    assert await client.transport.wait_for_offsets(CHANNEL, 2) == [2]


async def test_reload_when_history_no_longer_reaches_back(make_hub: HubFactory) -> None:
    hub = await make_hub(settings=HubSettings(history=HistoryOptions(size=5, ttl_seconds=60)))
    for n in range(20):
        position = await hub.publish(CHANNEL, {"n": n})
    client = HubClient(hub)

    reply = await client.subscribe(CHANNEL, since=StreamPosition(2, position.epoch))
    await hub.publish(CHANNEL, {"n": 20})

    assert (reply["recovered"], reply["reload"]) == (False, True)
    assert reply["position"] == {"offset": 20, "epoch": position.epoch}
    assert await client.transport.wait_for_offsets(CHANNEL, 21) == [21]


async def test_reload_when_the_epoch_changed(make_hub: HubFactory) -> None:
    hub = await make_hub()
    await hub.publish(CHANNEL, {"n": 1})
    client = HubClient(hub)

    reply = await client.subscribe(CHANNEL, since=StreamPosition(1, "another-epoch"))

    assert (reply["recovered"], reply["reload"]) == (False, True)
    assert client.events(CHANNEL) == []


async def test_reload_when_more_was_missed_than_the_recovery_limit(make_hub: HubFactory) -> None:
    hub = await make_hub(settings=HubSettings(recovery_limit=5))
    for n in range(12):
        position = await hub.publish(CHANNEL, {"n": n})
    client = HubClient(hub)

    reply = await client.subscribe(CHANNEL, since=StreamPosition(1, position.epoch))

    assert reply["reload"] is True
    await asyncio.sleep(0.05)
    assert client.events(CHANNEL) == []


async def test_lost_live_publications_are_filled_from_history() -> None:
    from channels.hub import Hub
    from tests.channels.hubkit import allow_all

    lossy = InstrumentedBroker(MemoryBroker())
    lossy.drop = lambda pub: pub.offset in (3, 4, 7)  # as if pub/sub lost them during a blip
    hub = Hub(lossy, authorize=allow_all)
    await hub.start()
    try:
        client = HubClient(hub)
        await client.subscribe(CHANNEL)

        for n in range(1, 9):
            await hub.publish(CHANNEL, {"n": n})

        assert await client.transport.wait_for_offsets(CHANNEL, 8) == list(range(1, 9))
        assert [e["data"]["n"] for e in client.events(CHANNEL)] == list(range(1, 9))
        assert client.transport.of_type("reload") == []
    finally:
        await hub.close()


async def test_lost_publications_beyond_history_make_subscribers_reload() -> None:
    from channels.hub import Hub
    from tests.channels.hubkit import allow_all

    lossy = InstrumentedBroker(MemoryBroker())
    lossy.drop = lambda pub: 2 <= pub.offset <= 8
    hub = Hub(lossy, authorize=allow_all, settings=HubSettings(history=HistoryOptions(size=3, ttl_seconds=60)))
    await hub.start()
    try:
        client = HubClient(hub)
        await client.subscribe(CHANNEL)
        for n in range(1, 11):
            await hub.publish(CHANNEL, {"n": n})
        await client.transport.wait_for_frame(lambda f: f["type"] == "reload")
        await hub.publish(CHANNEL, {"n": 11})
        await client.transport.wait_for_offsets(CHANNEL, 11)

        frames = [f for f in client.transport.frames() if f["type"] in ("event", "reload")]
        reload_at = next(i for i, f in enumerate(frames) if f["type"] == "reload")
        before = [f["offset"] for f in frames[:reload_at]]
        after = [f["offset"] for f in frames[reload_at + 1 :]]
        assert before == [1]
        assert after == list(range(frames[reload_at]["position"]["offset"] + 1, 12))
    finally:
        await hub.close()


async def test_two_connections_recovering_at_once_each_get_their_own_range(make_hub: HubFactory) -> None:
    hub = await make_hub()
    for n in range(1, 11):
        position = await hub.publish(CHANNEL, {"n": n})
    a, b = HubClient(hub, "a"), HubClient(hub, "b")

    await asyncio.gather(
        a.subscribe(CHANNEL, since=StreamPosition(2, position.epoch)),
        b.subscribe(CHANNEL, since=StreamPosition(7, position.epoch)),
    )
    await hub.publish(CHANNEL, {"n": 11})

    assert await a.transport.wait_for_offsets(CHANNEL, 11) == list(range(3, 12))
    assert await b.transport.wait_for_offsets(CHANNEL, 11) == list(range(8, 12))
    await wait_until(lambda: hub.local_subscribers(CHANNEL) == 2)


async def resumed(client: HubClient, reply: dict[str, Any], last: int) -> list[int]:
    assert (reply["type"], reply["recovered"], reply["reload"]) == ("subscribed", True, False)
    return await client.transport.wait_for_offsets(CHANNEL, last)


async def test_subscribers_resuming_together_share_one_history_read_and_each_gets_what_it_missed(
    broker: Broker, make_hub: HubFactory
) -> None:
    """A reconnect storm: one history read (held in flight while they arrive) serves every subscriber resuming at or
    after its ``since``; each still gets exactly its own missed events, once, in order, then live ones."""
    counted = InstrumentedBroker(broker)
    hub = await make_hub(broker=counted)
    for n in range(1, 11):
        position = await hub.publish(CHANNEL, {"n": n})
    counted.history_gate = asyncio.Event()
    sinces = [3] * 5 + [5] * 5 + [10] * 2  # the first to arrive asks the read, from 3
    clients = [HubClient(hub, f"u{i}") for i in range(len(sinces))]
    subscribing = [
        asyncio.create_task(client.subscribe(CHANNEL, since=StreamPosition(since, position.epoch)))
        for client, since in zip(clients, sinces, strict=True)
    ]
    async with asyncio.timeout(5):
        await counted.history_entered.wait()
    await wait_until(lambda: hub.local_subscribers(CHANNEL) == 0 and len(counted.subscribes) == 1, 5, "all asked")
    for _ in range(10):  # every subscribe reaches the read in flight
        await asyncio.sleep(0)
    counted.history_gate.set()
    async with asyncio.timeout(5):
        replies = await asyncio.gather(*subscribing)
    await hub.publish(CHANNEL, {"n": 11})
    for client, since, reply in zip(clients, sinces, replies, strict=True):
        assert await resumed(client, reply, 11) == list(range(since + 1, 12))
    assert counted.history_calls == 1

    # Something new was delivered: whoever resumes now needs it from history too, so reads again.
    late = HubClient(hub, "late")
    assert await resumed(late, await late.subscribe(CHANNEL, since=StreamPosition(3, position.epoch)), 11) == list(
        range(4, 12)
    )
    assert counted.history_calls == 2


async def test_a_subscriber_resuming_from_before_the_shared_read_reads_its_own(
    broker: Broker, make_hub: HubFactory
) -> None:
    counted = InstrumentedBroker(broker)
    hub = await make_hub(broker=counted)
    for n in range(1, 11):
        position = await hub.publish(CHANNEL, {"n": n})
    first, earlier = HubClient(hub, "first"), HubClient(hub, "earlier")
    assert await resumed(first, await first.subscribe(CHANNEL, since=StreamPosition(6, position.epoch)), 10) == [
        7,
        8,
        9,
        10,
    ]
    reply = await earlier.subscribe(CHANNEL, since=StreamPosition(2, position.epoch))
    assert await resumed(earlier, reply, 10) == list(range(3, 11))
    assert counted.history_calls == 2


async def test_a_subscriber_leaving_during_a_shared_read_does_not_fail_the_others(
    broker: Broker, make_hub: HubFactory
) -> None:
    counted = InstrumentedBroker(broker)
    hub = await make_hub(broker=counted)
    for n in range(1, 6):
        position = await hub.publish(CHANNEL, {"n": n})
    counted.history_gate = asyncio.Event()
    leaving, staying = HubClient(hub, "leaving"), HubClient(hub, "staying")
    since = StreamPosition(1, position.epoch)
    left = asyncio.create_task(leaving.subscribe(CHANNEL, since=since))
    async with asyncio.timeout(5):
        await counted.history_entered.wait()
    stays = asyncio.create_task(staying.subscribe(CHANNEL, since=since))
    for _ in range(10):
        await asyncio.sleep(0)
    left.cancel()  # its socket's task ends while the read it asked is in flight
    await hub.disconnect(leaving.conn)
    counted.history_gate.set()
    async with asyncio.timeout(5):
        assert await resumed(staying, await stays, 5) == [2, 3, 4, 5]
    assert counted.history_calls == 1
