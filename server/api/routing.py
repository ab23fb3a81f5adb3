"""Declared JSON endpoints: one decorator gives a route its validation, auth, errors and OpenAPI entry.

A handler receives a :class:`Context` (the actor, a database session, the app's services) and the validated body,
and returns a pydantic model (or a list page). The decorator turns policy and validation failures into the JSON
error body every client can rely on: ``{"error": code, "message": text}``.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.datastructures import URLPath
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, NoMatchFound, Route
from starlette.types import Receive, Send
from starlette.types import Scope as AsgiScope

from server.audit import log as audit
from server.context import Context
from server.errors import Conflict, DomainError, Invalid, RateLimited, Refused, Unauthenticated
from server.policy import Actor, Forbidden, NotFound, NotVisible, Scope
from server.schemas import JSON_BODY, NULL_REFUSED

if TYPE_CHECKING:
    from server.services import Services

log = logging.getLogger(__name__)

MAX_JSON_BYTES = 1_000_000
MAX_JSON_DEPTH = 32


class ApiError(Exception):
    """An error a client should see: an HTTP status, a stable code and a human message.

    ``reason`` names one refusal among several that share a code (``invalid`` has many), and ``params`` hold the
    values its sentence needs: a client translates code, reason and params from its own catalogs; ``message`` is
    English for people reading the API directly.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
        *,
        reason: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers
        self.reason = reason
        self.params = params

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.reason is not None:
            body["reason"] = self.reason
        if self.params:
            body["params"] = self.params
        if self.details is not None:
            body["details"] = self.details
        return JSONResponse(body, status_code=self.status, headers=self.headers)


# The one mapping of domain errors to HTTP statuses (server/errors.py says what each kind means).
HTTP_STATUS: dict[type[DomainError], int] = {
    Invalid: 422,
    Conflict: 409,
    Unauthenticated: 401,
    Refused: 403,
    RateLimited: 429,
}


def http_error(exc: DomainError) -> ApiError:
    """The HTTP answer to a domain error: its kind's status, with its code, reason, params and details."""
    status = next((s for kind, s in HTTP_STATUS.items() if isinstance(exc, kind)), 422)
    headers = None
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        headers = {"retry-after": str(exc.retry_after)}
    return ApiError(status, exc.code, exc.message, exc.details, headers, reason=exc.reason, params=exc.params)


def not_found(what: str = "resource") -> ApiError:
    return ApiError(404, "not_found", f"No such {what}.")


M = TypeVar("M", bound=BaseModel)
Handler = Callable[..., Awaitable[Any]]


@dataclass
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    public: bool
    errors: tuple[int, ...]
    # What a personal API token needs to call this; None: tokens may not (signing in, my password, my tokens).
    scope: Scope | None
    # Answers besides the JSON ``response`` and the errors: {status: {media type: JSON schema or model}}, so the
    # OpenAPI document declares every status and content type the endpoint sends (CSV, files, note text).
    produces: dict[int, dict[str, dict[str, Any] | type[BaseModel]]] = field(default_factory=dict)


def _depth(value: Any, limit: int) -> int:
    stack = [(value, 1)]
    deepest = 0
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def _validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


