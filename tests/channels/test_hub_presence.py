"""Presence through the hub: batched joined / updated / left diffs, listing, heartbeats, expiry of dead nodes."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest

from channels.broker import BrokerUnavailable
from channels.connection import Connection
from channels.hub import Hub, HubSettings
from channels.loops import ManualClock
from channels.presence import PresenceInfo, PresenceManager
from tests.channels.conftest import BrokerFactory, HubFactory, wait_until
from tests.channels.hubkit import HubClient
from tests.presence_view import room_view

CHANNEL = "project:12:staff"


def diffs(client: HubClient, channel: str = CHANNEL) -> list[dict[str, Any]]:
    return client.transport.of_type("presence_diff", channel)


def entries(client: HubClient, kind: str) -> list[dict[str, Any]]:
    """Every entry the client was told ``kind`` (joined, updated, left) about, in order."""
    return [entry for frame in diffs(client) for entry in frame[kind]]


def view(client: HubClient, channel: str = CHANNEL) -> dict[str, dict[str, Any]]:
    """The room as the client sees it."""
    return room_view(client.transport.frames(), channel)


def describe(conn: Connection) -> PresenceInfo:
    user = str(conn.principal)
    return PresenceInfo(client_id=conn.id, user_id=user, name=f"Name of {user}", role="staff")


async def test_join_update_list_and_leave(presence: PresenceManager, make_hub: HubFactory) -> None:
    hub = await make_hub(presence=presence, settings=HubSettings(presence_prefixes=("project:",)), describe=describe)
    ana, bo = HubClient(hub, "ana"), HubClient(hub, "bo")
    await ana.subscribe(CHANNEL)
    await ana.transport.wait_for_frame(lambda f: [e["user_id"] for e in f.get("joined", ())] == ["ana"])
    await bo.subscribe(CHANNEL)

    joined = await ana.transport.wait_for_frame(lambda f: [e["user_id"] for e in f.get("joined", ())] == ["bo"])
    ack = await bo.request({"type": "presence", "channel": CHANNEL, "data": {"viewing": "task:40"}})
    updated = await ana.transport.wait_for_frame(lambda f: bool(f.get("updated")))
    listed = await ana.request({"type": "presence_list", "channel": CHANNEL})
    await hub.disconnect(bo.conn)
    left = await ana.transport.wait_for_frame(lambda f: bool(f.get("left")))

    assert joined == {
        "type": "presence_diff",
        "channel": CHANNEL,
        "joined": [{"client_id": bo.conn.id, "user_id": "bo", "name": "Name of bo", "role": "staff", "data": {}}],
        "updated": [],
        "left": [],
        "count": 2,
        "users": 2,
    }
    assert ack["type"] == "ack"
    assert [e["data"] for e in updated["updated"]] == [{"viewing": "task:40"}]
    assert sorted(c["user_id"] for c in listed["clients"]) == ["ana", "bo"]
    assert (listed["count"], listed["users"], listed["truncated"]) == (2, 2, False)
    assert [e["client_id"] for e in left["left"]] == [bo.conn.id]
    assert (left["count"], left["users"]) == (1, 1)
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
    assert client.transport.of_type("presence_diff") == []


async def test_heartbeats_keep_entries_alive_and_a_dead_nodes_entries_expire(
    presence: PresenceManager, make_hub: HubFactory
) -> None:
    settings = HubSettings(
        presence_prefixes=("project:",), presence_ttl_seconds=0.5, housekeeping_interval_seconds=0.05
    )
    live_hub = await make_hub(presence=presence, settings=settings, describe=describe)
    client = HubClient(live_hub, "alive")
    await client.subscribe(CHANNEL)
    # An entry from a node that died without removing it: nobody renews its lease.
    await presence.register("ghost-node", 2)
    await presence.add(CHANNEL, PresenceInfo("ghost-conn", "ghost", "Ghost", "staff"), "ghost-node")

    # The ghost's lease runs out; "alive"'s node's, registered before it, outlives it only by heartbeats.
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
    await wait_until(lambda: bool(diffs(client)))  # its own join
    assert entries(client, "updated") == []


def lefts(client: HubClient) -> list[str]:
    return [entry["client_id"] for entry in entries(client, "left")]


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
    await wait_until(lambda: len(entries(watcher_c, "joined")) >= 4, what="everyone joined")

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


async def lapse(presence: PresenceManager, hub: Hub) -> str:
    """Let ``hub``'s lease run out as if its heartbeats had stopped reaching the store; returns the lapsed lease."""
    assert hub._presence is not None
    node = hub._presence._node
    async with asyncio.timeout(10):
        while await presence.renew(node, 0.001):  # each renewal a millisecond long
            await asyncio.sleep(0.02)
    return node


