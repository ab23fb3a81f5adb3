"""Tasks in and out as CSV: dry run, all-or-nothing import, round trip, audience, formula injection."""

from __future__ import annotations

import csv
import io

from starlette.testclient import TestClient

from tests.conftest import bearer
from tests.workspace import Workspace

FIELDS = ("title", "description", "status_id", "due_date", "priority", "visibility", "milestone_id")


def post_csv(client: TestClient, ws: Workspace, role: str, project: int, text: str, dry_run: bool = False):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/projects/{project}/tasks/import" + ("?dry_run=true" if dry_run else ""),
        content=text.encode(),
        headers={**bearer(ws, role), "content-type": "text/csv"},
    )


def tasks(client: TestClient, ws: Workspace, role: str = "owner") -> list[dict[str, object]]:
    return client.get(f"/api/projects/{ws.ids['px']}/tasks?limit=200", headers=bearer(ws, role)).json()["items"]


SHEET = (
    "Task,Details,Status,Owner,Due date,Priority,Visibility\n"
    "Write the brief,Two pages,In progress,staff@example.test,2031-02-03,high,shared\n"
    "Approve the brief,,Waiting on customer,customer@example.test,2031-02-10,normal,shared\n"
)


def test_dry_run_stores_nothing_and_reports_every_row(client: TestClient, workspace: Workspace) -> None:
    before = len(tasks(client, workspace))
    answer = post_csv(client, workspace, "owner", workspace.ids["px"], SHEET, dry_run=True)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["dry_run"] is True and body["created"] == 0
    assert [(r["row"], r["title"], r["errors"]) for r in body["rows"]] == [
        (2, "Write the brief", []),
        (3, "Approve the brief", []),
    ]
    assert len(tasks(client, workspace)) == before


def test_import_is_all_or_nothing(client: TestClient, workspace: Workspace) -> None:
    before = len(tasks(client, workspace))
    broken = SHEET + "Third,,No such status,nobody@example.test,tomorrow,whenever,public\n"
    answer = post_csv(client, workspace, "owner", workspace.ids["px"], broken)
    assert answer.status_code == 422
    errors = answer.json()["rows"][2]["errors"]
    assert any("status" in e for e in errors) and any("assignee" in e for e in errors)
    assert len(tasks(client, workspace)) == before
    # A customer assigned an internal task is refused by the same rule as the API.
    internal = "title,assignee,visibility\nSecret work,customer@example.test,internal\n"
    refused = post_csv(client, workspace, "owner", workspace.ids["px"], internal)
    assert refused.status_code == 422 and "internal" in refused.json()["rows"][0]["errors"][0]
    created = post_csv(client, workspace, "owner", workspace.ids["px"], SHEET)
    assert created.status_code == 201 and created.json()["created"] == 2
    after = {t["title"]: t for t in tasks(client, workspace)}
    assert after["Approve the brief"]["waiting_on_customer"] is True
    assert after["Write the brief"]["priority"] == "high" and after["Write the brief"]["due_date"] == "2031-02-03"


def test_export_then_import_round_trips(client: TestClient, workspace: Workspace) -> None:
    owner = bearer(workspace, "owner")
    px = workspace.ids["px"]
    client.post(
        f"/api/projects/{px}/tasks",
        headers=owner,
        json={
            "title": '=HYPERLINK("http://evil.example")',
            "description": "line one\nline, two",
            "visibility": "shared",
            "due_date": "2030-01-01",
            "priority": "urgent",
            "milestone_id": workspace.ids["px_shared_milestone"],
        },
    )
    exported = client.get(f"/api/projects/{px}/tasks.csv", headers=owner)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert any(row[0].startswith("'=HYPERLINK") for row in rows), "formulas are neutralised in the file"
    original = [t for t in tasks(client, workspace)]
    imported = post_csv(client, workspace, "owner", px, exported.text)
    assert imported.status_code == 201, imported.text
    new_ids = set(imported.json()["task_ids"])
    copies = [t for t in tasks(client, workspace) if t["id"] in new_ids]

    def key(t: dict[str, object]) -> tuple[object, ...]:
        return (*(t[f] for f in FIELDS), (t["assignee"] or {}).get("id"))  # type: ignore[union-attr]

    assert sorted(map(key, copies), key=str) == sorted(map(key, original), key=str)


def test_customers_export_only_shared_tasks_and_cannot_import(client: TestClient, workspace: Workspace) -> None:
    exported = client.get(f"/api/projects/{workspace.ids['px']}/tasks.csv", headers=bearer(workspace, "customer"))
    assert exported.status_code == 200 and "SECRET" not in exported.text
    assert "internal" not in [row[-1] for row in csv.reader(io.StringIO(exported.text))][1:]
    assert post_csv(client, workspace, "customer", workspace.ids["px"], SHEET).status_code == 403
    assert post_csv(client, workspace, "other_customer", workspace.ids["px"], SHEET).status_code == 404
    wrong_type = client.post(
        f"/api/projects/{workspace.ids['px']}/tasks/import",
        content=SHEET.encode(),
        headers={**bearer(workspace, "owner"), "content-type": "application/json"},
    )
    assert wrong_type.status_code == 415
    bad_header = post_csv(client, workspace, "owner", workspace.ids["px"], "colour,size\nred,big\n")
    assert bad_header.status_code == 422 and bad_header.json()["error"] == "invalid_columns"