async def read_json(request: Request, model: type[M]) -> M:
    """Parse and validate the request body as ``model``.

    Raises:
        ApiError: 413 for a body over the limit, 400 for malformed JSON, 422 for invalid fields.
    """
    # Requiring JSON also stops cross-site form posts: a browser must preflight this content type.
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "Send the body as application/json.")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_JSON_BYTES:
        raise ApiError(413, "too_large", f"The request body exceeds {MAX_JSON_BYTES} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_JSON_BYTES:
            raise ApiError(413, "too_large", f"The request body exceeds {MAX_JSON_BYTES} bytes.")
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        data = json.loads(raw) if raw else {}
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "malformed_json", "The request body is not valid JSON.") from None
    if _depth(data, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise ApiError(400, "malformed_json", "The request body nests too deeply.")
    if not isinstance(data, dict):
        raise ApiError(422, "invalid", "The request body must be a JSON object.", reason="not_an_object")
    try:
        return model.model_validate(data, context=JSON_BODY)
    except ValidationError as exc:
        details = _validation_details(exc)
        if all(d["type"] == NULL_REFUSED for d in details):
            # Only nulls sent to fields that may be left out but not cleared: the reason names the first.
            field = details[0]["field"]
            raise ApiError(
                422, "invalid", f"{field} cannot be null.", details, reason="required", params={"field": field}
            ) from None
        raise ApiError(422, "invalid", "Some fields are invalid.", details, reason="fields") from None


def read_query(request: Request, model: type[M]) -> M:
    data: dict[str, Any] = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        data[key] = values if len(values) > 1 else values[0]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(
            422, "invalid", "Some query parameters are invalid.", _validation_details(exc), reason="fields"
        ) from None


_PATH_PARAM = re.compile(r"{(\w+)(?::\w+)?}")


class Api:
    """A registry of endpoints, turned into Starlette routes and an OpenAPI document."""

    def __init__(self) -> None:
        self.endpoints: list[Endpoint] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        tag: str,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        public: bool = False,
        errors: tuple[int, ...] = (),
        scope: Scope | None = None,
        session_only: bool = False,
        produces: dict[int, dict[str, dict[str, Any] | type[BaseModel]]] | None = None,
    ) -> Callable[[Handler], Handler]:
        """Declare an endpoint.

        Args:
            scope: the API token scope it needs; by default ``read`` for GET and ``write`` for the rest.
            session_only: personal API tokens may not call it at all (account security: password, tokens).
        """
        needed = None if session_only else (scope or (Scope.READ if method == "GET" else Scope.WRITE))

        def register(handler: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    method,
                    path,
                    handler,
                    summary,
                    tag,
                    body,
                    query,
                    response,
                    status,
                    public,
                    errors,
                    needed,
                    produces or {},
                )
            )
            return handler

        return register

    def starlette_routes(self) -> list[BaseRoute]:
        """One Starlette route per path, grouped by the path's first two segments (`RouteGroup`)."""
        by_path: dict[str, dict[str, Endpoint]] = {}
        for endpoint in self.endpoints:
            by_path.setdefault(endpoint.path, {})[endpoint.method] = endpoint
        groups: dict[str, list[Route]] = {}
        for path, methods in by_path.items():
            prefix = "/".join(path.split("/")[:3])  # "/api/tasks" of "/api/tasks/{task_id:int}/comments"
            # A parameter there would let a path match routes of two groups, which grouping could reorder.
            assert "{" not in prefix, f"{path}: no parameter in the first two segments of an API path"
            groups.setdefault(prefix, []).append(Route(path, _dispatcher(methods), methods=list(methods)))
        return [RouteGroup(prefix, routes) for prefix, routes in groups.items()]


_MATCHED = "tandem.route"  # the scope key a group's match hands its route over by, to its own `handle`


