"""Search (server/search/routes.py): every kind a person may open, and nothing else."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.conftest import bearer
from tests.workspace import Workspace


def search(client: TestClient, ws: Workspace, role: str, q: str) -> list[dict[str, object]]:
    answer = client.get("/api/search", params={"q": q}, headers=bearer(ws, role))
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]  # type: ignore[no-any-return]


def test_every_kind_is_found_with_a_link(client: TestClient, workspace: Workspace) -> None:
    ws = workspace
    px = ws.ids["px"]
    found = {(h["kind"], h["link"]) for h in search(client, ws, "customer", "px")}
    assert {
        ("task", f"/projects/{px}/tasks/{ws.ids['px_shared_task']}"),
        ("comment", f"/projects/{px}/tasks/{ws.ids['px_shared_task']}#comment-{ws.ids['px_shared_comment']}"),
        ("request", f"/projects/{px}/requests/{ws.ids['px_request']}"),
        ("note", f"/projects/{px}/notes/{ws.ids['px_shared_note']}"),
    } <= found
    files = search(client, ws, "customer", "brief")
    assert [(h["kind"], h["file_id"], h["link"]) for h in files] == [
        ("file", ws.ids["px_shared_file"], f"/projects/{px}/files")
    ]


def test_customers_never_find_internal_items_or_other_clients(client: TestClient, workspace: Workspace) -> None:
    ws = workspace
    assert search(client, ws, "customer", "SECRET") == []
    assert search(client, ws, "viewer", "SECRET") == []
    assert search(client, ws, "other_customer", "px") == []
    assert search(client, ws, "stranger", "px") == []
    staff = {h["kind"] for h in search(client, ws, "owner", "SECRET")}
    assert {"task", "comment", "file", "note"} <= staff


def test_a_shared_note_on_a_task_made_internal_is_hidden_with_it(client: TestClient, workspace: Workspace) -> None:
    ws = workspace
    task = ws.ids["px_shared_task"]
    made = client.post(
        f"/api/projects/{ws.ids['px']}/notes",
        headers=bearer(ws, "staff"),
        json={"title": "Kickoff agenda", "visibility": "shared", "task_id": task},
    )
    assert made.status_code == 201, made.text
    assert [h["kind"] for h in search(client, ws, "customer", "Kickoff")] == ["note"]
    hidden = client.patch(f"/api/tasks/{task}", headers=bearer(ws, "staff"), json={"visibility": "internal"})
    assert hidden.status_code == 200, hidden.text
    assert search(client, ws, "customer", "Kickoff") == []
    assert [h["kind"] for h in search(client, ws, "staff", "Kickoff")] == ["note"]
