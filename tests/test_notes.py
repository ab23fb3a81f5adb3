"""Notes end to end on real uvicorn nodes: REST, the y-websocket endpoint, access, durability across SIGKILL
and compaction, several nodes through Redis, and fuzzed frames."""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from crdt import protocol as p
from server.db import Database
from server.notes.store import SqlNoteStore
from tests.crdt.yclient import YClient
from tests.nodes import Node, RedisServer, cluster
from tests.workspace import PASSWORD, Workspace

REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture
def database(workspace_template: tuple[Path, Workspace], tmp_path: Path) -> tuple[str, Workspace]:
    shutil.copy(workspace_template[0], tmp_path / "tandem.db")
    return f"sqlite:///{tmp_path / 'tandem.db'}", workspace_template[1]


@pytest.fixture
def node(database: tuple[str, Workspace], tmp_path: Path) -> Iterator[Node]:
    with cluster(tmp_path, database[0], None, count=1) as nodes:
        yield nodes[0]


@pytest.fixture
async def opened() -> AsyncIterator[list[YClient]]:
    clients: list[YClient] = []
    yield clients
    for client in clients:
        await client.close()


def note_url(node: Node, note_id: int) -> str:
    return f"ws://127.0.0.1:{node.port}/yjs/{note_id}"


async def join(opened: list[YClient], node: Node, ws: Workspace, role: str, note_id: int) -> YClient:
    client = await YClient.connect(note_url(node, note_id), token=ws.token(role))
    opened.append(client)
    return client


async def bystander_and_staff(
    opened: list[YClient], node: Node, ws: Workspace, note_id: int
) -> tuple[YClient, YClient]:
    """A customer and a staff member in one note's room, both synced: the staff socket is the one that misbehaves."""
    bystander = await join(opened, node, ws, "customer", note_id)
    staff = await join(opened, node, ws, "staff", note_id)
    await asyncio.wait_for(staff.synced.wait(), 10)
    await asyncio.wait_for(bystander.synced.wait(), 10)
    return bystander, staff


def http(node: Node, ws: Workspace, role: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=node.http, headers={"authorization": f"Bearer {ws.token(role)}"}, timeout=10)


async def export(node: Node, ws: Workspace, note_id: int, role: str = "staff") -> str:
    async with http(node, ws, role) as api:
        response = await api.get(f"/api/notes/{note_id}/export")
        assert response.status_code == 200, response.text
        return response.text


async def test_create_co_edit_export_and_versions(
    node: Node, database: tuple[str, Workspace], opened: list[YClient]
) -> None:
    ws = database[1]
    async with http(node, ws, "staff") as api:
        created = await api.post(
            f"/api/projects/{ws.ids['px']}/notes",
            json={"title": "Review", "visibility": "shared", "content": "Agenda"},
        )
        assert created.status_code == 201, created.text
        note_id = created.json()["id"]
        listed = await api.get(f"/api/projects/{ws.ids['px']}/notes")
        assert note_id in [n["id"] for n in listed.json()["items"]]
    staff = await join(opened, node, ws, "staff", note_id)
    customer = await join(opened, node, ws, "customer", note_id)
    await staff.wait_text("Agenda")
    await customer.wait_text("Agenda")
    await staff.edit("\n- staff point")
    await customer.edit("\n- customer point")
    await staff.wait(lambda: len(str(staff)) == len("Agenda\n- staff point\n- customer point"))
    await customer.wait_text(str(staff))
    assert sorted(str(staff).splitlines()) == sorted(["Agenda", "- staff point", "- customer point"])
    assert await export(node, ws, note_id) == str(staff)
    async with http(node, ws, "staff") as api:
        markdown = await api.get(f"/api/notes/{note_id}/export?format=markdown")
        assert markdown.text == "# Review\n\n" + str(staff)
        assert markdown.headers["content-type"].startswith("text/markdown")
        saved = await api.post(f"/api/notes/{note_id}/versions", json={"name": "after the 12 May review"})
        assert saved.status_code == 201
        await staff.edit("\nlater edit")
        await customer.wait(lambda: "later edit" in str(customer))
        versions = (await api.get(f"/api/notes/{note_id}/versions")).json()["items"]
        assert [v["name"] for v in versions] == ["after the 12 May review"]
        version = (await api.get(f"/api/notes/{note_id}/versions/{versions[0]['id']}")).json()
        assert "later edit" not in version["text"] and "- customer point" in version["text"]
    # A reconnecting client loads the note once: no duplicated seed text.
    again = await join(opened, node, ws, "owner", note_id)
    await again.wait_text(str(staff))
    assert str(again).count("Agenda") == 1


