"""The OpenAPI document is served, covers every API route, and real answers match its schemas."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
from starlette.routing import Route
from starlette.testclient import TestClient

from tests.conftest import bearer
from tests.workspace import Workspace


def _schema_for(doc: dict[str, Any], path: str, method: str, status: int) -> dict[str, Any]:
    response = doc["paths"][path][method]["responses"][str(status)]
    schema = response["content"]["application/json"]["schema"]
    return {**schema, "components": doc["components"]}


def _validate(doc: dict[str, Any], path: str, method: str, status: int, body: Any) -> None:
    jsonschema.validate(body, _schema_for(doc, path, method, status))


def test_document_covers_every_api_route(client: TestClient) -> None:
    doc = client.get("/api/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    served: set[tuple[str, str]] = set()
    for route in client.app.routes:  # type: ignore[attr-defined]
        if isinstance(route, Route) and route.path.startswith("/api/") and route.path != "/api/openapi.json":
            path = re.sub(r"{(\w+):\w+}", r"{\1}", route.path)
            for method in route.methods or ():
                if method != "HEAD":
                    served.add((path, method.lower()))
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert served == documented


def test_answers_match_the_schemas(client: TestClient, workspace: Workspace) -> None:
    doc = client.get("/api/openapi.json").json()
    px = workspace.ids["px"]
    for role in ("owner", "customer"):
        headers = bearer(workspace, role)
        calls = [
            ("/api/me", "/api/me"),
            ("/api/projects", "/api/projects"),
            (f"/api/projects/{px}", "/api/projects/{project_id}"),
            (f"/api/projects/{px}/tasks", "/api/projects/{project_id}/tasks"),
            (f"/api/projects/{px}/statuses", "/api/projects/{project_id}/statuses"),
            (f"/api/projects/{px}/milestones", "/api/projects/{project_id}/milestones"),
            (f"/api/projects/{px}/members", "/api/projects/{project_id}/members"),
            (f"/api/tasks/{workspace.ids['px_shared_task']}", "/api/tasks/{task_id}"),
        ]
        for url, path in calls:
            response = client.get(url, headers=headers)
            assert response.status_code == 200, (url, response.text)
            _validate(doc, path, "get", 200, response.json())
        missing = client.get("/api/tasks/999999", headers=headers)
        _validate(doc, "/api/tasks/{task_id}", "get", 404, missing.json())
    created = client.post(
        f"/api/projects/{px}/tasks",
        headers=bearer(workspace, "owner"),
        json={"title": "Schema check", "due_date": "2031-01-02", "visibility": "shared"},
    )
    _validate(doc, "/api/projects/{project_id}/tasks", "post", 201, created.json())
    invalid = client.post(f"/api/projects/{px}/tasks", headers=bearer(workspace, "owner"), json={"title": ""})
    assert invalid.status_code == 422
    _validate(doc, "/api/projects/{project_id}/tasks", "post", 422, invalid.json())
