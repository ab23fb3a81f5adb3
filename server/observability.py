"""Seeing a node: Prometheus metrics, readiness, and structured logs that never carry secrets.

- ``/metrics``: prometheus-client's text format (HTTP latency by route template, database query time, the hub's
  metrics from ``channels.metrics``, the outbox). Optionally guarded by ``TANDEM_METRICS_TOKEN``.
- ``/healthz``: the process answers. ``/readyz``: the database and Redis answer and migrations are at head.
- Logs: one JSON object per line in production (``TANDEM_LOG_FORMAT=json``), each with the request or connection
  id of the work it belongs to; session tokens, bearer headers and passwords are redacted from every record,
  including uvicorn's access log (which would otherwise print ``?token=`` of WebSocket URLs).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import re
import secrets
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server import db, migrate
from server.settings import Settings

HTTP_SECONDS = Histogram(
    "tandem_http_request_seconds",
    "HTTP request latency by route template.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
DB_SECONDS = Histogram(
    "tandem_db_query_seconds",
    "Database statement time.",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
)
OUTBOX_PUBLISHED = Counter("tandem_outbox_published_total", "Events published from the outbox.")
OUTBOX_FAILURES = Counter("tandem_outbox_failures_total", "Outbox flushes that failed (broker or database).")
WEBHOOK_ATTEMPTS = Counter(
    "tandem_webhook_attempts_total", "Webhook delivery attempts, by outcome (ok: a 2xx answer).", ["outcome"]
)
WEBHOOK_DISABLED = Counter("tandem_webhook_disabled_total", "Webhooks disabled after failing deliveries in a row.")
WS_FAST_PATH = Gauge(
    "tandem_ws_fast_path",
    "1 when this process writes prebuilt fan-out frames straight to uvicorn's sockets, 0 when every frame goes "
    "through ASGI (server/live/uvicorn_socket.py): set at startup, then by each socket accepted.",
)
OUTBOX_LAG = Gauge("tandem_outbox_lag_seconds", "Age of the oldest event the last outbox flush published.")

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

_SECRETS = [
    (re.compile(r"((?:token|ticket)=)[^&\s\"']+", re.IGNORECASE), r"\1[redacted]"),
    # Tokens are URL-safe base64, so "_" is part of them (a personal API token starts with "tnd_").
    (re.compile(r"(bearer\s+)[A-Za-z0-9._~+/=_-]+", re.IGNORECASE), r"\1[redacted]"),
    (re.compile(r"\btnd_[A-Za-z0-9_-]+"), "tnd_[redacted]"),
    (re.compile(r"(\"?password\"?\s*[:=]\s*\"?)[^\"&\s]+", re.IGNORECASE), r"\1[redacted]"),
    (re.compile(r"(tandem_session=)[^;\s]+", re.IGNORECASE), r"\1[redacted]"),
]


def redact(message: str) -> str:
    for pattern, replacement in _SECRETS:
        message = pattern.sub(replacement, message)
    return message


class RedactingFilter(logging.Filter):
    """Rewrites every record so no token, bearer header, session cookie or password reaches a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if getattr(record, "request_id", ""):
            entry["request_id"] = record.request_id  # type: ignore[attr-defined]
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(settings: Settings) -> None:
    """Route every logger (Tandem's and uvicorn's) through the redacting handler, as JSON in production."""
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True


class RequestMetrics:
    """Times every HTTP request by its route template (``/api/tasks/{task_id:int}``, not the raw path) and gives
    it a request id (echoed in ``X-Request-Id``) that its log lines carry."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                request_id.set("ws-" + secrets.token_hex(4))
            await self.app(scope, receive, send)
            return
        rid = secrets.token_hex(8)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            HTTP_SECONDS.labels(scope["method"], template, str(status)).observe(time.perf_counter() - started)
            request_id.reset(token)


def instrument_engine(engine: AsyncEngine) -> None:
    """Time every statement the engine runs."""

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _start(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        conn.info.setdefault("tandem_query_started", []).append(time.perf_counter())

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def _end(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        DB_SECONDS.observe(time.perf_counter() - conn.info["tandem_query_started"].pop())

    if DB_SECONDS.observe not in db.statement_timers:  # the rows SQLite inserts in a commit's own hop
        db.statement_timers.append(DB_SECONDS.observe)


def metrics_endpoint(settings: Settings) -> Any:
    async def metrics(request: Request) -> Response:
        if settings.metrics_token:
            sent = request.headers.get("authorization", "")
            if not secrets.compare_digest(sent.encode(), f"Bearer {settings.metrics_token}".encode()):
                return JSONResponse({"error": "unauthorized", "message": "Metrics need the metrics token."}, 401)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return metrics


class Readiness:
    """``/readyz``: 200 when this node can serve (database, Redis, schema at head), 503 with the reasons if not."""

    def __init__(self, settings: Settings, engine: AsyncEngine, redis_ping: Any) -> None:
        self.settings = settings
        self.engine = engine
        self.redis_ping = redis_ping
        self._schema_ok_until = 0.0

    async def check(self) -> dict[str, str]:
        problems: dict[str, str] = {}
        try:
            async with asyncio.timeout(2):
                async with self.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        except Exception as exc:  # any failure means "not ready"; the reason is reported
            problems["database"] = type(exc).__name__
        if self.redis_ping is not None:
            try:
                async with asyncio.timeout(2):
                    await self.redis_ping()
            except Exception as exc:
                problems["redis"] = type(exc).__name__
        if "database" not in problems and time.monotonic() > self._schema_ok_until:
            try:
                at_head = await asyncio.to_thread(migrate.is_at_head, self.settings.database_url)
            except Exception as exc:
                problems["migrations"] = type(exc).__name__
            else:
                if at_head:
                    self._schema_ok_until = time.monotonic() + 30
                else:
                    problems["migrations"] = "not at head: run `tandem migrate`"
        return problems

    async def endpoint(self, request: Request) -> Response:
        problems = await self.check()
        if problems:
            return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready"})
