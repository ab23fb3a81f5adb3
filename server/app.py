"""The Starlette application: wiring of settings, database, services and routes; start and stop via lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, compile_path
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import server.api.endpoints  # noqa: F401  (registers every endpoint on `api`)
from server import migrate
from server.api import api
from server.api.openapi import openapi_document
from server.i18n import pick_locale
from server.observability import RequestMetrics, metrics_endpoint, request_id
from server.services import Services, build_services
from server.settings import Settings

log = logging.getLogger(__name__)

WEB_DIST = Path(__file__).resolve().parent.parent / "web" / "dist"

# No inline script anywhere. Inline style *attributes* are allowed (the editor positions remote cursors with them;
# they cannot run code); inline style *elements* need the page's nonce.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self' ws: wss:; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)


class TandemApp(Starlette):
    """Starlette, with the WebSocket endpoints of ``ws_routes`` (Starlette path templates) served ahead of its
    middleware and router.

    The hub's and the notes' sockets carry the hottest paths in the process (a message per subscriber per event)
    and live as long as the tab: skipping the error, metrics, router and exception-handler layers saves a coroutine
    per message and about a dozen coroutine frames, and 1.5-2 KB, held per connection. No HTTP concern applies to
    them (each endpoint does its own authentication and Origin check; errors close the socket with a code); their
    log lines carry a ``ws-...`` request id.
    """

    def __init__(self, *, ws_routes: Sequence[tuple[str, ASGIApp]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ws_routes = [(*compile_path(path)[::2], endpoint) for path, endpoint in ws_routes]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            for pattern, convertors, endpoint in self.ws_routes:
                match = pattern.fullmatch(scope["path"])
                if match is not None:
                    scope["app"] = self
                    scope["path_params"] = {name: convertors[name].convert(v) for name, v in match.groupdict().items()}
                    request_id.set("ws-" + secrets.token_hex(4))
                    await endpoint(scope, receive, send)
                    return
        await super().__call__(scope, receive, send)


class SecurityHeaders:
    """Headers every response carries (CSP without inline script, nosniff, no framing, HSTS behind TLS), and
    ``Cache-Control: no-store`` on every ``/api/`` answer: they all carry someone's data, and neither a shared
    proxy nor the browser's disk cache on a shared computer may keep it."""

    def __init__(self, app: ASGIApp, hsts: bool) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        if hsts:
            self.headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
        self.api_headers = [*self.headers, (b"cache-control", b"no-store")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = self.api_headers if scope["path"].startswith("/api/") else self.headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                existing = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [h for h in headers if h[0] not in existing]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    path = request.url.path
    if exc.status_code == 404 and request.method in ("GET", "HEAD") and not path.startswith(("/api/", "/assets/")):
        # An unknown page address gets the shell, which shows "not found" inside the header and navigation (raw
        # JSON is for API clients); the status stays 404.
        page = await _shell(request)
        if page.status_code == 200:
            page.status_code = 404
        return page
    codes = {404: "not_found", 405: "method_not_allowed"}
    return JSONResponse(
        {"error": codes.get(exc.status_code, "http_error"), "message": exc.detail},
        status_code=exc.status_code,
        headers=exc.headers,  # e.g. Allow on 405
    )


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"error": "internal", "message": "Something went wrong on our side."}, status_code=500)


async def _shell(request: Request) -> Response:
    """The web client's page: every client-side route, and every unknown page address (the client says "not found")."""
    page = WEB_DIST / "index.html"
    if not page.exists():
        return JSONResponse(
            {"error": "web_not_built", "message": "The web client is not built: run `make web`."},
            status_code=503,
        )
    # A fresh nonce per page: the editor's stylesheet (CodeMirror inserts a <style>) carries it, so the
    # policy still refuses every other inline style element and all inline script.
    nonce = secrets.token_urlsafe(16)
    html = page.read_text().replace("__CSP_NONCE__", nonce)
    # The page's language before the client knows who is signed in (it then follows the person's choice).
    html = html.replace('<html lang="en">', f'<html lang="{pick_locale(request.headers.get("accept-language", ""))}">')
    policy = CONTENT_SECURITY_POLICY.replace("style-src 'self';", f"style-src 'self' 'nonce-{nonce}';")
    return HTMLResponse(html, headers={"cache-control": "no-cache", "content-security-policy": policy})


