"""Items that hang off other items are only as visible as their parents (issue 19): the policy's one rule, and every
read path that asks it. Each test below is a customer-side check that failed before the rule was applied."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from server.models import Visibility
from server.policy import effective_visibility
from tests.conftest import bearer
from tests.workspace import Workspace

pytestmark = pytest.mark.both_databases

SHARED, INTERNAL = Visibility.SHARED, Visibility.INTERNAL


def test_an_item_is_shared_only_when_it_and_every_parent_it_has_are_shared() -> None:
    assert effective_visibility(SHARED) == SHARED
    assert effective_visibility(SHARED, (None,)) == SHARED
    assert effective_visibility(SHARED, (SHARED, None)) == SHARED
    assert effective_visibility(SHARED, (INTERNAL,)) == INTERNAL
    assert effective_visibility(SHARED, (SHARED, INTERNAL)) == INTERNAL
    assert effective_visibility(INTERNAL, (SHARED,)) == INTERNAL
    assert effective_visibility("anything else") == INTERNAL


def make_internal(client: TestClient, ws: Workspace, task_id: int) -> None:
    response = client.patch(
        f"/api/tasks/{task_id}",
        json={"visibility": "internal"},
        headers=bearer(ws, "staff"),
    )
    assert response.status_code == 200, response.text


def shared_note_on_task(client: TestClient, ws: Workspace, task_id: int, text: str = "Customer agenda") -> int:
    response = client.post(
        f"/api/projects/{ws.ids['px']}/notes",
        json={"title": "On the task", "visibility": "shared", "task_id": task_id, "content": text},
        headers=bearer(ws, "staff"),
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def test_a_shared_note_of_a_task_made_internal_is_gone_for_customers_and_staff_can_still_rename_it(
    client: TestClient, workspace: Workspace
) -> None:
    ws = workspace
    task = ws.ids["px_shared_task"]
    note = shared_note_on_task(client, ws, task)
    assert client.get(f"/api/notes/{note}", headers=bearer(ws, "customer")).status_code == 200
    make_internal(client, ws, task)
    customer = bearer(ws, "customer")
    listed = client.get(f"/api/projects/{ws.ids['px']}/notes", headers=customer).json()["items"]
    assert note not in [n["id"] for n in listed]
    for path in (f"/api/notes/{note}", f"/api/notes/{note}/export", f"/api/notes/{note}/versions"):
        response = client.get(path, headers=customer)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"] == "not_found"
    renamed = client.patch(f"/api/notes/{note}", json={"title": "Renamed"}, headers=bearer(ws, "staff"))
    assert renamed.status_code == 200, renamed.text
