"""Presence through the hub: joined / updated / left events, listing, heartbeats, expiry of dead nodes."""

from __future__ import annotations

import asyncio

from channels.connection import Connection
from channels.hub import HubSettings
from channels.presence import PresenceInfo, PresenceManager
from tests.channels.conftest import HubFactory, wait_until
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

    await asyncio.sleep(1.0)

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
