"""The live board end to end: real uvicorn nodes, a real Redis, real `websockets` clients.

A change made through one node's REST API reaches sockets on the other node; internal items never reach a
customer's socket on either; access changes bite within a second; nothing is lost when a node is killed or Redis
restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from channels.client import ClientError, TandemClient
from tests.conftest import REDIS, postgres_database
from tests.nodes import Api, Node, RedisServer, cluster, connect, next_data
from tests.workspace import Workspace


@pytest.fixture(params=["sqlite+redis", "postgresql+redis", "sqlite+redis-cluster"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[list[Node], Workspace]]:
    """Two nodes on each supported stack: database engine + Redis (one server, or a three-shard cluster)."""
    engine, _, broker = request.param.partition("+")
    redis_url = REDIS if broker == "redis" else request.getfixturevalue("redis_shards").url
    with contextlib.ExitStack() as stack:
        if engine == "sqlite":
            url, ws = request.getfixturevalue("database")
        else:
            template, ws = request.getfixturevalue("pg_template")
            url = stack.enter_context(postgres_database(template))
        yield stack.enter_context(cluster(tmp_path, url, redis_url, count=2)), ws


async def test_board_events_cross_nodes_by_audience(
    stack: tuple[list[Node], Workspace], clients: list[TandemClient]
) -> None:
    (a, b), ws = stack
    px = ws.ids["px"]
    customer = await connect(clients, b, ws, "customer")
    staff = await connect(clients, a, ws, "staff")
    customer_on_a = await connect(clients, a, ws, "customer")
    await customer.subscribe(f"project:{px}:shared")
    await customer_on_a.subscribe(f"project:{px}:shared")
    await staff.subscribe(f"project:{px}:staff")

    api = Api(a, ws, "staff")
    try:
        # An internal change first, then a shared one: the customers' first event must be the shared one.
        await api.patch_task(ws.ids["px_internal_task"], title="internal work SECRET v2")
        await api.patch_task(ws.ids["px_shared_task"], status_id=ws.ids["px_active"])
        staff_events = [await next_data(staff), await next_data(staff)]
        assert [e["task"]["id"] for e in staff_events] == [ws.ids["px_internal_task"], ws.ids["px_shared_task"]]
        for client in (customer, customer_on_a):
            event = await next_data(client)
            assert event["type"] == "task.updated"
            assert event["task"]["id"] == ws.ids["px_shared_task"]
            assert event["task"]["status_id"] == ws.ids["px_active"]

        # Sharing an internal task shows it to customers; making it internal again removes it from their board.
        await api.patch_task(ws.ids["px_internal_task"], visibility="shared", title="now shared")
        shown = await next_data(customer)
        assert shown["type"] == "task.updated" and shown["task"]["title"] == "now shared"
        await api.patch_task(ws.ids["px_internal_task"], visibility="internal", title="hidden again SECRET")
        removed = await next_data(customer)
        assert removed == {"type": "task.removed", "task_id": ws.ids["px_internal_task"], "version": removed["version"]}
        # Offsets are strictly increasing, in order, on one channel.
        offsets = [client.positions[f"project:{px}:shared"].offset for client in (customer,)]
        assert offsets[0] == 3
        await asyncio.sleep(0.3)
        for client in (customer, customer_on_a):
            while not client._events.empty():
                frame = client._events.get_nowait()
                assert "SECRET" not in str(frame)
    finally:
        await api.aclose()


async def test_customer_cannot_subscribe_to_what_they_may_not_see(
    two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient]
) -> None:
    ws = database[1]
    customer = await connect(clients, two_nodes[0], ws, "customer")
    refused = [
        f"project:{ws.ids['px']}:staff",  # the internal stream of their own project
        f"project:{ws.ids['py']}:shared",  # another client's project
        f"project:{ws.ids['pb']}:shared",  # another organization's project
        "project:999999:shared",  # does not exist: the same answer
        f"task:{ws.ids['px_internal_task']}:shared",  # an internal task
        f"room:task:{ws.ids['px_internal_task']}",
        f"user:{ws.users['staff']}",  # someone else's own channel
        "control:nodes",
    ]
    answers = []
    for channel in refused:
        with pytest.raises(ClientError) as caught:
            await customer.subscribe(channel)
        answers.append((caught.value.code, caught.value.frame.get("message")))
    assert {code for code, _ in answers} == {"forbidden"}
    assert len({message for _, message in answers}) == 1  # no hint which of them exist
    # Still connected and serving: allowed channels work.
    await customer.subscribe(f"project:{ws.ids['px']}:shared")
    await customer.subscribe(f"user:{ws.users['customer']}")
    await customer.subscribe(f"task:{ws.ids['px_shared_task']}:shared")


async def test_removed_member_stops_receiving_within_a_second(
    stack: tuple[list[Node], Workspace], clients: list[TandemClient]
) -> None:
    # The removal is made on node A; the control bus (one channel: one shard of a cluster) re-checks node B.
    (a, b), ws = stack
    px = ws.ids["px"]
    customer = await connect(clients, b, ws, "customer")
    await customer.subscribe(f"project:{px}:shared")
    owner = Api(a, ws, "owner")
    try:
        response = await owner.client.delete(f"/api/projects/{px}/members/{ws.users['customer']}")
        assert response.status_code == 204
        frames = []
        async with asyncio.timeout(1.0):
            while True:
                frame = await customer.next_event(1.0)
                frames.append(frame)
                if frame["type"] == "unsubscribed":
                    break
        assert frames[-1] == {"type": "unsubscribed", "channel": f"project:{px}:shared", "reason": "forbidden"}
        await owner.patch_task(ws.ids["px_shared_task"], title="after removal")
        with pytest.raises(TimeoutError):
            await customer.next_event(0.5)
        with pytest.raises(ClientError):
            await customer.subscribe(f"project:{px}:shared")
    finally:
        await owner.aclose()


async def test_logout_closes_that_sessions_sockets(
    two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    async with httpx.AsyncClient(base_url=a.http, timeout=10) as http:
        login = await http.post(
            "/api/auth/login", json={"email": "viewer@example.test", "password": "correct horse battery"}
        )
        token = login.json()["token"]
        socket = await TandemClient.connect(b.ws, token=token, ping_interval=None)
        clients.append(socket)
        other_session = await connect(clients, b, ws, "viewer")
        await socket.subscribe(f"project:{ws.ids['px']}:shared")
        await other_session.subscribe(f"project:{ws.ids['px']}:shared")
        assert (await http.post("/api/auth/logout", headers={"authorization": f"Bearer {token}"})).status_code == 204
        async with asyncio.timeout(2):
            while socket.close_code is None:
                await asyncio.sleep(0.02)
        assert socket.close_code == 4401
        assert other_session.close_code is None


async def test_unauthenticated_and_foreign_origin_sockets_are_closed(two_nodes: list[Node]) -> None:
    import websockets

    async with websockets.connect(two_nodes[0].ws) as anonymous:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(anonymous.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    async with websockets.connect(
        two_nodes[0].ws + "?token=token-customer-" + "x" * 24, origin="https://evil.example"
    ) as foreign:  # type: ignore[arg-type]
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(foreign.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_killed_node_clients_resume_on_the_other_with_nothing_lost(
    two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    channel = f"project:{ws.ids['px']}:shared"
    customer = await connect(clients, a, ws, "customer")
    await customer.subscribe(channel)
    staff = Api(b, ws, "staff")
    try:
        await staff.patch_task(ws.ids["px_shared_task"], title="before the crash")
        assert (await next_data(customer))["task"]["title"] == "before the crash"
        position = customer.positions[channel]
        a.kill()
        titles = [f"while A is dead {i}" for i in range(5)]
        for title in titles:
            await staff.patch_task(ws.ids["px_shared_task"], title=title)
        resumed = await connect(clients, b, ws, "customer")
        reply = await resumed.subscribe(channel, since=position)
        assert reply["recovered"] is True and reply.get("reload") is not True
        got = [(await next_data(resumed))["task"]["title"] for _ in titles]
        assert got == titles
        with pytest.raises(TimeoutError):
            await resumed.next_event(0.3)
    finally:
        await staff.aclose()


async def test_redis_restart_loses_no_event(
    database: tuple[str, Workspace], tmp_path: Path, clients: list[TandemClient]
) -> None:
    ws = database[1]
    channel = f"project:{ws.ids['px']}:shared"
    redis = RedisServer(tmp_path).start()
    try:
        with cluster(tmp_path, database[0], redis.url, count=2) as (a, b):
            staying = await connect(clients, b, ws, "customer")
            resuming = await connect(clients, b, ws, "customer")
            await staying.subscribe(channel)
            await resuming.subscribe(channel)
            staff = Api(a, ws, "staff")
            try:
                await staff.patch_task(ws.ids["px_shared_task"], title="before")
                for client in (staying, resuming):
                    assert (await next_data(client))["task"]["title"] == "before"
                position = resuming.positions[channel]
                await resuming.close()
                redis.stop()
                # Changes commit while Redis is away; the outbox keeps their events.
                titles = [f"during outage {i}" for i in range(3)]
                for title in titles:
                    await staff.patch_task(ws.ids["px_shared_task"], title=title)
                redis.start()
                titles.append("after")
                await staff.patch_task(ws.ids["px_shared_task"], title="after")
                got = [(await next_data(staying, timeout=15))["task"]["title"] for _ in titles]
                assert got == titles
                again = await connect(clients, b, ws, "customer")
                reply = await again.subscribe(channel, since=position)
                assert reply["recovered"] is True
                assert [(await next_data(again))["task"]["title"] for _ in titles] == titles
            finally:
                await staff.aclose()
    finally:
        redis.stop()


@pytest.mark.postgres
async def test_postgresql_nodes_publish_through_the_outbox(
    pg_database: tuple[str, Workspace], tmp_path: Path, clients: list[TandemClient]
) -> None:
    url, ws = pg_database
    with cluster(tmp_path, url, "redis://127.0.0.1:6379/0", count=2) as (a, b):
        customer = await connect(clients, b, ws, "customer")
        await customer.subscribe(f"project:{ws.ids['px']}:shared")
        staff = Api(a, ws, "staff")
        try:
            titles = [f"on postgres {i}" for i in range(5)]
            for title in titles:
                await staff.patch_task(ws.ids["px_shared_task"], title=title)
            got = [(await next_data(customer))["task"]["title"] for _ in titles]
            assert got == titles
        finally:
            await staff.aclose()


async def test_sockets_close_when_their_session_expires(
    database: tuple[str, Workspace], tmp_path: Path, clients: list[TandemClient]
) -> None:
    import datetime as dt
    import sqlite3

    from server.security import token_hash

    url, ws = database
    token = "short-lived-session-token-" + "z" * 20
    with cluster(tmp_path, url, None, count=1) as (node,):
        node.stop()
        node.env["TANDEM_SESSION_SWEEP_SECONDS"] = "1"
        node.start()
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute(
                "insert into auth_sessions (user_id, token_hash, created_at, expires_at, last_seen_at, user_agent)"
                " values (?, ?, ?, ?, ?, '')",
                (
                    ws.users["customer"],
                    token_hash(token),
                    now.isoformat(sep=" "),
                    (now + dt.timedelta(seconds=3)).isoformat(sep=" "),
                    now.isoformat(sep=" "),
                ),
            )
        socket = await TandemClient.connect(node.ws, token=token, ping_interval=None)
        clients.append(socket)
        await socket.subscribe(f"project:{ws.ids['px']}:shared")
        async with asyncio.timeout(10):
            while socket.close_code is None:
                await asyncio.sleep(0.05)
        assert socket.close_code == 4401


async def test_a_task_made_internal_drops_customers_from_its_thread_and_room(
    two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    task = ws.ids["px_shared_task"]
    customer = await connect(clients, b, ws, "customer")
    await customer.subscribe(f"task:{task}:shared")
    await customer.subscribe(f"room:task:{task}")
    staff = Api(a, ws, "owner")
    try:
        # The shared task carries a shared milestone; detach it first so it may become internal.
        await staff.patch_task(task, milestone_id=None)
        await staff.patch_task(task, visibility="internal")
        dropped: set[str] = set()
        async with asyncio.timeout(2):
            while len(dropped) < 2:
                frame = await customer.next_event(2)
                if frame["type"] == "unsubscribed":
                    assert frame["reason"] == "forbidden"
                    dropped.add(frame["channel"])
        assert dropped == {f"task:{task}:shared", f"room:task:{task}"}
    finally:
        await staff.aclose()