async def test_viewer_is_read_only_and_customers_cannot_open_internal_notes(
    node: Node, database: tuple[str, Workspace], opened: list[YClient]
) -> None:
    ws = database[1]
    shared = ws.ids["px_shared_note"]
    viewer = await join(opened, node, ws, "viewer", shared)
    await viewer.wait_text("px shared note text")
    await viewer.edit(" VIEWER WAS HERE")
    await viewer.wait(lambda: bool(viewer.denied), what="permission denied")
    assert "read-only" in viewer.denied[0]
    assert viewer.close_code is None
    assert await export(node, ws, shared) == "px shared note text"

    for role in ("customer", "viewer", "other_customer", "stranger"):
        refused = await join(opened, node, ws, role, ws.ids["px_internal_note"])
        assert await refused.wait_closed() == 4403, role
        assert refused.denied and "SECRET" not in str(refused)
    missing = await join(opened, node, ws, "staff", 999_999)
    assert await missing.wait_closed() == 4403
    anonymous = await YClient.connect(note_url(node, shared))
    opened.append(anonymous)
    assert await anonymous.wait_closed() == 4401


async def test_revoking_access_closes_the_note_socket(
    node: Node, database: tuple[str, Workspace], opened: list[YClient]
) -> None:
    ws = database[1]
    customer = await join(opened, node, ws, "customer", ws.ids["px_shared_note"])
    await asyncio.wait_for(customer.synced.wait(), 10)
    async with http(node, ws, "owner") as owner:
        removed = await owner.delete(f"/api/projects/{ws.ids['px']}/members/{ws.users['customer']}")
        assert removed.status_code == 204
    assert await customer.wait_closed(timeout=2) == 4403
    assert customer.denied == ["access revoked"]
    # Making a note internal closes customers' sockets on it too.
    viewer = await join(opened, node, ws, "viewer", ws.ids["px_shared_note"])
    await asyncio.wait_for(viewer.synced.wait(), 10)
    async with http(node, ws, "staff") as staff:
        changed = await staff.patch(f"/api/notes/{ws.ids['px_shared_note']}", json={"visibility": "internal"})
        assert changed.status_code == 200
    assert await viewer.wait_closed(timeout=2) == 4403


async def test_nothing_anyone_saw_is_lost_to_sigkill_even_across_compaction(
    node: Node, database: tuple[str, Workspace], opened: list[YClient]
) -> None:
    ws = database[1]
    note = ws.ids["px_shared_note"]
    writer = await join(opened, node, ws, "staff", note)
    reader = await join(opened, node, ws, "customer", note)
    await writer.wait_text("px shared note text")
    for i in range(30):
        await writer.edit(f" w{i}")
    expected = str(writer)
    await reader.wait_text(expected)  # the reader saw every edit
    # Everyone leaves: the room compacts its log into a snapshot (seen in the database, within a deadline).
    store = SqlNoteStore(Database(database[0]))
    await writer.close()
    await reader.close()
    try:
        async with asyncio.timeout(10):
            while await store.log_rows(note):
                await asyncio.sleep(0.02)
    finally:
        await store.db.close()
    writer = await join(opened, node, ws, "staff", note)
    reader = await join(opened, node, ws, "customer", note)
    await writer.wait_text(expected)
    for i in range(20):
        await writer.edit(f" after{i}")
    expected = str(writer)
    await reader.wait_text(expected)
    node.kill()
    node.start()
    assert await export(node, ws, note) == expected
    fresh = await join(opened, node, ws, "customer", note)
    await fresh.wait_text(expected)