def _web_routes() -> list[BaseRoute]:
    index = _shell

    # Client-side routes: the page itself decides what to show.
    routes: list[BaseRoute] = [
        Route("/", index),
        Route("/invite", index),
        Route("/reset-password", index),
        Route("/sign-in-link", index),
        Route("/projects/{project_id:int}", index),
        Route("/projects/{project_id:int}/tasks/{task_id:int}", index),
        Route("/projects/{project_id:int}/notes", index),
        Route("/projects/{project_id:int}/notes/{note_id:int}", index),
        Route("/projects/{project_id:int}/requests", index),
        Route("/projects/{project_id:int}/requests/{request_id:int}", index),
        Route("/projects/{project_id:int}/files", index),
        Route("/projects/{project_id:int}/reports", index),
        Route("/projects/{project_id:int}/people", index),
        Route("/projects/{project_id:int}/settings", index),
        Route("/projects/{project_id:int}/milestones", index),
        Route("/projects/{project_id:int}/integrations", index),
        Route("/projects/{project_id:int}/activity", index),
        Route("/organization", index),
        Route("/reports", index),
        Route("/requests", index),
        Route("/settings/tokens", index),
        Route("/audit", index),
    ]
    if (WEB_DIST / "assets").is_dir():
        routes.append(Mount("/assets", StaticFiles(directory=WEB_DIST / "assets"), name="assets"))
    for name in ("manifest.webmanifest", "favicon.svg", "sw.js"):
        if (WEB_DIST / name).exists():
            routes.append(Route(f"/{name}", _static_file(WEB_DIST / name)))
    return routes


def _static_file(path: Path) -> Any:
    async def serve(request: Request) -> Response:
        return FileResponse(path)

    return serve


@functools.cache
def served_openapi_document() -> dict[str, Any]:
    """What ``/api/openapi.json`` serves: built at its first request, not at start-up (it is most of a node's
    start-up CPU), and kept, since the routes cannot change while the process runs."""
    return openapi_document(api)


def create_app(settings: Settings, services: Services | None = None) -> TandemApp:
    """The Tandem ASGI application.

    Args:
        settings: the process's configuration.
        services: injected services (tests); built from ``settings`` when omitted.
    """
    services = services or build_services(settings)

    async def openapi(request: Request) -> Response:
        return JSONResponse(served_openapi_document())

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.auto_migrate:
            await asyncio.to_thread(migrate.upgrade, settings.database_url)
        await services.realtime.start()
        await services.notes.start()
        await services.live_sockets.start()
        services.digests.start()
        if settings.webhooks.worker:
            services.webhook_worker.start()
        try:
            yield
        finally:
            await services.webhook_worker.stop()
            await services.digests.stop()
            await services.live_sockets.stop()
            await services.notes.stop()
            if services.live.reports is not None:
                await services.live.reports.stop()
            await services.realtime.stop()
            await services.limiter.close()
            await services.db.close()

    routes: list[BaseRoute] = [
        Route("/api/openapi.json", openapi),
        Route("/healthz", healthz),
        Route("/readyz", services.readiness.endpoint),
        Route("/metrics", metrics_endpoint(settings)),
        *api.starlette_routes(),
        *_web_routes(),
    ]
    app = TandemApp(
        ws_routes=[
            ("/ws", services.sockets.guard(services.realtime.endpoint)),
            ("/yjs/{note_id:int}", services.sockets.guard(services.notes.endpoint)),
        ],
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(RequestMetrics),
            Middleware(SecurityHeaders, hsts=settings.base_url.startswith("https://")),
        ],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    app.state.services = services
    app.state.settings = settings
    return app
