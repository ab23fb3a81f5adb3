"""Presence through the hub: joined / updated / left events, listing, heartbeats, expiry of dead nodes."""

from __future__ import annotations

import asyncio

import pytest

from channels.connection import Connection
from channels.hub import HubSettings
from channels.presence import PresenceInfo, PresenceManager
from tests.channels.conftest import BrokerFactory, HubFactory, wait_until
from tests.channels.hubkit import HubClient

CHANNEL = "project:12:staff"


def describe(conn: Connection) -> PresenceInfo:
    user = str(conn.principal)
    return PresenceInfo(client_id=conn.id, user_id=user, name=f"Name of {user}", role="staff")


async def test_join_update_list_and_leave(presence: PresenceManager, make_hub: HubFactory) -> None:
    hub = await make_hub(presence=presence, settings=HubSettings(presence_prefixes=("project:",)), describe=describe)
    ana, bo = HubClient(hub, "ana"), HubClient(hub, "bo")
    await ana.subscribe(CHANNEL)
    await ana.transport.wait_for_frame(lambda f: f.get("joined", {}).get("user_id") == "ana")
    await bo.subscribe(CHANNEL)

    joined = await ana.transport.wait_for_frame(lambda f: f.get("joined", {}).get("user_id") == "bo")
    ack = await bo.request({"type": "presence", "channel": CHANNEL, "data": {"viewing": "task:40"}})
    updated = await ana.transport.wait_for_frame(lambda f: "updated" in f)
    listed = await ana.request({"type": "presence_list", "channel": CHANNEL})
    await hub.disconnect(bo.conn)
    left = await ana.transport.wait_for_frame(lambda f: "left" in f)

    assert joined == {
        "type": "presence",
        "channel": CHANNEL,
        "joined": {"client_id": bo.conn.id, "user_id": "bo", "name": "Name of bo", "role": "staff", "data": {}},
    }
    assert ack["type"] == "ack"
    assert updated["updated"]["data"] == {"viewing": "task:40"}
    assert sorted(c["user_id"] for c in listed["clients"]) == ["ana", "bo"]
    assert left["left"]["client_id"] == bo.conn.id
    assert [i.user_id for i in await presence.list(CHANNEL)] == ["ana"]


async def test_channels_without_presence_refuse_presence_frames(
    presence: PresenceManager, make_hub: HubFactory
) -> None:
    hub = await make_hub(presence=presence, presence_enabled=lambda channel: channel.startswith("task:"))
    client = HubClient(hub)
    await client.subscribe(CHANNEL)

    reply = await client.request({"type": "presence_list", "channel": CHANNEL})
    not_subscribed = await client.request({"type": "presence_list", "channel": "task:1:shared"})

    assert reply["code"] == "presence_disabled"
    assert not_subscribed["code"] == "not_subscribed"
    assert client.transport.of_type("presence") == []


async def test_heartbeats_keep_entries_alive_and_a_dead_nodes_entries_expire(
    presence: PresenceManager, make_hub: HubFactory
) -> None:
    settings = HubSettings(
        presence_prefixes=("project:",), presence_ttl_seconds=0.5, housekeeping_interval_seconds=0.05
    )
    live_hub = await make_hub(presence=presence, settings=settings, describe=describe)
    client = HubClient(live_hub, "alive")
    await client.subscribe(CHANNEL)
    # An entry from a node that died without removing it: nobody heartbeats it.
    await presence.add(CHANNEL, PresenceInfo("ghost-conn", "ghost", "Ghost", "staff"), ttl_seconds=0.5)

    # The ghost's entry runs out; "alive"'s, written before it with the same ttl, outlives it only by heartbeats.
    async with asyncio.timeout(10):
        while "ghost" in (users := [i.user_id for i in await presence.list(CHANNEL)]):
            await asyncio.sleep(0.02)
    assert users == ["alive"]
    # And it keeps living: two more ttls' worth of housekeeping passes (heartbeats every ttl/3), counted, not slept.
    await asyncio.wait_for(live_hub.housekeeping.wait_passes(live_hub.housekeeping.passes + 20), 10)
    assert [i.user_id for i in await presence.list(CHANNEL)] == ["alive"]


async def test_presence_data_size_is_bounded(presence: PresenceManager, make_hub: HubFactory) -> None:
    hub = await make_hub(
        presence=presence, settings=HubSettings(presence_prefixes=("project:",), max_presence_bytes=50)
    )
    client = HubClient(hub)
    await client.subscribe(CHANNEL)

    reply = await client.request({"type": "presence", "channel": CHANNEL, "data": {"x": "y" * 100}})

    assert reply["code"] == "bad_request"
    await wait_until(lambda: bool(client.transport.of_type("presence")))
    assert all("updated" not in f for f in client.transport.of_type("presence"))