async def test_a_node_whose_lease_lapsed_adds_its_entries_again_and_announces_joined_for_the_claimed(
    presence: PresenceManager, make_hub: HubFactory
) -> None:
    settings = HubSettings(presence_prefixes=("project:",), presence_ttl_seconds=30, housekeeping_interval_seconds=30)
    stalled = await make_hub(presence=presence, settings=settings, describe=describe)
    survivor = await make_hub(presence=presence, settings=settings, describe=describe)
    watcher, late = HubClient(survivor, "watcher"), HubClient(stalled, "late")
    await watcher.subscribe(CHANNEL)
    await late.subscribe(CHANNEL)
    await wait_until(lambda: late.conn.id in view(watcher), what="the watcher was told late joined")
    old = await lapse(presence, stalled)
    assert [i.user_id for i in await presence.list(CHANNEL)] == ["watcher"]
    assert stalled._presence is not None and survivor._presence is not None
    await survivor._presence.heartbeat(survivor.connections)  # claims the lapsed lease's entries
    await wait_until(lambda: lefts(watcher) == [late.conn.id], what="left for the late entry")

    await stalled._presence.heartbeat(stalled.connections)  # the node is back: "late" is here after all

    def joins_of_late() -> int:
        return len([e for e in entries(watcher, "joined") if e["client_id"] == late.conn.id])

    await wait_until(lambda: joins_of_late() == 2, what="joined again")  # its first join, and this one
    assert stalled._presence._node not in ("", old)  # under a new lease
    for hub in (stalled, survivor):  # ordinary heartbeats announce nothing
        assert hub._presence is not None
        await hub._presence.heartbeat(hub.connections)
    await asyncio.sleep(0.1)
    assert joins_of_late() == 2 and lefts(watcher) == [late.conn.id]
    assert sorted(i.user_id for i in await presence.list(CHANNEL)) == ["late", "watcher"]


def pending(hub: Hub, channel: str = CHANNEL) -> dict[str, Any]:
    ch = hub._registry.get(channel)
    assert ch is not None and ch.presence_room is not None
    return ch.presence_room.pending


async def test_changes_within_one_window_reach_each_socket_as_one_frame(
    presence: PresenceManager, make_hub: HubFactory
) -> None:
    clock = ManualClock()
    settings = HubSettings(presence_prefixes=("project:",), presence_flush_seconds=0.2)
    hub = await make_hub(presence=presence, settings=settings, describe=describe, clock=clock)
    watchers = [HubClient(hub, f"w{i}") for i in range(6)]
    for watcher in watchers:
        await watcher.subscribe(CHANNEL)
        await watcher.request({"type": "presence_list", "channel": CHANNEL})
    clock.advance(1)  # the joins go out in one flush at t=1; the clock stays there, so the next window is held
    await wait_until(lambda: all(len(view(w)) == 6 for w in watchers), what="everyone sees everyone")
    before = [len(diffs(w)) for w in watchers]

    for i, watcher in enumerate(watchers[:4]):  # four data changes
        await watcher.request({"type": "presence", "channel": CHANNEL, "data": {"n": i}})
    await watchers[0].request({"type": "presence", "channel": CHANNEL, "data": {"n": 99}})  # and a second one
    passing = HubClient(hub, "passing")  # joins and leaves inside the window
    await passing.subscribe(CHANNEL)
    await hub.disconnect(passing.conn)
    await hub.disconnect(watchers[5].conn)  # leaves
    back = watchers[4]  # leaves and comes back
    await back.request({"type": "unsubscribe", "channel": CHANNEL})
    await back.subscribe(CHANNEL)
    await wait_until(
        lambda: len(pending(hub)) == 7 and pending(hub).get(back.conn.id) is not None,
        what="the broker delivered the ten changes to the room",
    )
    assert [len(diffs(w)) for w in watchers[:4]] == before[:4]  # nothing sent yet

    clock.advance(0.2)
    await wait_until(lambda: all(len(diffs(w)) > n for w, n in zip(watchers[:4], before, strict=False)))

    for watcher, count in zip(watchers[:4], before, strict=False):
        (frame,) = diffs(watcher)[count:]
        assert frame["joined"] == [] and frame["count"] == 5 and frame["users"] == 5
        assert sorted(e["user_id"] for e in frame["left"]) == ["w5"]  # "passing" was never shown: no left for it
        # "back" is here as before (same entry): nothing to say about it.
        assert {e["user_id"]: e["data"] for e in frame["updated"]} == {
            "w0": {"n": 99},
            "w1": {"n": 1},
            "w2": {"n": 2},
            "w3": {"n": 3},
        }
    truth = {i.client_id: i.to_json() for i in await presence.list(CHANNEL)}
    for watcher in watchers[:4]:
        assert view(watcher) == truth


