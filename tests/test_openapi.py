"""The OpenAPI document is served, covers every API route, and real answers match its schemas."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import jsonschema
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from starlette.routing import Route
from starlette.testclient import TestClient

from server.api import api
from server.api.routing import MAX_JSON_BYTES
from server.notes.routes import MAX_INITIAL_CONTENT
from server.schemas import JSON_BODY, NULL_REFUSED, not_blank
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
    routes = [r for group in client.app.routes for r in getattr(group, "routes", [group])]  # type: ignore[attr-defined]
    for route in routes:
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


# -- the contract breaks schemathesis found (tests/test_api_fuzz.py runs it whole) ----------------------------------


def test_rules_the_server_checks_are_in_the_schema(client: TestClient) -> None:
    doc = client.get("/api/openapi.json").json()
    schemas = doc["components"]["schemas"]
    assert schemas["StatusIn"]["properties"]["colour"]["pattern"] == "^#[0-9a-fA-F]{6}$"
    assert schemas["NoteIn"]["properties"]["content"]["maxLength"] == MAX_INITIAL_CONTENT
    # The longest text the schema refuses still fits in the body limit, however it is escaped: 422, never 413.
    assert 12 * (MAX_INITIAL_CONTENT + 1) + 1_000 < MAX_JSON_BYTES


def test_every_status_and_content_type_answered_is_declared(client: TestClient) -> None:
    paths = client.get("/api/openapi.json").json()["paths"]

    def content(path: str, status: int, method: str = "get") -> set[str]:
        responses = paths[path][method]["responses"]
        assert "204" not in responses or status == 204, f"{path} declares an empty answer it never sends"
        return set(responses[str(status)]["content"])

    assert content("/api/projects/{project_id}/tasks.csv", 200) == {"text/csv"}
    assert content("/api/projects/{project_id}/reports/kpis", 200) == {"application/json", "text/csv"}
    assert content("/api/notes/{note_id}/export", 200) == {"text/plain", "text/markdown"}
    assert content("/api/files/{file_id}/download", 200) == {"*/*"}
    assert content("/api/projects/{project_id}/tasks/import", 200, "post") == {"application/json"}


def test_bodies_the_schema_refuses_are_refused(client: TestClient, workspace: Workspace) -> None:
    owner = bearer(workspace, "owner")
    for wrong in (0, 1, "true", "yes"):  # JSON booleans only, as the schema says
        answer = client.post("/api/notifications/read", headers=owner, json={"all": wrong})
        assert answer.status_code == 422, (wrong, answer.text)
    assert client.post("/api/notifications/read", headers=owner, json={"all": True}).status_code == 204
    notes = f"/api/projects/{workspace.ids['px']}/notes"
    for char in ("a", "\U0001f600"):  # the longest escape: a surrogate pair, 12 bytes as \\u escapes
        too_long = client.post(
            notes, headers=owner, json={"title": "Long", "content": char * (MAX_INITIAL_CONTENT + 1)}
        )
        assert too_long.status_code == 422, too_long.text[:200]
    statuses = f"/api/projects/{workspace.ids['px']}/statuses"
    refused = client.post(statuses, headers=owner, json={"name": "Odd", "category": "todo", "colour": "red"})
    assert refused.status_code == 422
    made = client.post(statuses, headers=owner, json={"name": "Odd", "category": "todo", "colour": "#ABCDEF"})
    assert made.status_code == 201, made.text
    assert made.json()["colour"] == "#abcdef"


# -- links: how one answer's ids feed the next call (schemathesis' stateful phase follows them) -----------------------


def test_links_lead_from_a_resource_to_the_operations_on_it(client: TestClient) -> None:
    paths = client.get("/api/openapi.json").json()["paths"]

    def links(path: str, method: str, status: int) -> dict[str, Any]:
        found: dict[str, Any] = paths[path][method]["responses"][str(status)]["links"]
        return found

    created_task = links("/api/projects/{project_id}/tasks", "post", 201)
    assert created_task["get_task"]["parameters"] == {"task_id": "$response.body#/id"}
    assert {"update_task", "delete_task", "create_comment", "list_comments"} <= set(created_task)
    listed_tasks = links("/api/projects/{project_id}/tasks", "get", 200)
    assert listed_tasks["get_task"]["parameters"] == {"task_id": "$response.body#/items/0/id"}
    # Nested members carry their parent's id; a field named like the parameter wins over "id".
    assert links("/api/projects/{project_id}/statuses", "post", 201)["update_status"]["parameters"] == {
        "status_id": "$response.body#/id",
        "project_id": "$response.body#/project_id",
    }
    assert links("/api/projects/{project_id}/members", "post", 201)["remove_member"]["parameters"] == {
        "user_id": "$response.body#/user_id",
        "project_id": "$request.path.project_id",
    }
    assert links("/api/invites", "post", 201)["revoke_invite"]["parameters"] == {
        "invite_id": "$response.body#/invite/id"
    }
    # A shallow member with operations only under it: a feedback request's answers.
    assert "answer" in links("/api/projects/{project_id}/feedback/requests", "post", 201)
    # Not a member: the answer to a reaction is the comment, not something the reaction path names.
    assert "links" not in paths["/api/comments/{comment_id}/reactions"]["post"]["responses"]["200"]


def test_every_link_names_an_operation_and_its_parameters(client: TestClient) -> None:
    doc = client.get("/api/openapi.json").json()
    operations = {op["operationId"]: op for ops in doc["paths"].values() for op in ops.values()}
    count = 0
    for ops in doc["paths"].values():
        for op in ops.values():
            for answer in op["responses"].values():
                for name, link in answer.get("links", {}).items():
                    count += 1
                    target = operations[link["operationId"]]
                    path_params = {p["name"] for p in target["parameters"] if p["in"] == "path"}
                    assert set(link["parameters"]) <= path_params, (name, link)
    assert count > 100


def _unbounded_integers(schema: Any, where: str) -> Iterator[str]:
    if isinstance(schema, dict):
        if schema.get("type") == "integer" and "maximum" not in schema:
            yield where
        for key, value in schema.items():
            yield from _unbounded_integers(value, f"{where}/{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            yield from _unbounded_integers(value, f"{where}/{index}")


def test_every_id_a_request_carries_is_one_the_database_can_hold(client: TestClient) -> None:
    """An id past the database's integers raised OverflowError (a 500) where it reached a query: the stateful run
    found it in a note list's task filter, which only a real project's id gets to."""
    doc = client.get("/api/openapi.json").json()
    schemas = doc["components"]["schemas"]
    unbounded = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for param in op["parameters"]:
                if param["in"] != "path" and (param["name"].endswith("_id") or param["name"].endswith("ids")):
                    unbounded += _unbounded_integers(param["schema"], f"{method} {path} ?{param['name']}")
            if "requestBody" in op:
                name = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
                for field, prop in schemas[name].get("properties", {}).items():
                    if field.endswith("_id") or field.endswith("ids"):
                        unbounded += _unbounded_integers(prop, f"{method} {path} {name}.{field}")
    assert unbounded == []


def test_an_id_past_the_databases_integers_is_refused(client: TestClient, workspace: Workspace) -> None:
    owner = bearer(workspace, "owner")
    px, huge = workspace.ids["px"], 2**70
    assert client.get(f"/api/projects/{px}/notes?task_id={huge}", headers=owner).status_code == 422
    assert (
        client.post(f"/api/projects/{px}/notes", headers=owner, json={"title": "N", "task_id": huge}).status_code == 422
    )
    note = f"/api/notes/{workspace.ids['px_shared_note']}"
    assert client.patch(note, headers=owner, json={"task_id": huge}).status_code == 422
    assert client.post("/api/notifications/read", headers=owner, json={"ids": [huge]}).status_code == 422


def test_every_operation_offering_csv_declares_it(client: TestClient) -> None:
    """The project pivot answered ``?format=csv`` with text/csv the document did not declare (the stateful run, which
    reaches a real project's reports, found it); the portfolio and its pivot did the same."""
    paths = client.get("/api/openapi.json").json()["paths"]
    offering = {
        path
        for path, ops in paths.items()
        for param in ops.get("get", {}).get("parameters", [])
        if param["name"] == "format" and "csv" in param["schema"].get("enum", [])
    }
    assert "/api/projects/{project_id}/reports/pivot" in offering
    for path in offering:
        assert "text/csv" in paths[path]["get"]["responses"]["200"]["content"], path


def test_attaching_a_note_to_a_task_that_is_not_there_is_refused(client: TestClient, workspace: Workspace) -> None:
    """The note changed first and the task look-up then flushed it: a foreign-key failure, a 500 (the stateful run
    found it, patching a note it had just listed)."""
    owner = bearer(workspace, "owner")
    note = f"/api/notes/{workspace.ids['px_shared_note']}"
    before = client.get(note, headers=owner).json()
    refused = client.patch(note, headers=owner, json={"title": "Renamed", "task_id": 999_999})
    assert refused.status_code == 422, refused.text
    assert refused.json()["reason"] == "unknown_task"
    assert client.get(note, headers=owner).json() == before
    other = workspace.ids["py_shared_task"]  # a task of another project
    assert client.patch(note, headers=owner, json={"task_id": other}).status_code == 422
    attached = client.patch(note, headers=owner, json={"task_id": workspace.ids["px_shared_task"]})
    assert attached.status_code == 200, attached.text


@given(st.text(alphabet=st.sampled_from(" a\u00a0\u0085\t\nb\u2003\x1c"), max_size=14), st.integers(1, 10))
def test_the_not_blank_pattern_holds_exactly_when_the_stripped_text_is_long_enough(text: str, length: int) -> None:
    """Bodies are stripped before their lengths are checked; the pattern the document states for such a field must
    accept exactly what that validation accepts, or a generated client is told a refused value is valid."""
    assert (re.search(not_blank(length), text) is not None) == (len(text.strip()) >= length)


def test_fields_that_refuse_null_do_not_offer_it(client: TestClient, workspace: Workspace) -> None:
    document = client.get("/api/openapi.json").json()
    title = document["components"]["schemas"]["TaskPatch"]["properties"]["title"]
    assert "anyOf" not in title and "default" not in title
    task = f"/api/tasks/{workspace.ids['px_shared_task']}"
    staff = bearer(workspace, "staff")
    before = client.get(task, headers=staff).json()
    refused = client.patch(task, json={"priority": None, "title": None}, headers=staff)
    assert refused.status_code == 422
    assert refused.json()["reason"] == "required" and refused.json()["params"] == {"field": "title"}
    # A null beside another invalid field is one of the fields' errors.
    mixed = client.patch(task, json={"title": None, "priority": "someday"}, headers=staff)
    assert mixed.json()["reason"] == "fields"
    assert {d["field"] for d in mixed.json()["details"]} == {"title", "priority"}
    assert client.get(task, headers=staff).json() == before


def _offers_null(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "null" or any(_offers_null(branch) for branch in schema.get("anyOf", []))


def test_a_body_refuses_null_exactly_where_its_schema_does_not_offer_it() -> None:
    """Every request body of every endpoint: a field that may be left out takes null exactly when its schema offers
    it (``due_date``, ``wip_limit``: null clears), and one left out by default refuses it with the one error a
    client translates (reason ``required``)."""
    checked = 0
    for model in sorted({e.body for e in api.endpoints if e.body is not None}, key=lambda m: m.__name__):
        schema = model.model_json_schema(mode="validation")
        for name, field in schema["properties"].items():
            if name in schema.get("required", []):
                continue
            try:
                model.model_validate({name: None}, context=JSON_BODY)
                errors = []
            except ValidationError as exc:
                errors = [e["type"] for e in exc.errors() if e["loc"][:1] == (name,)]
            assert (errors == []) == _offers_null(field), (model.__name__, name, errors)
            if errors and model.model_fields[name].default is None:
                assert errors == [NULL_REFUSED], (model.__name__, name, errors)
            checked += 1
    assert checked > 100
