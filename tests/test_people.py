"""Managing people and projects through the API: resending invitations, projects from templates, clients and staff."""

from __future__ import annotations

import asyncio

import httpx
from starlette.testclient import TestClient

from channels.client import TandemClient
from tests.conftest import bearer
from tests.nodes import Node, connect
from tests.workspace import INVITE_TOKEN, Workspace


def test_resend_gives_a_new_link_and_voids_the_old(client: TestClient, workspace: Workspace) -> None:
    owner = bearer(workspace, "owner")
    invite = workspace.ids["px_invite"]
    before = client.get(f"/api/invites?project_id={workspace.ids['px']}", headers=owner).json()["items"]
    resent = client.post(f"/api/invites/{invite}/resend", headers=owner)
    assert resent.status_code == 200, resent.text
    body = resent.json()
    assert body["status"] == "invited" and body["link"].startswith("http://testserver/invite#")  # no SMTP: shown
    assert body["invite"]["expires_at"] >= next(i for i in before if i["id"] == invite)["expires_at"]
    guest = TestClient(client.app)
    assert guest.post("/api/invites/preview", json={"token": INVITE_TOKEN}).json()["error"] == "invite_invalid"
    token = body["link"].split("#", 1)[1]
    assert guest.post("/api/invites/preview", json={"token": token}).status_code == 200
    audit = client.get("/api/audit?action=invite.resent", headers=owner).json()["items"]
    assert [e["target_id"] for e in audit] == [invite]
    # Once accepted, there is nothing to resend.
    accepted = guest.post(
        "/api/invites/accept", json={"token": token, "name": "Nia", "password": "a fine passphrase here"}
    )
    assert accepted.status_code == 201, accepted.text
    again = client.post(f"/api/invites/{invite}/resend", headers=owner)
    assert again.status_code == 409 and again.json()["error"] == "invite_accepted"


def test_resending_a_missing_invite_is_not_found(client: TestClient, workspace: Workspace) -> None:
    response = client.post("/api/invites/999999/resend", headers=bearer(workspace, "owner"))
    assert response.status_code == 404


def test_project_from_a_template_gets_its_statuses(client: TestClient, workspace: Workspace) -> None:
    owner = bearer(workspace, "owner")
    template = client.get("/api/workflow-templates", headers=owner).json()["items"][0]
    created = client.post(
        "/api/projects",
        headers=owner,
        json={"name": "Launch", "client_id": workspace.ids["client_x"], "template_id": template["id"]},
    )
    assert created.status_code == 201, created.text
    statuses = client.get(f"/api/projects/{created.json()['id']}/statuses", headers=owner).json()["items"]
    assert [(s["name"], s["category"]) for s in statuses] == [(s["name"], s["category"]) for s in template["statuses"]]
    blank = client.post("/api/projects", headers=owner, json={"name": "Blank", "client_id": workspace.ids["client_x"]})
    assert [
        s["name"] for s in client.get(f"/api/projects/{blank.json()['id']}/statuses", headers=owner).json()["items"]
    ]


def test_project_form_errors_name_their_field(client: TestClient, workspace: Workspace) -> None:
    owner = bearer(workspace, "owner")
    bad_template = client.post(
        "/api/projects",
        headers=owner,
        json={"name": "P", "client_id": workspace.ids["client_x"], "template_id": 999999},
    )
    assert bad_template.status_code == 422 and bad_template.json()["details"][0]["field"] == "template_id"
    bad_client = client.post("/api/projects", headers=owner, json={"name": "P", "client_id": 999999})
    assert bad_client.status_code == 422 and bad_client.json()["details"][0]["field"] == "client_id"
    # Another organization's template is as unknown as a missing one.
    stranger_template = client.post(
        "/api/workflow-templates",
        headers=bearer(workspace, "stranger"),
        json={"name": "B's", "statuses": [{"name": "Only", "category": "todo", "colour": "#336699"}]},
    ).json()["id"]
    crossed = client.post(
        "/api/projects",
        headers=owner,
        json={"name": "P", "client_id": workspace.ids["client_x"], "template_id": stranger_template},
    )
    assert crossed.status_code == 422 and crossed.json()["details"][0]["field"] == "template_id"


def test_owner_renames_a_client(client: TestClient, workspace: Workspace) -> None:
    owner = bearer(workspace, "owner")
    renamed = client.patch(f"/api/clients/{workspace.ids['client_x']}", headers=owner, json={"name": "Client X AB"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Client X AB"
    names = [c["name"] for c in client.get("/api/clients", headers=owner).json()["items"]]
    assert "Client X AB" in names
    empty = client.patch(f"/api/clients/{workspace.ids['client_x']}", headers=owner, json={"name": ""})
    assert empty.status_code == 422 and empty.json()["details"][0]["field"] == "name"


def test_owner_manages_staff(client: TestClient, workspace: Workspace) -> None:
    owner = bearer(workspace, "owner")
    staff = client.get("/api/staff", headers=bearer(workspace, "staff")).json()["items"]
    assert {s["id"] for s in staff} == {workspace.users[r] for r in ("owner", "staff", "spare_staff")}
    spare = workspace.users["spare_staff"]
    promoted = client.patch(f"/api/staff/{spare}", headers=owner, json={"role": "admin"})
    assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
    # An admin may now create clients; deactivating ends their sessions at once.
    assert client.post("/api/clients", headers=bearer(workspace, "spare_staff"), json={"name": "Z"}).status_code == 201
    off = client.patch(f"/api/staff/{spare}", headers=owner, json={"active": False})
    assert off.status_code == 200 and off.json()["active"] is False
    assert client.get("/api/me", headers=bearer(workspace, "spare_staff")).status_code == 401
    events = client.get("/api/audit?action=staff.", headers=owner).json()["items"]
    assert {e["action"] for e in events} == {"staff.role_changed", "staff.active_changed"}
    # Owners (the caller too) are not changed here; customers are not staff.
    mine = client.patch(f"/api/staff/{workspace.users['owner']}", headers=owner, json={"role": "staff"})
    assert mine.status_code == 409 and mine.json()["error"] == "owner_locked"
    customer = client.patch(f"/api/staff/{workspace.users['customer']}", headers=owner, json={"role": "admin"})
    assert customer.status_code == 404
    owner_only = client.patch(f"/api/staff/{spare}", headers=bearer(workspace, "staff"), json={"active": True})
    assert owner_only.status_code == 403


async def test_deactivating_a_colleague_closes_their_sockets_on_every_node(
    two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    socket = await connect(clients, b, ws, "spare_staff")
    await socket.subscribe(f"project:{ws.ids['px']}:staff")
    colleague = await connect(clients, b, ws, "staff")
    async with httpx.AsyncClient(base_url=a.http, timeout=10) as http:
        off = await http.patch(
            f"/api/staff/{ws.users['spare_staff']}", json={"active": False}, headers=bearer(ws, "owner")
        )
        assert off.status_code == 200, off.text
    async with asyncio.timeout(2):
        while socket.close_code is None:
            await asyncio.sleep(0.02)
    assert socket.close_code == 4401
    assert colleague.close_code is None