async def test_fuzzed_frames_never_break_the_room_or_the_stored_note(
    node: Node, database: tuple[str, Workspace], opened: list[YClient]
) -> None:
    ws = database[1]
    note = ws.ids["px_shared_note"]
    honest = await join(opened, node, ws, "staff", note)
    await honest.wait_text("px shared note text")
    valid = p.encode_update(honest.doc.get_update())
    rng = random.Random(7)
    frames = (
        [
            b"",
            b"\x00",
            b"\x00\x02",
            b"\x00\x02\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f",  # integer too large
            b"\x00\x02\x80\x80\x80",  # truncated varint
            b"\x00\x02\x7f\x00\x01",  # lying length
            b"\x00\x00\x05\x01\x02",  # state vector shorter than it says
            b"\x00\x02\x03\xff\xfe\xfd",  # garbage update
            b"\x01\x05\x01\x01\x01\x01{",  # awareness, not JSON
            b"\x02\x07",
            b"\x09",
            valid[: len(valid) // 2],
        ]
        + [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))) for _ in range(40)]
    )
    frames += [bytes(b ^ (rng.randrange(256) if rng.random() < 0.1 else 0) for b in valid) for _ in range(40)]
    for frame in frames:
        attacker = await join(opened, node, ws, "staff", note)
        await asyncio.wait_for(attacker.synced.wait(), 10)
        await attacker.send_raw(frame)
        await asyncio.sleep(0)
    await honest.edit(" still fine")
    expected = "px shared note text still fine"
    # The room kept serving: a fresh client syncs to exactly the honest text.
    checker = await join(opened, node, ws, "customer", note)
    await checker.wait(lambda: "still fine" in str(checker))
    exported = await export(node, ws, note)
    assert exported == str(checker) == str(honest)
    assert exported.startswith("px shared note text") and exported.endswith("still fine")
    assert len(exported) <= len(expected) + 200
    async with http(node, ws, "staff") as api:
        assert (await api.get("/healthz")).status_code == 200
    node.kill()
    node.start()
    assert await export(node, ws, note) == exported


async def test_two_nodes_converge_and_a_late_node_catches_up(
    database: tuple[str, Workspace], tmp_path: Path, opened: list[YClient]
) -> None:
    ws = database[1]
    note = ws.ids["px_shared_note"]
    with cluster(tmp_path, database[0], REDIS, count=2) as (a, b):
        on_a = await join(opened, a, ws, "staff", note)
        await on_a.wait_text("px shared note text")
        for i in range(10):
            await on_a.edit(f" a{i}")
        # B opens the note late: it must have caught up before answering sync step 1.
        on_b = await join(opened, b, ws, "customer", note)
        await asyncio.wait_for(on_b.synced.wait(), 10)
        assert str(on_b) == str(on_a)
        edits = [on_a.edit(f" A{i}") for i in range(20)] + [on_b.edit(f" B{i}", 0) for i in range(20)]
        await asyncio.gather(*edits)
        await on_a.wait(lambda: str(on_a).count("A") == 20 and str(on_a).count("B") == 20)
        await on_b.wait_text(str(on_a))
        await on_a.set_awareness(1, {"user": {"name": "Staff", "color": "#1f6feb"}})
        await on_b.wait(lambda: on_a.doc.client_id in on_b.awareness, what="awareness across nodes")
        await on_a.close()
        await on_b.wait(lambda: on_b.awareness.get(on_a.doc.client_id, 1) is None, what="awareness removed")
        assert await export(b, ws, note) == str(on_b)


