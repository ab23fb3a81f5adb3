"""Personal API tokens on real nodes: sockets with a read token, revocation closing them on every node, and the
example script of docs/API.md run against a node."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import websockets

from channels.client import ClientError, TandemClient
from server.accounts.auth import load_actor
from server.db import Database
from server.live.notes_ws import Access, access_to_note
from server.models import User
from tests.nodes import ROOT, Node, bearer, cluster, wait_for_passes
from tests.workspace import Workspace

EXAMPLE = ROOT / "docs" / "examples" / "tandem_tasks.py"


async def make_token(http: httpx.AsyncClient, ws: Workspace, role: str, *scopes: str) -> dict[str, object]:
    response = await http.post(
        "/api/me/tokens",
        json={"name": "live test", "scopes": list(scopes)},
        headers={"authorization": f"Bearer {ws.token(role)}"},
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_read_token_subscribes_and_revoking_closes_its_sockets_everywhere(
    two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    async with httpx.AsyncClient(base_url=a.http, timeout=10) as http:
        made = await make_token(http, ws, "customer", "read")
        token = str(made["token"])
        socket = await TandemClient.connect(b.ws, token=token, ping_interval=None)
        clients.append(socket)
        session_socket = await TandemClient.connect(b.ws, token=ws.token("customer"), ping_interval=None)
        clients.append(session_socket)
        await socket.subscribe(f"project:{ws.ids['px']}:shared")
        await session_socket.subscribe(f"project:{ws.ids['px']}:shared")
        # The policy still decides: the customer's token cannot listen to the staff stream.
        with pytest.raises(ClientError):
            await socket.subscribe(f"project:{ws.ids['px']}:staff")

        revoked = await http.delete(
            f"/api/me/tokens/{made['id']}", headers={"authorization": f"Bearer {ws.token('customer')}"}
        )
        assert revoked.status_code == 204
        async with asyncio.timeout(5):
            while socket.close_code is None:
                await asyncio.sleep(0.02)
        assert socket.close_code == 4401
        assert session_socket.close_code is None  # the owner's browser session is untouched
        assert (await http.get("/api/me", headers={"authorization": f"Bearer {token}"})).status_code == 401


async def test_a_token_without_read_scope_is_refused_on_sockets(
    two_nodes: list[Node], database: tuple[str, Workspace]
) -> None:
    ws = database[1]
    async with httpx.AsyncClient(base_url=two_nodes[0].http, timeout=10) as http:
        made = await make_token(http, ws, "staff", "write")
    async with websockets.connect(two_nodes[1].ws, additional_headers=bearer(str(made["token"]))) as refused:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(refused.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    assert "insufficient_scope" in closed.value.rcvd.reason


@pytest.fixture
def node(database: tuple[str, Workspace], tmp_path: Path) -> Iterator[Node]:
    with cluster(tmp_path, database[0], None, count=1) as nodes:
        yield nodes[0]


def run_example(node: Node, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        env={"TANDEM_URL": node.http, "TANDEM_TOKEN": token, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_the_example_script_lists_and_moves_tasks(node: Node, database: tuple[str, Workspace]) -> None:
    ws = database[1]
    px, task_id = ws.ids["px"], ws.ids["px_shared_task"]
    async with httpx.AsyncClient(base_url=node.http, timeout=10) as http:
        staff = await make_token(http, ws, "staff", "read", "write")
        customer = await make_token(http, ws, "customer", "read")

        listed = await asyncio.to_thread(run_example, node, str(staff["token"]), "list", str(px))
        assert listed.returncode == 0, listed.stderr
        assert f"{task_id}\tTo do\tpx shared task" in listed.stdout
        assert "px internal task SECRET" in listed.stdout

        moved = await asyncio.to_thread(run_example, node, str(staff["token"]), "move", str(task_id), "done")
        assert moved.returncode == 0, moved.stderr
        task = await http.get(f"/api/tasks/{task_id}", headers={"authorization": f"Bearer {ws.token('staff')}"})
        assert task.json()["status_id"] == ws.ids["px_done"]

        # The customer's read token: only shared tasks, and moving is outside its scope.
        theirs = await asyncio.to_thread(run_example, node, str(customer["token"]), "list", str(px))
        assert theirs.returncode == 0, theirs.stderr
        assert "px shared task" in theirs.stdout and "SECRET" not in theirs.stdout
        refused = await asyncio.to_thread(run_example, node, str(customer["token"]), "move", str(task_id), "To do")
        assert refused.returncode == 1 and "insufficient_scope" in refused.stderr


async def test_a_token_socket_outlives_session_sweeps_until_the_token_expires(
    database: tuple[str, Workspace], tmp_path: Path, clients: list[TandemClient]
) -> None:
    url, ws = database
    with cluster(tmp_path, url, None, count=1) as (node,):
        node.stop()
        node.env["TANDEM_SESSION_SWEEP_SECONDS"] = "1"
        node.start()
        async with httpx.AsyncClient(base_url=node.http, timeout=10) as http:
            made = await make_token(http, ws, "customer", "read")
        db_file = url.removeprefix("sqlite:///")

        def expire_in(delta: dt.timedelta) -> None:
            expires = dt.datetime.now(dt.UTC).replace(tzinfo=None) + delta
            with sqlite3.connect(db_file) as conn:
                conn.execute(
                    "UPDATE api_tokens SET expires_at = ? WHERE id = ?", (expires.isoformat(sep=" "), made["id"])
                )

        expire_in(dt.timedelta(hours=1))
        socket = await TandemClient.connect(node.ws, token=str(made["token"]), ping_interval=None)
        clients.append(socket)
        await socket.subscribe(f"project:{ws.ids['px']}:shared")
        await wait_for_passes(node, "session-sweeper", 2)  # a valid token is not mistaken for an ended session
        assert socket.close_code is None
        expire_in(-dt.timedelta(seconds=1))
        async with asyncio.timeout(10):
            while socket.close_code is None:
                await asyncio.sleep(0.05)
        assert socket.close_code == 4401


async def test_a_read_token_opens_notes_read_only(database: tuple[str, Workspace]) -> None:
    url, ws = database
    db = Database(url)
    try:
        async with db.session() as session:
            user = await session.get(User, ws.users["staff"])
            assert user is not None
            actor = await load_actor(session, user)
        note = ws.ids["px_shared_note"]
        assert await access_to_note(db, actor, note) is Access.WRITE
        assert await access_to_note(db, replace(actor, scopes=frozenset({"read", "write"})), note) is Access.WRITE
        assert await access_to_note(db, replace(actor, scopes=frozenset({"read"})), note) is Access.READ
    finally:
        await db.close()