async def _churn(hubs: list[Hub], rng: random.Random, rounds: int) -> list[HubClient]:
    """Sockets come, go, leave and rejoin, and set data, on every hub; returns those still subscribed."""
    here: list[HubClient] = []
    for step in range(rounds):
        action = rng.random()
        if action < 0.35 or len(here) < 3:
            client = HubClient(rng.choice(hubs), f"u{step % 7}")
            await client.subscribe(CHANNEL)
            await client.request({"type": "presence_list", "channel": CHANNEL})
            here.append(client)
        elif action < 0.5:
            client = here.pop(rng.randrange(len(here)))
            await client.hub.disconnect(client.conn)
        elif action < 0.65:
            client = rng.choice(here)
            await client.request({"type": "unsubscribe", "channel": CHANNEL})
            await client.subscribe(CHANNEL)
            await client.request({"type": "presence_list", "channel": CHANNEL})
        else:
            await rng.choice(here).request({"type": "presence", "channel": CHANNEL, "data": {"step": step}})
        if rng.random() < 0.3:
            await asyncio.sleep(rng.uniform(0, 0.03))  # some changes share a window, some do not
    return here


async def _converged(here: list[HubClient], presence: PresenceManager) -> None:
    truth = {i.client_id: i.to_json() for i in await presence.list(CHANNEL)}
    assert sorted(truth) == sorted(c.conn.id for c in here)

    def exact() -> bool:
        return all(view(c) == truth for c in here)

    await wait_until(exact, within=10, what="every socket's view equal to who is here")
    frames = max(len(diffs(c)) for c in here)
    await asyncio.sleep(0.3)  # and it stays so: nothing more is sent
    assert max(len(diffs(c)) for c in here) == frames and exact()


async def test_every_socket_ends_with_who_is_here_after_churn(presence: PresenceManager, make_hub: HubFactory) -> None:
    settings = HubSettings(presence_prefixes=("project:",), presence_flush_seconds=0.05)
    hub = await make_hub(presence=presence, settings=settings, describe=describe)

    here = await _churn([hub], random.Random(23), rounds=150)

    await _converged(here, presence)
    changes = 150
    assert all(len(diffs(c)) < changes / 2 for c in here)  # batched: far fewer frames than changes


@pytest.mark.parametrize("broker_factory", ["redis"], indirect=True)  # two nodes: one broker each
async def test_two_nodes_batch_the_changes_they_receive_from_redis(
    presence: PresenceManager, broker_factory: BrokerFactory, make_hub: HubFactory
) -> None:
    settings = HubSettings(presence_prefixes=("project:",), presence_flush_seconds=0.05)
    hubs = [
        await make_hub(broker=await broker_factory(), presence=presence, settings=settings, describe=describe)
        for _ in range(2)
    ]

    here = await _churn(hubs, random.Random(5), rounds=150)

    await _converged(here, presence)
    assert {c.hub for c in here} == set(hubs)
    assert all(len(diffs(c)) < 150 / 2 for c in here)


async def test_a_node_back_from_a_lapse_adds_more_entries_than_the_redis_pool_holds(
    presence: PresenceManager, make_hub: HubFactory, caplog: pytest.LogCaptureFixture
) -> None:
    settings = HubSettings(presence_prefixes=("project:",), presence_ttl_seconds=30, housekeeping_interval_seconds=30)
    hub = await make_hub(presence=presence, settings=settings, describe=describe)
    clients = [HubClient(hub, f"u{i}") for i in range(150)]  # redis-py's asyncio pool: 100 connections
    for client in clients:
        await client.subscribe(CHANNEL)
    assert hub._presence is not None
    await lapse(presence, hub)
    assert await presence.list(CHANNEL) == []

    await hub._presence.heartbeat(hub.connections)

    assert "not added again" not in caplog.text
    assert len(await presence.list(CHANNEL)) == 150


class CountingPresence:
    """A `PresenceManager` that counts the calls it passes on, and fails the adds of ``failing`` channels."""

    def __init__(self, inner: PresenceManager, failing: frozenset[str] = frozenset()) -> None:
        self.inner = inner
        self.failing = failing
        self.calls: Counter[str] = Counter()
        self.batches: list[int] = []

    def __getattr__(self, name: str) -> Any:
        self.calls[name] += 1
        return getattr(self.inner, name)

    async def add_many(self, entries: Sequence[tuple[str, PresenceInfo]], node: str) -> list[bool | BrokerUnavailable]:
        self.calls["add_many"] += 1
        self.batches.append(len(entries))
        passed = [(channel, info) for channel, info in entries if channel not in self.failing]
        results = iter(await self.inner.add_many(passed, node))
        failure = BrokerUnavailable("this shard is down")
        return [failure if channel in self.failing else next(results) for channel, _ in entries]