@pytest.mark.postgres
async def test_notes_on_postgresql_converge_across_nodes_and_survive_sigkill(
    pg_database: tuple[str, Workspace], tmp_path: Path, opened: list[YClient]
) -> None:
    url, ws = pg_database
    note = ws.ids["px_shared_note"]
    with cluster(tmp_path, url, REDIS, count=2) as (a, b):
        on_a = await join(opened, a, ws, "staff", note)
        on_b = await join(opened, b, ws, "customer", note)
        await on_a.wait_text("px shared note text")
        await asyncio.gather(*(on_a.edit(f" A{i}") for i in range(15)), *(on_b.edit(f" B{i}", 0) for i in range(15)))
        await on_a.wait(lambda: str(on_a).count("A") == 15 and str(on_a).count("B") == 15)
        await on_b.wait_text(str(on_a))
        expected = str(on_a)
        a.kill()
        b.kill()
        a.start()
        assert await export(a, ws, note) == expected
        fresh = await join(opened, a, ws, "customer", note)
        await fresh.wait_text(expected)


async def test_notes_converge_after_redis_restarts_while_they_are_open(
    database: tuple[str, Workspace], tmp_path: Path, opened: list[YClient]
) -> None:
    ws = database[1]
    note = ws.ids["px_shared_note"]
    redis = RedisServer(tmp_path).start()
    try:
        with cluster(tmp_path, database[0], redis.url, count=2) as (a, b):
            on_a = await join(opened, a, ws, "staff", note)
            on_b = await join(opened, b, ws, "customer", note)
            await on_a.wait_text("px shared note text")
            await on_a.edit(" before")
            await on_b.wait_text(str(on_a))
            redis.stop()
            # Each node keeps serving its own editors and stores their updates; the relay between them is down.
            for i in range(5):
                await on_a.edit(f" [a{i}]")
                await on_b.edit(f" [b{i}]", 0)
            await on_a.wait(lambda: str(on_a).count("[a") == 5, what="A's own edits")
            redis.start()
            # After reconnecting, each node re-reads the note from the database: both sides converge.
            await on_a.wait(lambda: str(on_a).count("[b") == 5, timeout=30, what="B's edits reach A")
            await on_b.wait(lambda: str(on_b) == str(on_a), timeout=30, what="A's edits reach B")
            await on_a.edit(" after")
            await on_b.wait_text(str(on_a))
            assert await export(b, ws, note) == str(on_a)
    finally:
        redis.stop()


async def test_note_sockets_from_a_foreign_origin_are_refused(node: Node, database: tuple[str, Workspace]) -> None:
    ws = database[1]
    url = note_url(node, ws.ids["px_shared_note"])
    foreign = await YClient.connect(url, origin="https://evil.example", token=ws.token("staff"))
    try:
        assert await foreign.wait_closed(timeout=5) == 4403
        assert not foreign.synced.is_set()
    finally:
        await foreign.close()
    # The node's own origin is let in.
    own = await YClient.connect(url, origin=node.http, token=ws.token("staff"))
    try:
        await own.wait_text("px shared note text")
    finally:
        await own.close()


async def test_logout_closes_that_sessions_note_sockets_with_4401(
    node: Node, database: tuple[str, Workspace], opened: list[YClient]
) -> None:
    ws = database[1]
    note = ws.ids["px_shared_note"]
    async with httpx.AsyncClient(base_url=node.http, timeout=10) as api:
        login = await api.post("/api/auth/login", json={"email": ws.emails["customer"], "password": PASSWORD})
        token = login.json()["token"]
        leaving = await YClient.connect(note_url(node, note), token=token)
        opened.append(leaving)
        staying = await join(opened, node, ws, "customer", note)  # the same user, another session
        await asyncio.wait_for(leaving.synced.wait(), 10)
        await asyncio.wait_for(staying.synced.wait(), 10)
        assert (await api.post("/api/auth/logout", headers={"authorization": f"Bearer {token}"})).status_code == 204
    assert await leaving.wait_closed(timeout=2) == 4401
    await staying.edit(" still here")
    await staying.wait_text("px shared note text still here")
    assert staying.close_code is None


