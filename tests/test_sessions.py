"""Where a person is signed in: their sessions listed with device, address and last use; one ended from the list,
or all but the current one; each end audited; and an ended session's sockets (`/ws` and `/yjs`) closing on another
node at once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from channels.client import TandemClient
from server.accounts.devices import describe_device
from tests.conftest import bearer
from tests.crdt.yclient import YClient
from tests.nodes import Node
from tests.test_notes_access import opened
from tests.workspace import PASSWORD, Workspace

__all__ = ["opened"]

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/18.1 Mobile/15E148 Safari/604.1"
)
EDGE = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0"
    " Safari/537.36 Edg/131.0.0.0"
)


def sign_in(client: TestClient, ws: Workspace, user_agent: str) -> str:
    answer = client.post(
        "/api/auth/login", json={"email": ws.emails["staff"], "password": PASSWORD}, headers={"user-agent": user_agent}
    )
    assert answer.status_code == 200, answer.text
    client.cookies.clear()
    return str(answer.json()["token"])


def listed(client: TestClient, token: str) -> list[dict[str, Any]]:
    answer = client.get("/api/me/sessions", headers={"authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]  # type: ignore[no-any-return]


def test_devices_read_as_people_name_them() -> None:
    assert describe_device(FIREFOX) == "Firefox on Linux"
    assert describe_device(IPHONE) == "Safari on iOS"
    assert describe_device(EDGE) == "Edge on Windows"
    assert describe_device("") == "Unknown device"


@pytest.mark.both_databases
def test_sessions_are_listed_and_ended_one_or_all_but_this_one(client: TestClient, workspace: Workspace) -> None:
    laptop, phone, work = (sign_in(client, workspace, ua) for ua in (FIREFOX, IPHONE, EDGE))
    mine = listed(client, laptop)
    devices = {s["device"]: s for s in mine}
    assert {"Firefox on Linux", "Safari on iOS", "Edge on Windows"} <= set(devices)
    assert [s["device"] for s in mine if s["current"]] == ["Firefox on Linux"]
    assert devices["Safari on iOS"]["ip"] == "testclient" and devices["Safari on iOS"]["last_seen_at"]
    # The parts a client words in its reader's language.
    assert (devices["Safari on iOS"]["browser"], devices["Safari on iOS"]["system"]) == ("Safari", "iOS")

    # Nobody else's sessions: not listed, and not endable (404, as for a session that does not exist).
    assert all(s["id"] != devices["Firefox on Linux"]["id"] for s in listed(client, workspace.token("customer")))
    theirs = client.delete(f"/api/me/sessions/{devices['Safari on iOS']['id']}", headers=bearer(workspace, "customer"))
    assert theirs.status_code == 404 and theirs.json()["error"] == "not_found"

    ended = client.delete(
        f"/api/me/sessions/{devices['Safari on iOS']['id']}", headers={"authorization": f"Bearer {laptop}"}
    )
    assert ended.status_code == 204
    assert client.get("/api/me", headers={"authorization": f"Bearer {phone}"}).status_code == 401
    assert "Safari on iOS" not in {s["device"] for s in listed(client, laptop)}

    others = client.post("/api/me/sessions/end-others", headers={"authorization": f"Bearer {laptop}"})
    assert others.status_code == 200 and others.json()["ended"] >= 2  # Edge and the seeded staff session
    assert client.get("/api/me", headers={"authorization": f"Bearer {work}"}).status_code == 401
    assert [s["device"] for s in listed(client, laptop)] == ["Firefox on Linux"]

    audit = client.get("/api/audit", params={"action": "session.ended"}, headers=bearer(workspace, "owner")).json()
    assert {e["details"]["device"] for e in audit["items"]} >= {"Safari on iOS", "Edge on Windows"}
    assert {e["details"]["by"] for e in audit["items"]} == {"user", "user_everywhere_else"}


def test_a_personal_api_token_cannot_list_or_end_sessions(client: TestClient, workspace: Workspace) -> None:
    made = client.post(
        "/api/me/tokens", json={"name": "s", "scopes": ["read", "write"]}, headers=bearer(workspace, "staff")
    )
    token = {"authorization": f"Bearer {made.json()['token']}"}
    assert client.get("/api/me/sessions", headers=token).status_code == 403
    assert client.post("/api/me/sessions/end-others", headers=token).status_code == 403


@pytest.mark.parametrize("how", ["one", "everywhere_else"])
async def test_ending_a_session_from_the_list_closes_its_socket_on_another_node_within_a_second(
    two_nodes: list[Node],
    database: tuple[str, Workspace],
    clients: list[TandemClient],
    opened: list[YClient],
    how: str,
) -> None:
    a, b = two_nodes
    ws = database[1]
    async with httpx.AsyncClient(base_url=a.http, timeout=10) as http:
        tokens = []
        for user_agent in (FIREFOX, IPHONE):
            answer = await http.post(
                "/api/auth/login",
                json={"email": ws.emails["staff"], "password": PASSWORD},
                headers={"user-agent": user_agent},
            )
            assert answer.status_code == 200, answer.text
            tokens.append(str(answer.json()["token"]))
            http.cookies.clear()
        laptop, phone = tokens
        phone_socket = await TandemClient.connect(b.ws, token=phone, ping_interval=None)
        laptop_socket = await TandemClient.connect(b.ws, token=laptop, ping_interval=None)
        clients.extend([phone_socket, laptop_socket])
        await phone_socket.subscribe(f"project:{ws.ids['px']}:staff")
        note = f"ws://127.0.0.1:{b.port}/yjs/{ws.ids['px_shared_note']}"
        phone_note = await YClient.connect(note, token=phone)
        laptop_note = await YClient.connect(note, token=laptop)
        opened.extend([phone_note, laptop_note])
        for editor in (phone_note, laptop_note):
            await asyncio.wait_for(editor.synced.wait(), 10)

        me = {"authorization": f"Bearer {laptop}"}
        sessions = (await http.get("/api/me/sessions", headers=me)).json()["items"]
        started = time.monotonic()
        if how == "one":
            target = next(s for s in sessions if s["device"] == "Safari on iOS")
            assert (await http.delete(f"/api/me/sessions/{target['id']}", headers=me)).status_code == 204
        else:
            assert (await http.post("/api/me/sessions/end-others", headers=me)).status_code == 200
        # Both of its sockets, /ws and /yjs, close on the other node within a second.
        async with asyncio.timeout(1):
            while phone_socket.close_code is None or phone_note.close_code is None:
                await asyncio.sleep(0.01)
        elapsed = f"closed after {time.monotonic() - started:.3f}s"
        assert phone_socket.close_code == 4401 and phone_note.close_code == 4401, elapsed
        # The session doing the ending keeps its sockets.
        assert laptop_socket.close_code is None and laptop_note.close_code is None
