"""A node reuses a session it read (server/accounts/session_cache.py) only while no change to it can have happened:
every change is announced on the control bus, made on node A and asked about on node B here, each within the time
a control message takes (never the session sweep's minute)."""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx
import pytest

from server.accounts.auth import SessionRead
from server.accounts.session_cache import AccessEpoch, SessionCache
from server.policy import Actor
from tests.nodes import Node
from tests.workspace import Workspace

DEADLINE = 2.0


def api(node: Node, ws: Workspace, role: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=node.http, headers={"authorization": f"Bearer {ws.token(role)}"}, timeout=10)


async def _until(client: httpx.AsyncClient, method: str, path: str, status: int) -> None:
    """Ask until the answer is ``status``, within the deadline."""
    async with asyncio.timeout(DEADLINE):
        while (await client.request(method, path)).status_code != status:
            await asyncio.sleep(0.02)  # polling the outcome, under the deadline above


async def test_a_session_ended_on_one_node_is_refused_on_the_other(
    two_nodes: list[Node], database: tuple[str, Workspace]
) -> None:
    a, b = two_nodes
    ws = database[1]
    async with api(a, ws, "customer") as on_a, api(b, ws, "customer") as on_b:
        assert (await on_b.get("/api/me")).status_code == 200  # node B has read the session
        assert (await on_b.get("/api/me")).status_code == 200
        assert (await on_a.post("/api/auth/logout")).status_code == 204
        await _until(on_b, "GET", "/api/me", 401)
        assert (await on_a.get("/api/me")).status_code == 401  # and at once on the node that ended it


async def test_a_membership_removed_on_one_node_ends_access_on_the_other(
    two_nodes: list[Node], database: tuple[str, Workspace]
) -> None:
    a, b = two_nodes
    ws = database[1]
    px, customer = ws.ids["px"], ws.users["customer"]
    async with api(a, ws, "owner") as owner, api(b, ws, "customer") as on_b:
        assert (await on_b.get(f"/api/projects/{px}")).status_code == 200
        assert (await owner.delete(f"/api/projects/{px}/members/{customer}")).status_code == 204
        await _until(on_b, "GET", f"/api/projects/{px}", 404)


async def test_an_admin_made_staff_on_one_node_loses_admin_rights_on_the_other(
    two_nodes: list[Node], database: tuple[str, Workspace]
) -> None:
    a, b = two_nodes
    ws = database[1]
    staff = ws.users["staff"]
    async with api(a, ws, "owner") as owner, api(b, ws, "staff") as on_b:
        assert (await on_b.get("/api/audit")).status_code == 403  # node B has read them as staff
        assert (await owner.patch(f"/api/staff/{staff}", json={"role": "admin"})).status_code == 200
        await _until(on_b, "GET", "/api/audit", 200)
        assert (await owner.patch(f"/api/staff/{staff}", json={"role": "staff"})).status_code == 200
        await _until(on_b, "GET", "/api/audit", 403)


async def test_a_new_name_reaches_what_the_other_node_writes_in_its_owners_name(
    two_nodes: list[Node], database: tuple[str, Workspace]
) -> None:
    a, b = two_nodes
    ws = database[1]
    task, owner_id = ws.ids["px_shared_task"], ws.users["owner"]
    async with api(a, ws, "staff") as on_a, api(b, ws, "staff") as on_b, api(a, ws, "owner") as owner:
        assert (await on_b.get("/api/me")).status_code == 200  # node B has read the session, with the old name
        assert (await on_a.patch("/api/me", json={"name": "Renamed Person"})).status_code == 200
        # Node B names the actor in what it writes: the notification of an assignment made there.
        async with asyncio.timeout(DEADLINE):
            while True:
                for assignee in (None, owner_id):
                    answer = await on_b.patch(f"/api/tasks/{task}", json={"assignee_id": assignee})
                    assert answer.status_code == 200, answer.text
                latest = (await owner.get("/api/notifications")).json()["items"][0]
                if latest["params"].get("actor") == "Renamed Person":
                    break
                await asyncio.sleep(0.02)  # polling the outcome, under the deadline above


# -- the cache alone ----------------------------------------------------------------------------------------------

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)
IDLE = dt.timedelta(minutes=30)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _read(last_seen: dt.datetime = NOW, expires: dt.datetime = NOW + dt.timedelta(days=1)) -> SessionRead:
    return SessionRead(Actor(1, 1, "staff", None, "Staff", {}, {}), False, last_seen, expires)


def test_a_session_read_is_reused_until_a_control_message_or_its_age() -> None:
    clock = Clock()
    epoch = AccessEpoch(60.0, clock)
    cache = SessionCache(epoch, IDLE)
    read = _read()
    cache.put("h", read, epoch.value)
    assert cache.get("h", NOW) is read
    epoch.advance()  # a control message
    assert cache.get("h", NOW) is None and len(cache) == 0
    cache.put("h", read, epoch.value)
    clock.now += 59.9
    assert cache.get("h", NOW) is read
    clock.now += 0.1  # the session sweep's interval: what no message announces lives no longer
    assert cache.get("h", NOW) is None


def test_a_read_that_a_control_message_overtook_is_not_kept() -> None:
    epoch = AccessEpoch(60.0, Clock())
    cache = SessionCache(epoch, IDLE)
    started = epoch.value  # the read starts
    epoch.advance()  # a change is announced while it runs: what it read may predate the change
    cache.put("h", _read(), started)
    assert cache.get("h", NOW) is None


@pytest.mark.parametrize(
    "read, reason",
    [
        (_read(expires=NOW), "expired"),
        (_read(last_seen=NOW - IDLE), "idle"),
    ],
)
def test_a_cached_session_ends_when_its_own_times_say_so(read: SessionRead, reason: str) -> None:
    epoch = AccessEpoch(60.0, Clock())
    cache = SessionCache(epoch, IDLE)
    cache.put("h", read, epoch.value)
    assert cache.get("h", NOW - dt.timedelta(seconds=1)) is read
    assert cache.get("h", NOW) is None, reason


def test_a_use_recorded_keeps_the_session_alive_and_the_oldest_entries_go_first() -> None:
    epoch = AccessEpoch(60.0, Clock())
    cache = SessionCache(epoch, IDLE, max_entries=2)
    cache.put("h", _read(last_seen=NOW - IDLE + dt.timedelta(seconds=1)), epoch.value)
    cache.touched("h", NOW)
    assert cache.get("h", NOW) is not None
    cache.put("i", _read(), epoch.value)
    cache.put("j", _read(), epoch.value)
    assert cache.get("h", NOW) is None and cache.get("i", NOW) is not None and cache.get("j", NOW) is not None
    cache.forget("i")
    assert cache.get("i", NOW) is None
