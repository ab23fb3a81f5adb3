"""The organization's settings: staff read whether staff may sign in by link, owners change it, audited."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.conftest import bearer
from tests.workspace import Workspace


def test_owners_let_staff_sign_in_by_link(client: TestClient, workspace: Workspace) -> None:
    staff, owner = bearer(workspace, "staff"), bearer(workspace, "owner")
    assert client.get("/api/organization/settings", headers=staff).json() == {"allow_staff_link_sign_in": False}
    refused = client.patch("/api/organization/settings", headers=staff, json={"allow_staff_link_sign_in": True})
    assert refused.status_code == 403
    assert client.get("/api/organization/settings", headers=bearer(workspace, "customer")).status_code == 403
    changed = client.patch("/api/organization/settings", headers=owner, json={"allow_staff_link_sign_in": True})
    assert changed.json() == {"allow_staff_link_sign_in": True}
    assert client.get("/api/organization/settings", headers=staff).json() == {"allow_staff_link_sign_in": True}
    assert (
        client.patch("/api/organization/settings", headers=owner, json={"allow_staff_link_sign_in": None}).status_code
        == 422
    )
    events = client.get("/api/audit?action=organization.settings_changed", headers=owner).json()["items"]
    assert [(e["action"], e["details"]) for e in events][:1] == [
        ("organization.settings_changed", {"allow_staff_link_sign_in": True})
    ]
    # Another organization's setting is its own.
    other = client.get("/api/organization/settings", headers=bearer(workspace, "stranger")).json()
    assert other == {"allow_staff_link_sign_in": False}