class RouteGroup(BaseRoute):
    """The routes whose paths start with ``prefix`` (``/api/tasks``), asked only when the request's path does.

    Starlette's router tries its routes in turn, a regular expression each: a request for ``/api/tasks/5`` used to
    try 54 before its own. A group answers as its first matching route would, in the router's terms (a full match,
    or a partial one: the path's route exists, not for this method), and hands the request to that route, which
    becomes the scope's ``route`` (metrics label requests by its path template).
    """

    def __init__(self, prefix: str, routes: list[Route]) -> None:
        self.prefix = prefix
        self.routes = routes
        self._below = prefix + "/"

    def matches(self, scope: AsgiScope) -> tuple[Match, AsgiScope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root):  # Starlette matches the path below the root path (a proxy's prefix)
            path = path[len(root) :]
        if path != self.prefix and not path.startswith(self._below):
            return Match.NONE, {}
        partial: AsgiScope | None = None
        for route in self.routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                return match, {**child, _MATCHED: route}
            if match is Match.PARTIAL and partial is None:
                partial = {**child, _MATCHED: route}
        return (Match.PARTIAL, partial) if partial is not None else (Match.NONE, {})

    async def handle(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        route = scope.pop(_MATCHED)
        scope["route"] = route
        await route.handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        for route in self.routes:
            try:
                return route.url_path_for(name, **path_params)
            except NoMatchFound:
                pass
        raise NoMatchFound(name, path_params)


def check_scope(endpoint: Endpoint, actor: Actor) -> None:
    """Refuse an API token outside its scopes (the policy then decides as for its owner).

    Raises:
        ApiError: 403 ``insufficient_scope``.
    """
    if endpoint.scope is None:
        raise ApiError(403, "insufficient_scope", "API tokens may not call this; sign in instead.")
    if not actor.has_scope(endpoint.scope):
        raise ApiError(403, "insufficient_scope", f"This API token lacks the {endpoint.scope} scope.")


def _dispatcher(methods: dict[str, Endpoint]) -> Callable[[Request], Awaitable[Response]]:
    async def dispatch(request: Request) -> Response:
        endpoint = methods[request.method if request.method != "HEAD" else "GET"]
        return await _run(endpoint, request)

    return dispatch


async def _limit(services: Services, key: str, per_minute: int) -> None:
    if per_minute <= 0:
        return
    wait = await services.limiter.wait(key, per_minute, 60)
    if wait > 0:
        raise ApiError(
            429,
            "rate_limited",
            "Too many requests. Wait a moment and try again.",
            headers={"retry-after": str(max(1, math.ceil(wait)))},
        )


async def check_ip_rate(services: Services, request: Request) -> None:
    """Count the request against its IP address's limit, before any database work.

    Behind a proxy this is the proxy's address unless uvicorn trusts its ``X-Forwarded-For`` (``--proxy-headers``
    with ``--forwarded-allow-ips``).

    Raises:
        ApiError: 429 ``rate_limited`` with ``Retry-After``.
    """
    host = request.client.host if request.client is not None else "unknown"
    await _limit(services, f"api:ip:{host}", services.settings.api_requests_per_minute_per_ip)


async def check_user_rate(services: Services, request: Request, actor: Actor) -> None:
    """Count the request against its user's limits: every request, and writes apart.

    Raises:
        ApiError: 429 ``rate_limited`` with ``Retry-After``.
    """
    await _limit(services, f"api:user:{actor.user_id}", services.settings.api_requests_per_minute_per_user)
    if request.method not in ("GET", "HEAD"):
        await _limit(services, f"api:write:{actor.user_id}", services.settings.api_writes_per_minute_per_user)


async def _audit_refused(services: Services, request: Request, actor: Actor, refused: NotVisible) -> None:
    # The answer stays a 404 whatever happens here: a failure to record is logged, never shown to the caller.
    try:
        await audit.access_refused(
            services.db, services.limiter, request, actor, refused.target_type, refused.target_id
        )
    except Exception:
        log.warning("refused access not recorded in the audit log", exc_info=True)


async def _run(endpoint: Endpoint, request: Request) -> Response:
    services: Services = request.app.state.services
    actor: Actor | None = None
    try:
        await check_ip_rate(services, request)
        async with services.db.session() as session:
            actor = await services.auth.authenticate(
                request, services.db, session, check_csrf=endpoint.method != "GET" and not endpoint.public
            )
            if actor is None and not endpoint.public:
                raise ApiError(401, "unauthorized", "Sign in first.")
            if actor is not None:
                if actor.scopes is not None:
                    check_scope(endpoint, actor)
                await check_user_rate(services, request, actor)
            ctx = Context(request, services, session, actor)
            args: list[Any] = [ctx]
            if endpoint.query is not None:
                args.append(read_query(request, endpoint.query))
            if endpoint.body is not None:
                args.append(await read_json(request, endpoint.body))
            try:
                result = await endpoint.handler(*args)
                await session.commit()
            except BaseException:
                for undo in ctx.after_rollback:
                    await undo()
                raise
        for hook in ctx.after_commit:
            await hook()
    except ApiError as exc:
        return exc.response()
    except DomainError as exc:
        return http_error(exc).response()
    except NotFound as exc:
        if isinstance(exc, NotVisible) and actor is not None:
            await _audit_refused(services, request, actor, exc)
        return not_found().response()
    except Forbidden:
        return ApiError(403, "forbidden", "You may not do this.").response()
    except (OperationalError, InterfaceError, DisconnectionError, PoolTimeoutError) as exc:
        # The database is unreachable or busy: the transaction rolled back whole, so retrying is safe.
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__)
        busy = ApiError(503, "unavailable", "The service is briefly unavailable. Retry in a moment.").response()
        busy.headers["retry-after"] = "2"
        return busy
    response: Response
    if result is None:
        response = Response(status_code=204 if endpoint.status == 200 else endpoint.status)
    elif isinstance(result, Response):
        response = result
    else:
        assert isinstance(result, BaseModel)
        response = Response(result.model_dump_json(), status_code=endpoint.status, media_type="application/json")
    for name, value in ctx.response_headers.items():
        response.headers[name] = value
    for cookie in ctx.set_cookies:
        response.set_cookie(**cookie)
    return response
