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


def new_shared_task(client: TestClient, ws: Workspace) -> int:
    response = client.post(
        f"/api/projects/{ws.ids['px']}/tasks",
        json={"title": "Shared for now", "visibility": "shared"},
        headers=bearer(ws, "staff"),
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


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


def test_a_shared_task_id_filters_notes_and_an_internal_one_answers_like_a_missing_one(
    client: TestClient, workspace: Workspace
) -> None:
    ws = workspace
    customer = bearer(ws, "customer")
    shared_note_on_task(client, ws, ws.ids["px_shared_task"])
    url = f"/api/projects/{ws.ids['px']}/notes"
    assert client.get(url, params={"task_id": ws.ids["px_shared_task"]}, headers=customer).json()["items"]
    # A shared note on an internal task (made so after the fact): customers must not learn it is there.
    task = new_shared_task(client, ws)
    note = shared_note_on_task(client, ws, task)
    make_internal(client, ws, task)
    internal = client.get(url, params={"task_id": task}, headers=customer)
    missing = client.get(url, params={"task_id": 987654}, headers=customer)
    assert internal.status_code == missing.status_code == 200
    assert internal.json() == missing.json() == {"items": []}
    staff = client.get(url, params={"task_id": task}, headers=bearer(ws, "staff"))
    assert [n["id"] for n in staff.json()["items"]] == [note]


def new_shared_milestone(client: TestClient, ws: Workspace) -> int:
    response = client.post(
        f"/api/projects/{ws.ids['px']}/milestones",
        json={"name": "Launch SECRET-LATER", "visibility": "shared"},
        headers=bearer(ws, "owner"),
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def test_a_feedback_request_on_a_milestone_made_internal_is_gone_for_customers(
    client: TestClient, workspace: Workspace
) -> None:
    ws = workspace
    milestone = new_shared_milestone(client, ws)
    asked = client.post(
        f"/api/projects/{ws.ids['px']}/feedback/requests",
        json={"milestone_id": milestone},
        headers=bearer(ws, "staff"),
    )
    assert asked.status_code == 201, asked.text
    request_id = asked.json()["id"]
    customer = bearer(ws, "customer")
    listed = client.get(f"/api/projects/{ws.ids['px']}/feedback/requests", headers=customer).json()["items"]
    assert {r["id"]: r["milestone_name"] for r in listed}[request_id] == "Launch SECRET-LATER"
    hidden = client.patch(f"/api/milestones/{milestone}", json={"visibility": "internal"}, headers=bearer(ws, "owner"))
    assert hidden.status_code == 200, hidden.text
    listed = client.get(f"/api/projects/{ws.ids['px']}/feedback/requests", headers=customer)
    assert "SECRET-LATER" not in listed.text
    assert request_id not in [r["id"] for r in listed.json()["items"]]
    assert ws.ids["px_feedback_request"] in [r["id"] for r in listed.json()["items"]]  # no milestone: still asked
    answer = {"score": 4, "helped": "x", "hindered": "y"}
    refused = client.post(f"/api/feedback/requests/{request_id}/answers", json=answer, headers=customer)
    missing = client.post("/api/feedback/requests/987654/answers", json=answer, headers=customer)
    assert refused.status_code == missing.status_code == 404
    assert refused.json() == missing.json()
    staff = client.get(f"/api/projects/{ws.ids['px']}/feedback/requests", headers=bearer(ws, "staff")).json()
    assert {r["id"]: r["milestone_name"] for r in staff["items"]}[request_id] == "Launch SECRET-LATER"


def test_reading_past_the_newest_comment_never_reveals_an_internal_one(
    client: TestClient, workspace: Workspace
) -> None:
    ws = workspace
    task = ws.ids["px_shared_task"]
    internal = client.post(
        f"/api/tasks/{task}/comments",
        json={"body": "staff only", "visibility": "internal"},
        headers=bearer(ws, "staff"),
    )
    assert internal.status_code == 201, internal.text
    newest_visible = max(ws.ids["px_shared_comment"], ws.ids["px_customer_comment"])
    assert internal.json()["id"] > newest_visible
    answer = client.post(f"/api/tasks/{task}/read", json={"comment_id": 2**31 - 1}, headers=bearer(ws, "customer"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["last_read_comment_id"] == newest_visible
    staff = client.post(f"/api/tasks/{task}/read", json={"comment_id": 2**31 - 1}, headers=bearer(ws, "staff"))
    assert staff.json()["last_read_comment_id"] == internal.json()["id"]


def upload(client: TestClient, ws: Workspace, role: str, **params: object) -> tuple[int, dict[str, object]]:
    response = client.post(
        f"/api/projects/{ws.ids['px']}/files",
        params={"name": "x.txt", **params},
        content=b"hello",
        headers=bearer(ws, role),
    )
    return response.status_code, response.json()


def test_uploading_onto_an_internal_task_or_comment_answers_like_a_missing_one(
    client: TestClient, workspace: Workspace
) -> None:
    ws = workspace
    assert upload(client, ws, "customer", task_id=ws.ids["px_internal_task"]) == upload(
        client, ws, "customer", task_id=987654
    )
    assert upload(client, ws, "customer", task_id=ws.ids["px_internal_task"])[0] == 422
    assert upload(client, ws, "customer", comment_id=ws.ids["px_internal_comment"]) == upload(
        client, ws, "customer", comment_id=987654
    )
    # The customer's own shared comment on a task made internal since: gone too.
    make_internal(client, ws, ws.ids["px_shared_task"])
    assert upload(client, ws, "customer", comment_id=ws.ids["px_customer_comment"]) == upload(
        client, ws, "customer", comment_id=987654
    )
    assert upload(client, ws, "customer", comment_id=987654)[0] == 422


def test_a_shared_file_on_a_task_made_internal_is_gone_for_customers(client: TestClient, workspace: Workspace) -> None:
    ws = workspace
    task = new_shared_task(client, ws)
    status, file = upload(client, ws, "staff", task_id=task, visibility="shared")
    assert status == 201, file
    customer = bearer(ws, "customer")
    assert client.get(f"/api/files/{file['id']}", headers=customer).status_code == 200
    make_internal(client, ws, task)
    for path in (f"/api/files/{file['id']}", f"/api/files/{file['id']}/download"):
        assert client.get(path, headers=customer).status_code == 404
    listed = client.get(f"/api/projects/{ws.ids['px']}/files", headers=customer).json()["items"]
    assert file["id"] not in [f["id"] for f in listed]


def test_a_request_does_not_name_its_task_to_customers_once_the_task_is_internal(
    client: TestClient, workspace: Workspace
) -> None:
    ws = workspace
    request = ws.ids["px_request"]
    accepted = client.post(f"/api/requests/{request}/triage", json={"action": "accept"}, headers=bearer(ws, "staff"))
    assert accepted.status_code == 200, accepted.text
    task = accepted.json()["task_id"]
    customer = bearer(ws, "customer")
    assert client.get(f"/api/requests/{request}", headers=customer).json()["task_id"] == task
    make_internal(client, ws, task)
    seen = client.get(f"/api/requests/{request}", headers=customer).json()
    assert seen["task_id"] is None
    assert all(e["task_id"] is None for e in seen["history"])
    listed = client.get(f"/api/projects/{ws.ids['px']}/requests", headers=customer).json()["items"]
    assert {r["id"]: r["task_id"] for r in listed}[request] is None
    assert client.get(f"/api/requests/{request}", headers=bearer(ws, "staff")).json()["task_id"] == task


def test_the_tasks_csv_shows_customers_only_what_members_and_the_board_show_them(
    client: TestClient, workspace: Workspace
) -> None:
    ws = workspace
    staff_assigned = client.patch(
        f"/api/tasks/{ws.ids['px_shared_task']}", json={"assignee_id": ws.users["staff"]}, headers=bearer(ws, "staff")
    )
    assert staff_assigned.status_code == 200, staff_assigned.text
    csv = client.get(f"/api/projects/{ws.ids['px']}/tasks.csv", headers=bearer(ws, "customer"))
    assert csv.status_code == 200
    members = client.get(f"/api/projects/{ws.ids['px']}/members", headers=bearer(ws, "customer")).json()
    assert ws.emails["staff"] not in str(members)
    assert ws.emails["staff"] not in csv.text
    assert ws.emails["customer"] in csv.text  # their own, as /members shows it
    assert ws.emails["staff"] in client.get(f"/api/projects/{ws.ids['px']}/tasks.csv", headers=bearer(ws, "staff")).text


def test_sharing_a_note_does_not_expose_the_versions_saved_while_it_was_internal(
    client: TestClient, workspace: Workspace
) -> None:
    ws = workspace
    staff, customer = bearer(ws, "staff"), bearer(ws, "customer")
    created = client.post(
        f"/api/projects/{ws.ids['px']}/notes",
        json={"title": "Draft", "visibility": "internal", "content": "internal draft SECRET"},
        headers=staff,
    )
    note = created.json()["id"]
    draft = client.post(f"/api/notes/{note}/versions", json={"name": "draft"}, headers=staff).json()
    assert draft["visibility"] == "internal"
    shared = client.patch(f"/api/notes/{note}", json={"visibility": "shared"}, headers=staff)
    assert shared.status_code == 200, shared.text
    published = client.post(f"/api/notes/{note}/versions", json={"name": "published"}, headers=staff).json()
    assert published["visibility"] == "shared"
    listed = client.get(f"/api/notes/{note}/versions", headers=customer)
    assert [v["id"] for v in listed.json()["items"]] == [published["id"]]
    internal = client.get(f"/api/notes/{note}/versions/{draft['id']}", headers=customer)
    missing = client.get(f"/api/notes/{note}/versions/987654", headers=customer)
    assert internal.status_code == missing.status_code == 404
    assert internal.json() == missing.json()
    assert "SECRET" not in internal.text
    assert client.get(f"/api/notes/{note}/versions/{published['id']}", headers=customer).status_code == 200
    # Staff keep the whole history.
    staff_list = client.get(f"/api/notes/{note}/versions", headers=staff).json()["items"]
    assert [v["id"] for v in staff_list] == [published["id"], draft["id"]]
    assert "internal draft SECRET" in client.get(f"/api/notes/{note}/versions/{draft['id']}", headers=staff).text


def test_a_version_saved_while_the_notes_task_was_internal_stays_internal(
    client: TestClient, workspace: Workspace
) -> None:
    ws = workspace
    task = new_shared_task(client, ws)
    note = shared_note_on_task(client, ws, task)
    make_internal(client, ws, task)
    version = client.post(f"/api/notes/{note}/versions", json={"name": "v"}, headers=bearer(ws, "staff")).json()
    assert version["visibility"] == "internal"


def test_a_wip_limit_refuses_a_customer_only_by_the_tasks_they_can_see(
    client: TestClient, workspace: Workspace
) -> None:
    # "To do" holds a shared and an internal task; the customer sees one of them.
    ws, px, todo = workspace, workspace.ids["px"], workspace.ids["px_todo"]
    limited = client.patch(f"/api/projects/{px}/statuses/{todo}", json={"wip_limit": 2}, headers=bearer(ws, "owner"))
    assert limited.status_code == 200, limited.text
    staff_move = client.patch(
        f"/api/tasks/{ws.ids['px_shared_task']}", json={"status_id": ws.ids["px_active"]}, headers=bearer(ws, "staff")
    )
    assert staff_move.status_code == 200
    back = client.patch(f"/api/tasks/{ws.ids['px_shared_task']}", json={"status_id": todo}, headers=bearer(ws, "staff"))
    assert back.status_code == 200, back.text
    # Staff count every task: To do is full for them.
    full = client.patch(
        f"/api/tasks/{ws.ids['px_customer_task']}", json={"status_id": todo}, headers=bearer(ws, "staff")
    )
    assert full.status_code == 409 and full.json()["error"] == "wip_limit"
    # A refusal for the customer at 1 visible of 2 would reveal the internal task: their move counts what they see.
    moved = client.patch(
        f"/api/tasks/{ws.ids['px_customer_task']}", json={"status_id": todo}, headers=bearer(ws, "customer")
    )
    assert moved.status_code == 200, moved.text
    # At what they can see, the limit holds for them too.
    away = client.patch(
        f"/api/tasks/{ws.ids['px_customer_task']}",
        json={"status_id": ws.ids["px_blocked"]},
        headers=bearer(ws, "staff"),
    )
    assert away.status_code == 200
    client.patch(f"/api/projects/{px}/statuses/{todo}", json={"wip_limit": 1}, headers=bearer(ws, "owner"))
    refused = client.patch(
        f"/api/tasks/{ws.ids['px_customer_task']}", json={"status_id": todo}, headers=bearer(ws, "customer")
    )
    assert refused.status_code == 409 and refused.json()["error"] == "wip_limit"