async def test_a_heartbeat_is_one_lease_renewal_and_one_claim_whatever_the_node_holds(
    presence: PresenceManager, make_hub: HubFactory
) -> None:
    counting = CountingPresence(presence)
    settings = HubSettings(presence_prefixes=("project:",), presence_ttl_seconds=30, housekeeping_interval_seconds=30)
    hub = await make_hub(presence=counting, settings=settings, describe=describe)
    rooms = [f"project:{n}:staff" for n in range(3)]
    clients = [HubClient(hub, f"u{i}") for i in range(120)]
    for i, client in enumerate(clients):
        await client.subscribe(rooms[i % 3])
        if i % 4 == 0:
            await client.subscribe(rooms[(i + 1) % 3])  # some sockets are in two rooms: an entry in each
    assert hub._presence is not None
    counting.calls.clear()

    await hub._presence.heartbeat(hub.connections)

    assert counting.calls == {"renew": 1, "claim_dead": 1}  # nothing per entry
    await lapse(presence, hub)
    counting.calls.clear()

    await hub._presence.heartbeat(hub.connections)  # its lease lapsed: a new one, and every entry in one batch

    assert counting.calls == {"renew": 1, "register": 1, "add_many": 1, "claim_dead": 1}
    assert counting.batches == [150]
    assert sum([len(await presence.list(room)) for room in rooms]) == 150


async def test_entries_the_store_fails_to_add_again_are_logged_and_retried_and_the_rest_of_the_heartbeat_goes_on(
    presence: PresenceManager, make_hub: HubFactory, caplog: pytest.LogCaptureFixture
) -> None:
    broken = "project:13:staff"  # its shard is down
    counting = CountingPresence(presence, failing=frozenset({broken}))
    settings = HubSettings(presence_prefixes=("project:",), presence_ttl_seconds=30, housekeeping_interval_seconds=30)
    hub = await make_hub(presence=counting, settings=settings, describe=describe)
    # A dead node's entry, which the watcher's room loads when it subscribes.
    await presence.register("ghost-node", 2)
    await presence.add(CHANNEL, PresenceInfo("ghost-conn", "ghost", "Ghost", "staff"), "ghost-node")
    watcher, elsewhere = HubClient(hub, "watcher"), HubClient(hub, "elsewhere")
    await watcher.subscribe(CHANNEL)
    await elsewhere.subscribe(broken)
    await watcher.request({"type": "presence_list", "channel": CHANNEL})
    assert "ghost-conn" in view(watcher)
    async with asyncio.timeout(10):
        while "ghost" in [i.user_id for i in await presence.list(CHANNEL)]:
            await asyncio.sleep(0.02)
    assert hub._presence is not None
    await lapse(presence, hub)

    await hub._presence.heartbeat(hub.connections)  # does not raise

    assert "presence: 1 of 2 entries not added again" in caplog.text
    await wait_until(lambda: lefts(watcher) == ["ghost-conn"], what="left for the dead entry, despite the failure")
    assert [i.user_id for i in await presence.list(CHANNEL)] == ["watcher"]
    assert await presence.list(broken) == []  # not added again (and claimed with the old lease)...
    counting.failing = frozenset()
    await hub._presence.heartbeat(hub.connections)
    assert [i.user_id for i in await presence.list(broken)] == ["elsewhere"]  # ... until the next heartbeat


async def test_a_heartbeat_announces_a_dead_nodes_hundreds_of_entries_without_exhausting_the_store(
    presence: PresenceManager, make_hub: HubFactory, caplog: pytest.LogCaptureFixture
) -> None:
    settings = HubSettings(presence_prefixes=("project:",), presence_ttl_seconds=30, housekeeping_interval_seconds=30)
    hub = await make_hub(presence=presence, settings=settings, describe=describe)
    dead = [(CHANNEL, PresenceInfo(f"dead-{n}", f"d{n}", "Dead", "staff")) for n in range(300)]
    await presence.register("dead-node", 3)  # long enough for the watcher to see them first
    await presence.add_many(dead, "dead-node")
    watcher = HubClient(hub, "watcher")
    await watcher.subscribe(CHANNEL)
    await watcher.request({"type": "presence_list", "channel": CHANNEL})
    assert len(view(watcher)) == 301  # the dead node's sockets, and itself
    async with asyncio.timeout(10):
        while len(await presence.list(CHANNEL)) > 1:
            await asyncio.sleep(0.02)
    assert hub._presence is not None

    await hub._presence.heartbeat(hub.connections)

    await wait_until(lambda: len(lefts(watcher)) == 300, what="300 lefts")
    assert sorted(lefts(watcher)) == sorted(info.client_id for _, info in dead)
    assert "not announced" not in caplog.text
