"""What a node keeps between subscribes (server/live/sockets.py `AccessEpoch`, server/live/channels_policy.py
`ChannelFacts`) never outlives the change that makes it wrong: changes are made on node A, sockets live on node B."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import event

from channels.client import ClientError, TandemClient
from server.accounts.session_cache import AccessEpoch
from server.db import Database
from server.live.channels_policy import ChannelFacts
from server.live.sockets import LivePrincipal
from server.models import Project, Task
from server.policy import Actor
from tests.nodes import Node, connect
from tests.workspace import Workspace

DEADLINE = 2.0


def api(node: Node, ws: Workspace, role: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=node.http, headers={"authorization": f"Bearer {ws.token(role)}"}, timeout=10)


async def test_a_task_made_shared_can_be_subscribed_by_its_customers_at_once(
    two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    task = ws.ids["px_internal_task"]
    live = await connect(clients, b, ws, "customer")
    with pytest.raises(ClientError):
        await live.subscribe(f"task:{task}:shared")  # node B now knows the task, as internal
    async with api(a, ws, "staff") as staff:
        assert (await staff.patch(f"/api/tasks/{task}", json={"visibility": "shared"})).status_code == 200
    # Within the time a control message takes, not the session sweep's minute.
    async with asyncio.timeout(DEADLINE):
        while True:
            try:
                await live.subscribe(f"task:{task}:shared")
                break
            except ClientError:
                await asyncio.sleep(0.05)  # polling the outcome, under the deadline above


async def test_a_task_made_internal_refuses_new_subscribes_on_a_node_that_knew_it_shared(
    two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    channel = f"task:{ws.ids['px_shared_task']}:shared"
    first = await connect(clients, b, ws, "customer")
    await first.subscribe(channel)  # node B now knows the task, as shared
    async with api(a, ws, "staff") as staff:
        answer = await staff.patch(f"/api/tasks/{ws.ids['px_shared_task']}", json={"visibility": "internal"})
        assert answer.status_code == 200
    async with asyncio.timeout(DEADLINE):
        while (frame := await first.next_event(DEADLINE))["type"] != "unsubscribed":
            pass
    assert frame["channel"] == channel and frame["reason"] == "forbidden"
    # Node B heard of the change (the re-check above): a socket that never held the channel is refused too.
    second = await connect(clients, b, ws, "customer")
    with pytest.raises(ClientError):
        await second.subscribe(channel)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_actor_is_current_until_a_control_message_or_its_age_says_otherwise() -> None:
    clock = Clock()
    epoch = AccessEpoch(60.0, clock)
    principal = LivePrincipal(Actor(user_id=1, organization_id=1, role="staff", client_id=None, name="Ann"), "hash")
    assert not epoch.fresh(principal)  # never read since admission stamped it
    epoch.stamp(principal, epoch.value)
    assert epoch.fresh(principal)
    clock.now += 59.9
    assert epoch.fresh(principal)
    clock.now += 0.1
    assert not epoch.fresh(principal)  # as old as the sweep's interval: read again
    read_at = epoch.value
    epoch.advance()  # a control message arrived while it was being read
    epoch.stamp(principal, read_at)
    assert not epoch.fresh(principal)
    epoch.stamp(principal, epoch.value)
    assert epoch.fresh(principal)
    epoch.advance()
    assert not epoch.fresh(principal)


async def test_channel_facts_read_a_row_once_per_epoch_and_never_keep_what_is_missing(
    database: tuple[str, Workspace],
) -> None:
    url, ws = database
    db = Database(url)
    statements: list[str] = []
    listen: Callable[..., None] = lambda conn, cursor, statement, *rest: statements.append(statement)  # noqa: E731
    event.listen(db.engine.sync_engine, "before_cursor_execute", listen)
    clock = Clock()
    epoch = AccessEpoch(60.0, clock)
    facts = ChannelFacts(epoch)
    try:
        async with db.session() as session:
            project = await facts.get(session, Project, ws.ids["px"])
            assert project is not None and project.id == ws.ids["px"]
        async with db.session() as session:
            assert await facts.get(session, Project, ws.ids["px"]) is project
        assert len(statements) == 1
        async with db.session() as session:
            assert await facts.get(session, Task, 999_999) is None
            assert await facts.get(session, Task, 999_999) is None
        assert len(statements) == 3  # a missing row is asked for every time
        epoch.advance()
        async with db.session() as session:
            assert await facts.get(session, Project, ws.ids["px"]) is not project
        assert len(statements) == 4
        clock.now += 60
        async with db.session() as session:
            await facts.get(session, Project, ws.ids["px"])
        assert len(statements) == 5  # and at least once per max_age
    finally:
        await db.close()