async def test_an_oversize_update_closes_with_1009_and_changes_nothing(
    node: Node, database: tuple[str, Workspace], opened: list[YClient]
) -> None:
    ws = database[1]
    note = ws.ids["px_shared_note"]
    bystander, attacker = await bystander_and_staff(opened, node, ws, note)
    # Over the room's 1,000,000-byte limit, under the server's WebSocket limit (1 MiB): the room itself refuses it.
    attacker.text.insert(0, "x" * 1_000_100)
    big = p.encode_update(attacker.doc.get_update())
    assert 1_000_000 < len(big) < 1_048_576
    await attacker.send_raw(big)
    assert await attacker.wait_closed(timeout=10) == 1009
    await bystander.edit(" unharmed")
    await bystander.wait_text("px shared note text unharmed")
    assert await export(node, ws, note) == "px shared note text unharmed"


async def test_a_text_frame_closes_the_socket_with_4400_and_others_keep_editing(
    node: Node, database: tuple[str, Workspace], opened: list[YClient]
) -> None:
    """The notes protocol is binary: a text message (read straight from uvicorn's protocol, as every message is)
    closes its socket, and the rest of the room goes on."""
    ws = database[1]
    note = ws.ids["px_shared_note"]
    bystander, sender = await bystander_and_staff(opened, node, ws, note)
    await sender.send_raw("not a y-websocket message")
    assert await sender.wait_closed(timeout=10) == 4400
    await bystander.edit(" unharmed")
    await bystander.wait_text("px shared note text unharmed")


async def test_a_flood_of_messages_closes_with_4429_and_others_keep_editing(
    node: Node, database: tuple[str, Workspace], opened: list[YClient]
) -> None:
    ws = database[1]
    note = ws.ids["px_shared_note"]
    bystander = await join(opened, node, ws, "customer", note)
    flooder = await join(opened, node, ws, "staff", note)
    await asyncio.wait_for(flooder.synced.wait(), 10)
    query_awareness = bytes([p.MessageType.QUERY_AWARENESS])
    with contextlib.suppress(websockets.ConnectionClosed):
        for _ in range(2000):  # the limit is 100/s with a burst of 300
            await flooder.send_raw(query_awareness)
    assert await flooder.wait_closed(timeout=5) == 4429
    # Typed at the end of the text the bystander has: before its sync that is empty and " unharmed" lands first.
    await bystander.wait_text("px shared note text")
    await bystander.edit(" unharmed")
    await bystander.wait_text("px shared note text unharmed")
    # A well-paced editor stays well under the limit.
    editor = await join(opened, node, ws, "staff", note)
    for i in range(40):
        await editor.edit(f" {i}")
        await asyncio.sleep(0.02)
    await bystander.wait(lambda: str(bystander).endswith(" 39"))
    assert editor.close_code is None


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
async def test_editors_of_a_node_that_goes_away_continue_on_another_with_nothing_lost(
    database: tuple[str, Workspace], tmp_path: Path, opened: list[YClient], how: str
) -> None:
    ws = database[1]
    note = ws.ids["px_shared_note"]
    with cluster(tmp_path, database[0], REDIS, count=2) as (a, b):
        writer = await join(opened, a, ws, "staff", note)
        reader = await join(opened, b, ws, "customer", note)
        await writer.wait_text("px shared note text")
        for i in range(20):
            await writer.edit(f" t{i}")
        expected = str(writer)
        await reader.wait_text(expected)  # everything the writer typed was seen on the other node
        if how == "sigterm":
            await asyncio.to_thread(a.stop)
            # A node shutting down tells its editors to reconnect elsewhere (1012 service restart, or 1001).
            assert await writer.wait_closed(timeout=20) in (1001, 1012)
        else:
            await asyncio.to_thread(a.kill)
            assert await writer.wait_closed(timeout=20) is not None
        again = await join(opened, b, ws, "staff", note)
        await again.wait_text(expected)
        await again.edit(" after")
        await reader.wait_text(expected + " after")
        assert await export(b, ws, note) == expected + " after"
