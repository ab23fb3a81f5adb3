"""Hub behaviour users notice: one broker subscription, encode once, order, limits, errors, forced removal."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

import channels.channel
from channels.backends.memory import MemoryBroker
from channels.broker import Broker, Publication
from channels.connection import ConnectionLimits
from channels.hub import Hub, HubSettings
from channels.protocol import CloseCode, encode_event
from tests.channels.conftest import BrokerFactory, FakeTransport, HubFactory, wait_until
from tests.channels.hubkit import HubClient, InstrumentedBroker, two_nodes_subscribed

CHANNEL = "project:12:staff"


async def test_one_broker_subscription_per_channel_regardless_of_local_subscribers(
    broker: Broker, make_hub: HubFactory
) -> None:
    counting = InstrumentedBroker(broker)
    hub = await make_hub(broker=counting)
    clients = [HubClient(hub, f"u{i}") for i in range(300)]

    replies = await asyncio.gather(*(c.subscribe(CHANNEL) for c in clients))
    await hub.publish(CHANNEL, {"n": 1})

    assert {r["type"] for r in replies} == {"subscribed"}
    assert counting.subscribes[CHANNEL] == 1
    for c in clients:
        await c.transport.wait_for_offsets(CHANNEL, 1)
    await asyncio.gather(*(c.request({"type": "unsubscribe", "channel": CHANNEL}) for c in clients))
    await wait_until(lambda: counting.unsubscribes[CHANNEL] == 1)
    assert hub.local_subscribers(CHANNEL) == 0


async def test_a_publication_is_encoded_once_for_all_subscribers(
    make_hub: HubFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = await make_hub()
    clients = [HubClient(hub, f"u{i}") for i in range(50)]
    for c in clients:
        await c.subscribe(CHANNEL)
    encoded: list[Publication] = []
    real_encode = encode_event

    def counting_encode(pub: Publication) -> str:
        encoded.append(pub)
        return real_encode(pub)

    monkeypatch.setattr(channels.channel, "encode_event", counting_encode)
    for n in range(3):
        await hub.publish(CHANNEL, {"n": n})
    for c in clients:
        await c.transport.wait_for_offsets(CHANNEL, 3)

    assert [p.offset for p in encoded] == [1, 2, 3]
    assert len({json.dumps(c.events(CHANNEL)) for c in clients}) == 1


async def test_every_subscriber_gets_every_event_in_order_once(make_hub: HubFactory) -> None:
    hub = await make_hub()
    clients = [HubClient(hub, f"u{i}") for i in range(3)]
    for c in clients:
        await c.subscribe(CHANNEL)

    await asyncio.gather(*(hub.publish(CHANNEL, {"n": n}) for n in range(100)))

    for c in clients:
        assert await c.transport.wait_for_offsets(CHANNEL, 100) == list(range(1, 101))


async def test_subscribed_reply_carries_the_position_and_only_later_events_follow(make_hub: HubFactory) -> None:
    hub = await make_hub()
    for n in range(3):
        position = await hub.publish(CHANNEL, {"n": n})
    client = HubClient(hub)

    reply = await client.subscribe(CHANNEL)
    await hub.publish(CHANNEL, {"n": 3})

    assert reply["position"] == {"offset": 3, "epoch": position.epoch}
    assert (reply["recovered"], reply["reload"]) == (False, False)
    assert await client.transport.wait_for_offsets(CHANNEL, 4) == [4]
    assert client.events(CHANNEL)[0]["data"] == {"n": 3}


@pytest.mark.parametrize("broker_factory", ["redis"], indirect=True)
async def test_hubs_on_two_nodes_deliver_each_others_publications(
    broker_factory: BrokerFactory, make_hub: HubFactory
) -> None:
    hub_a, hub_b, on_a, on_b = await two_nodes_subscribed(broker_factory, make_hub, CHANNEL)

    await hub_a.publish(CHANNEL, {"from": "a"})
    await hub_b.publish(CHANNEL, {"from": "b"})

    for c in (on_a, on_b):
        await c.transport.wait_for_offsets(CHANNEL, 2)
        assert [e["data"]["from"] for e in c.events(CHANNEL)] == ["a", "b"]


async def test_slow_consumer_is_closed_while_others_keep_receiving(make_hub: HubFactory) -> None:
    hub = await make_hub()
    fast = [HubClient(hub, f"fast{i}") for i in range(2)]
    slow = HubClient(hub, "slow", limits=ConnectionLimits(max_queue_messages=5))
    for c in [*fast, slow]:
        await c.subscribe(CHANNEL)
    slow.transport._gate.clear()  # the slow client stops reading

    for n in range(50):
        await hub.publish(CHANNEL, {"n": n})

    for c in fast:
        assert await c.transport.wait_for_offsets(CHANNEL, 50) == list(range(1, 51))
    await wait_until(lambda: slow.transport.closed is not None)
    assert slow.transport.closed == (4409, "slow consumer: send queue overflow")
    await wait_until(lambda: hub.local_subscribers(CHANNEL) == 2)
    assert slow.conn not in hub.connections


async def test_max_subscriptions_per_connection(make_hub: HubFactory) -> None:
    hub = await make_hub()
    client = HubClient(hub, limits=ConnectionLimits(max_subscriptions=2))
    await client.subscribe("project:1:staff")
    await client.subscribe("project:2:staff")

    refused = await client.subscribe("project:3:staff")
    await client.request({"type": "unsubscribe", "channel": "project:1:staff"})
    accepted = await client.subscribe("project:3:staff")

    assert (refused["type"], refused["code"]) == ("error", "too_many_subscriptions")
    assert accepted["type"] == "subscribed"


async def test_duplicate_subscribe_is_an_error(make_hub: HubFactory) -> None:
    hub = await make_hub()
    client = HubClient(hub)
    await client.subscribe(CHANNEL)

    again = await client.subscribe(CHANNEL)

    assert again["code"] == "already_subscribed"


async def test_flooding_frames_closes_with_rate_limited(make_hub: HubFactory) -> None:
    hub = await make_hub()
    transport = FakeTransport()
    from channels.connection import Connection

    conn = Connection(transport, "flooder", limits=ConnectionLimits(frame_burst=5, frames_per_second=1))

    async def frames() -> AsyncIterator[str]:
        for i in range(20):
            yield json.dumps({"type": "ping", "id": i})

    async with asyncio.timeout(5):
        await hub.serve(conn, frames())
        await conn.wait_closed()

    assert transport.closed is not None and transport.closed[0] == CloseCode.RATE_LIMITED
    assert len(transport.of_type("pong")) == 5
    assert conn not in hub.connections


async def test_oversized_frame_closes_with_message_too_big(make_hub: HubFactory) -> None:
    hub = await make_hub()
    transport = FakeTransport()
    from channels.connection import Connection

    conn = Connection(transport, "u1", limits=ConnectionLimits(max_frame_bytes=100))

    async def frames() -> AsyncIterator[str]:
        yield json.dumps({"type": "ping", "pad": "x" * 200})

    async with asyncio.timeout(5):
        await hub.serve(conn, frames())
        await conn.wait_closed()

    assert transport.closed is not None and transport.closed[0] == 1009


async def test_malformed_and_unknown_frames_get_error_frames_and_the_connection_stays(
    make_hub: HubFactory,
) -> None:
    hub = await make_hub()
    client = HubClient(hub)

    await client.hub.handle_frame(client.conn, "{not json")
    unknown = await client.request({"type": "teleport"})
    bad_channel = await client.request({"type": "subscribe", "channel": "Nope"})
    not_subscribed = await client.request({"type": "unsubscribe", "channel": CHANNEL})
    pong = await client.request({"type": "ping"})

    errors = client.transport.of_type("error")
    assert errors[0]["code"] == "bad_request" and "id" not in errors[0]
    assert unknown["code"] == "unknown_type"
    assert bad_channel["code"] == "unknown_channel"
    assert not_subscribed["code"] == "not_subscribed"
    assert pong["type"] == "pong"
    assert not client.conn.closed


async def test_forbidden_channel_gets_an_error_and_no_events(broker: Broker, make_hub: HubFactory) -> None:
    async def staff_only(principal: object, channel: str) -> bool:
        return not channel.endswith(":staff") or principal == "staff-user"

    counting = InstrumentedBroker(broker)
    hub = await make_hub(broker=counting, authorize=staff_only)
    customer, staff = HubClient(hub, "customer"), HubClient(hub, "staff-user")

    refused = await customer.subscribe(CHANNEL)
    assert (refused["type"], refused["code"]) == ("error", "forbidden")
    assert counting.subscribes[CHANNEL] == 0
    await staff.subscribe(CHANNEL)
    await hub.publish(CHANNEL, {"secret": "internal note"})

    await staff.transport.wait_for_offsets(CHANNEL, 1)
    await asyncio.sleep(0.05)
    assert customer.events(CHANNEL) == []
    assert "internal note" not in "".join(customer.transport.messages)
    assert customer.conn.subscriptions == {}


async def test_unsubscribe_where_removes_a_member_from_matching_channels(make_hub: HubFactory) -> None:
    hub = await make_hub()
    removed, kept = HubClient(hub, "user:1"), HubClient(hub, "user:2")
    for c in (removed, kept):
        for channel in ("project:12:staff", "project:12:shared"):
            await c.subscribe(channel)
    await removed.subscribe("user:1")

    count = await hub.unsubscribe_where(lambda p: p == "user:1", lambda ch: ch.startswith("project:12:"))
    await hub.publish("project:12:staff", {"n": 1})
    await hub.publish("user:1", {"n": 1})

    assert count == 2
    await removed.transport.wait_for_offsets("user:1", 1)  # queued after the forced unsubscribes
    forced = removed.transport.of_type("unsubscribed")
    assert sorted((f["channel"], f["reason"]) for f in forced) == [
        ("project:12:shared", "forbidden"),
        ("project:12:staff", "forbidden"),
    ]
    await kept.transport.wait_for_offsets("project:12:staff", 1)
    assert removed.events("project:12:staff") == []


async def test_kick_cancels_a_subscribe_still_waiting_for_authorization(broker: Broker, make_hub: HubFactory) -> None:
    release = asyncio.Event()

    async def slow_authorize(principal: object, channel: str) -> bool:
        await release.wait()
        return True

    counting = InstrumentedBroker(broker)
    hub = await make_hub(broker=counting, authorize=slow_authorize)
    client = HubClient(hub)
    pending = asyncio.create_task(client.send({"type": "subscribe", "id": 1, "channel": CHANNEL}))
    await wait_until(lambda: CHANNEL in client.conn.subscriptions)

    assert await hub.kick(CHANNEL, lambda conn: True) == 1
    release.set()
    async with asyncio.timeout(5):
        await pending

    forced = await client.transport.wait_for_frame(lambda f: f["type"] == "unsubscribed")
    assert forced["reason"] == "forbidden"
    assert client.transport.of_type("subscribed") == []
    assert counting.subscribes[CHANNEL] == 0


async def test_disconnect_releases_the_broker_subscription(broker: Broker, make_hub: HubFactory) -> None:
    counting = InstrumentedBroker(broker)
    hub = await make_hub(broker=counting)
    client = HubClient(hub)
    await client.subscribe(CHANNEL)

    await hub.disconnect(client.conn)

    await wait_until(lambda: counting.unsubscribes[CHANNEL] == 1)
    assert hub.local_subscribers(CHANNEL) == 0
    assert client.transport.closed == (1000, "")


async def test_idle_connections_are_closed_with_timeout(make_hub: HubFactory) -> None:
    hub = await make_hub(settings=HubSettings(idle_timeout_seconds=0.2, housekeeping_interval_seconds=0.05))
    idle, chatty = HubClient(hub, "idle"), HubClient(hub, "chatty")

    for _ in range(6):
        await chatty.request({"type": "ping"})
        await asyncio.sleep(0.05)

    await wait_until(lambda: idle.transport.closed is not None)
    assert idle.transport.closed == (4408, "no frames from client")
    assert chatty.transport.closed is None


async def test_close_sends_going_away_to_every_connection() -> None:
    hub = Hub(MemoryBroker(), authorize=lambda p, c: _true())
    await hub.start()
    clients = [HubClient(hub, f"u{i}") for i in range(3)]
    await clients[0].subscribe(CHANNEL)

    async with asyncio.timeout(5):
        await hub.close()

    assert [c.transport.closed for c in clients] == [(1001, "server shutting down")] * 3
    assert hub.connections == []


async def _true() -> bool:
    return True
