"""The OpenAPI 3.1 document, generated from the declared endpoints and their pydantic models."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from server.api.links import operation_links
from server.api.routing import Api, Endpoint
from server.schemas import ErrorOut

_PARAM = re.compile(r"{(\w+)(?::\w+)?}")
_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    204: "No content",
    400: "Malformed request",
    401: "Not signed in",
    403: "Not allowed (or, for an API token, outside its scopes: insufficient_scope)",
    404: "Not found (or not visible to you)",
    409: "Conflict",
    413: "Too large",
    415: "Not JSON",
    422: "Invalid fields",
    429: "Too many requests",
}


def _query_parameters(model: type[BaseModel], schemas: dict[str, Any]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema.get("properties", {}).items()
    ]


def _operation(endpoint: Endpoint, refs: dict[type[BaseModel], str], schemas: dict[str, Any]) -> dict[str, Any]:
    path_params = _PARAM.findall(endpoint.path)
    op: dict[str, Any] = {
        "summary": endpoint.summary,
        "operationId": endpoint.handler.__name__,
        "tags": [endpoint.tag],
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}} for name in path_params
        ],
        "responses": {},
    }
    if endpoint.query is not None:
        op["parameters"] += _query_parameters(endpoint.query, schemas)
    if endpoint.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": refs[endpoint.body]}}},
        }
    if endpoint.response is not None:
        op["responses"][str(endpoint.status)] = {
            "description": _STATUS_TEXT.get(endpoint.status, "OK"),
            "content": {"application/json": {"schema": {"$ref": refs[endpoint.response]}}},
        }
    elif endpoint.status not in endpoint.produces:  # no JSON and nothing else: an empty answer
        op["responses"]["204" if endpoint.status == 200 else str(endpoint.status)] = {"description": "No content"}
    # Every operation counts against the per-IP and per-user request limits (server/api/routing.py).
    errors = set(endpoint.errors) | {429}
    if endpoint.body is not None:
        errors |= {400, 413, 415, 422}
    if endpoint.query is not None:
        errors.add(422)
    for status in sorted(errors):
        op["responses"][str(status)] = {
            "description": _STATUS_TEXT.get(status, "Error"),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
        }
    for status, media in sorted(endpoint.produces.items()):
        answer = op["responses"].setdefault(str(status), {"description": _STATUS_TEXT.get(status, "OK")})
        content = answer.setdefault("content", {})
        for media_type, shape in media.items():
            schema = {"$ref": refs[shape]} if isinstance(shape, type) else shape
            if media_type in content:  # e.g. a 422 that is an ErrorOut or the import's row report
                schema = {"anyOf": [content[media_type]["schema"], schema]}
            content[media_type] = {"schema": schema}
    op["responses"]["429"]["headers"] = {
        "Retry-After": {"description": "Seconds until the limit has room again", "schema": {"type": "integer"}}
    }
    if not endpoint.public:
        op["security"] = [{"bearer": []}, {"cookie": []}]
        if endpoint.scope is not None:
            op["security"].append({"apiToken": [endpoint.scope.value]})
        # Which personal API token scope the operation needs; null: tokens may not call it.
        op["x-token-scope"] = endpoint.scope.value if endpoint.scope is not None else None
    return op


def openapi_document(api: Api, *, title: str = "Tandem", version: str = "0.1.0") -> dict[str, Any]:
    models: set[type[BaseModel]] = {ErrorOut}
    for endpoint in api.endpoints:
        models.update(m for m in (endpoint.body, endpoint.response) if m is not None)
        models.update(s for media in endpoint.produces.values() for s in media.values() if isinstance(s, type))
    ordered = sorted(models, key=lambda m: m.__name__)
    key_map, definitions = models_json_schema(
        [(m, "validation" if m in {e.body for e in api.endpoints} else "serialization") for m in ordered],
        ref_template="#/components/schemas/{model}",
    )
    refs: dict[type[BaseModel], str] = {model: schema["$ref"] for (model, _), schema in key_map.items()}  # type: ignore[misc]
    schemas: dict[str, Any] = definitions.get("$defs", {})
    links = operation_links(api.endpoints)
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in api.endpoints:
        path = _PARAM.sub(r"{\1}", endpoint.path)
        op = _operation(endpoint, refs, schemas)
        if (endpoint.method, endpoint.path) in links:
            op["responses"][str(endpoint.status)]["links"] = links[endpoint.method, endpoint.path]
        paths.setdefault(path, {})[endpoint.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": 'Tandem\'s REST API. Errors are JSON: {"error": code, "message": text}.',
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "The token from /api/auth/login."},
                "apiToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "tnd_...",
                    "description": (
                        "A personal API token from POST /api/me/tokens, sent as Authorization: Bearer tnd_... "
                        "Each operation lists the scope it needs (read, write or admin); outside it the answer is "
                        "403 insufficient_scope. No CSRF header is needed."
                    ),
                },
                "cookie": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "__Host-tandem_session",
                    "description": (
                        "Browser session: __Host-tandem_session behind https, tandem_session on a plain-http "
                        "development server; writes also need the X-CSRF-Token header (the __Host-tandem_csrf or "
                        "tandem_csrf cookie's value)."
                    ),
                },
            },
        },
    }