def lefts(client: HubClient) -> list[str]:
    return [f["left"]["client_id"] for f in client.transport.of_type("presence", CHANNEL) if "left" in f]


@pytest.mark.parametrize("broker_factory", ["redis"], indirect=True)  # three nodes: one broker each
async def test_the_entries_of_a_dead_node_are_announced_left_once_by_the_survivors(
    presence: PresenceManager, broker_factory: BrokerFactory, make_hub: HubFactory
) -> None:
    settings = HubSettings(
        presence_prefixes=("project:",), presence_ttl_seconds=0.6, housekeeping_interval_seconds=0.05
    )
    doomed, b, c = [
        await make_hub(broker=await broker_factory(), presence=presence, settings=settings, describe=describe)
        for _ in range(3)
    ]
    watcher_b, watcher_c = HubClient(b, "watcher-b"), HubClient(c, "watcher-c")
    gone, dual_on_doomed, dual_on_b = HubClient(doomed, "gone"), HubClient(doomed, "dual"), HubClient(b, "dual")
    for client in (watcher_b, watcher_c, gone, dual_on_doomed, dual_on_b):
        await client.subscribe(CHANNEL)
    await wait_until(lambda: len(watcher_c.transport.of_type("presence", CHANNEL)) >= 4, what="everyone joined")

    # The node dies: no more heartbeats, no goodbyes (its sockets never disconnect).
    await doomed.housekeeping.stop()
    dead = {gone.conn.id, dual_on_doomed.conn.id}
    for watcher in (watcher_b, watcher_c):  # ttl + ttl/3 + housekeeping, with room for a loaded machine
        await wait_until(lambda w=watcher: set(lefts(w)) == dead, within=3.0, what="left for the dead node's clients")
    # Two more ttls of heartbeats and claims on both survivors: counted in their housekeeping passes, not slept.
    async with asyncio.timeout(15):
        for hub in (b, c):
            await hub.housekeeping.wait_passes(hub.housekeeping.passes + round(2 * 0.6 / 0.05))

    for watcher in (watcher_b, watcher_c):
        assert sorted(lefts(watcher)) == sorted(dead)  # once each, though two nodes claim
    # "dual" is still here through its socket on b: its entry stays, nobody was told it left.
    listed = await watcher_c.request({"type": "presence_list", "channel": CHANNEL})
    assert sorted((e["user_id"], e["client_id"]) for e in listed["clients"]) == sorted(
        [("watcher-b", watcher_b.conn.id), ("watcher-c", watcher_c.conn.id), ("dual", dual_on_b.conn.id)]
    )


async def test_a_late_heartbeat_after_its_entry_was_announced_left_announces_joined(
    presence: PresenceManager, make_hub: HubFactory
) -> None:
    settings = HubSettings(presence_prefixes=("project:",), presence_ttl_seconds=30, housekeeping_interval_seconds=30)
    hub = await make_hub(presence=presence, settings=settings, describe=describe)
    watcher, late = HubClient(hub, "watcher"), HubClient(hub, "late")
    await watcher.subscribe(CHANNEL)
    await late.subscribe(CHANNEL)
    entry = late.conn.subscriptions[CHANNEL].presence
    assert entry is not None
    await presence.add(CHANNEL, entry, ttl_seconds=0.1)  # its node stalled: the entry ran out
    async with asyncio.timeout(10):
        while "late" in [i.user_id for i in await presence.list(CHANNEL)]:
            await asyncio.sleep(0.02)
    assert hub._presence is not None
    await hub._presence.heartbeat([watcher.conn])  # the watcher's node refreshes its own, and claims the expired
    await watcher.transport.wait_for_frame(lambda f: f.get("left", {}).get("client_id") == late.conn.id)

    await hub._presence.heartbeat(hub.connections)  # the node is back: "late" is here after all

    def joins_of_late() -> int:
        frames = watcher.transport.of_type("presence", CHANNEL)
        return len([f for f in frames if f.get("joined", {}).get("client_id") == late.conn.id])

    await wait_until(lambda: joins_of_late() == 2, what="joined again")  # its first join, and this one
    await hub._presence.heartbeat(hub.connections)  # an ordinary heartbeat announces nothing
    await asyncio.sleep(0.1)
    assert joins_of_late() == 2
    assert sorted(i.user_id for i in await presence.list(CHANNEL)) == ["late", "watcher"]
