"""OpenAPI links, generated from the routes: the id a created or listed resource answers with feeds the calls on it.

The routes follow one convention (shallow nesting). A resource created or listed at a collection path lives either at
that path plus its id (``/api/projects/{project_id}/statuses/{status_id}``) or, when its id alone names it, at
``/api`` plus the collection's segments after its parent's id (what ``POST /api/projects/{project_id}/tasks``
creates, ``/api/tasks/{task_id}`` answers). Every operation on that member path, or under it, is linked:

- from the POST that creates the resource (201): the member's id is ``$response.body#/id``;
- from the GET that lists the collection: the first item's id, ``$response.body#/items/0/id``.

The member's id is the answer's field named like the path parameter (``user_id`` of a member), else its ``id``,
else the ``id`` of the object named after it (``invite.id`` for ``invite_id``). A parent parameter of the member
path (``project_id``) is the answer's field of that name, else the source request's own path parameter. A generated
client follows these links; schemathesis' stateful phase chains calls along them (tests/test_api_stateful.py).
"""

from __future__ import annotations

import re
import types
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

from server.api.routing import Endpoint

_PARAM = re.compile(r"{(\w+)(?::\w+)?}")


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if get_origin(annotation) in (list, Union, types.UnionType):
        return [model for arg in get_args(annotation) for model in _models_in(arg)]
    return []


def _listed(model: type[BaseModel]) -> type[BaseModel] | None:
    """The model of a list answer's items (``{"items": [...]}``), or None for an answer that is not a list."""
    items = model.model_fields.get("items")
    if items is None or get_origin(items.annotation) is not list:
        return None
    found = _models_in(items.annotation)
    return found[0] if len(found) == 1 else None


def _id_pointer(model: type[BaseModel], param: str) -> str | None:
    fields = model.model_fields
    if param in fields:
        return f"/{param}"
    if "id" in fields:
        return "/id"
    stem = param.removesuffix("_id")
    nested = _models_in(fields[stem].annotation) if stem in fields else []
    if len(nested) == 1 and "id" in nested[0].model_fields:
        return f"/{stem}/id"
    return None


def member_paths(collection: str, paths: set[str]) -> list[str]:
    """The paths of one member of ``collection``, nested (``collection/{id}``) or shallow, that some declared path
    is or starts with (``/api/feedback/requests/{request_id}`` has operations only under it)."""
    tail = _PARAM.split(collection)[-1] if _PARAM.search(collection) else collection.removeprefix("/api")
    candidates = "|".join(re.escape(path) for path in {collection, "/api" + tail})
    pattern = re.compile(rf"^(?:{candidates})/{{\w+:int}}(?=/|$)")
    return sorted({found.group(0) for path in paths if (found := pattern.match(path))})


def _link(
    source: Endpoint, target: Endpoint, member: str, model: type[BaseModel], prefix: str
) -> dict[str, Any] | None:
    *parents, own = _PARAM.findall(member)
    pointer = _id_pointer(model, own)
    if pointer is None:
        return None
    parameters = {own: f"$response.body#{prefix}{pointer}"}
    source_params = set(_PARAM.findall(source.path))
    for name in parents:
        if name in model.model_fields:
            parameters[name] = f"$response.body#{prefix}/{name}"
        elif name in source_params:
            parameters[name] = f"$request.path.{name}"
        else:
            return None
    what = "the resource just created" if prefix == "" else "the first resource listed"
    return {
        "operationId": target.handler.__name__,
        "parameters": parameters,
        "description": f"{target.summary}: {what}.",
    }


def operation_links(endpoints: list[Endpoint]) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    """The links of every operation that creates or lists a resource, keyed by (method, declared path).

    Returns:
        For each source operation, its links by name (the target's operationId), to be set on its success answer.
    """
    paths = {endpoint.path for endpoint in endpoints}
    links: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for source in endpoints:
        if source.response is None:
            continue
        if source.method == "POST" and source.status == 201:
            model: type[BaseModel] | None = source.response
            prefix = ""
        elif source.method == "GET":
            model = _listed(source.response)
            prefix = "/items/0"
        else:
            continue
        if model is None:
            continue
        for member in member_paths(source.path, paths):
            for target in endpoints:
                if target is source or not (target.path == member or target.path.startswith(member + "/")):
                    continue
                link = _link(source, target, member, model, prefix)
                if link is not None:
                    links.setdefault((source.method, source.path), {})[link["operationId"]] = link
    return links
