"""Tandem's configuration: read from the environment once, at start-up, into one frozen object.

Everything that varies between a laptop and production lives here and is passed in explicitly;
no other module reads ``os.environ``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar


class ConfigurationError(RuntimeError):
    """The environment describes a configuration Tandem refuses to run with."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 587
    username: str | None = None
    password: str | None = None
    starttls: bool = True
    sender: str = "Tandem <tandem@localhost>"


@dataclass(frozen=True)
class S3Settings:
    endpoint_url: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    region: str = "us-east-1"


@dataclass(frozen=True)
class WebhookSettings:
    """Outgoing webhooks (``server/webhooks/``): delivery, retries and the worker."""

    # Run the delivery worker inside the web process; off when a separate ``tandem worker`` runs it.
    worker: bool = True
    timeout_seconds: float = 10.0
    # Attempts per delivery before it counts as failed; retries wait base * 2**(n-1) (capped), with jitter.
    max_attempts: int = 10
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 6 * 3600.0
    # A webhook is disabled after this many deliveries in a row failed every attempt.
    disable_after: int = 5
    # In production, targets resolving to loopback, private, link-local or reserved addresses are refused.
    allow_private_targets: bool = False
    # How often the worker looks for due deliveries it was not told about (other nodes', retries).
    poll_seconds: float = 2.0


@dataclass(frozen=True)
class MailInSettings:
    """Replies by email (``server/mail/``): the reply addresses' domain and the inbound SMTP server."""

    # Reply addresses are reply+<token>@domain; empty: mail carries no reply address and nothing is accepted.
    domain: str = ""
    host: str = "127.0.0.1"
    port: int = 2525
    # Larger mail is refused (and bounced); each attachment must also fit upload_max_bytes.
    max_bytes: int = 25 * 1024 * 1024
    # Mails one sender address may send per hour before they are deferred (451).
    per_sender_per_hour: int = 60
    # STARTTLS: a PEM certificate chain and its key (both, or neither); with require_tls, nothing but EHLO, STARTTLS
    # and QUIT is accepted before TLS.
    tls_cert: str = ""
    tls_key: str = ""
    require_tls: bool = False


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    database_url: str = "sqlite:///var/tandem.db"
    redis_url: str | None = None
    secret_key: str = field(default="", repr=False)
    host: str = "127.0.0.1"
    port: int = 8000
    base_url: str = "http://127.0.0.1:8000"
    smtp: SmtpSettings | None = None
    data_dir: Path = Path("var")
    # Prefix of every Redis key and pub/sub channel, so several deployments (or test runs) share one Redis.
    redis_prefix: str = "tandem:"
    session_days: int = 14
    # A session unused for this long ends (OWASP ASVS V3.3); session_days bounds it absolutely.
    session_idle_minutes: int = 720
    session_sweep_seconds: int = 60
    # How often ended sessions and used or expired invite and reset tokens are deleted.
    session_purge_seconds: int = 3600
    # Audit rows older than this are purged with ended sessions (0: kept forever); the chain stays verifiable.
    audit_retention_days: int = 365
    invite_hours: int = 72
    password_reset_minutes: int = 30
    signin_link_minutes: int = 15
    due_soon_days: int = 3
    login_attempts_per_minute: int = 10
    # REST requests per minute (sliding window, server/api/routing.py); 0 turns a limit off.
    api_requests_per_minute_per_ip: int = 3000
    api_requests_per_minute_per_user: int = 1200
    api_writes_per_minute_per_user: int = 600
    history_size: int = 1000
    history_ttl_seconds: int = 3600
    presence_ttl_seconds: int = 30
    ws_max_queue_messages: int = 4096
    ws_max_subscriptions: int = 512
    # Sockets (/ws and /yjs) authenticating at once, waiting for a turn, and how long one waits
    # (server/live/admission.py).
    ws_admit_concurrency: int = 8
    ws_admit_queue: int = 256
    ws_admit_wait_seconds: float = 5.0
    # Open sockets (/ws and /yjs together) one user, and one IP address, may hold on a node (0: no cap); over: 4430.
    ws_max_sockets_per_user: int = 64
    ws_max_sockets_per_ip: int = 256
    # How long a WebSocket ticket (POST /api/ws-ticket) may wait to be redeemed, once.
    ws_ticket_seconds: int = 30
    # Accept ``?token=`` on WebSocket URLs (benchmarks' load generators only; refused in production: proxies log URLs).
    ws_url_tokens: bool = False
    # Behind https, still accept the unprefixed session cookie of sessions started before ``__Host-``
    # (server/accounts/auth.py).
    accept_legacy_cookie: bool = True
    # Failed sign-ins (server/accounts/signin_throttle.py): free failures per account and per IP, then a lockout of
    # base * 2**(n-1) seconds after the n-th failure over them, at most max; failures are forgotten after forget.
    signin_free_failures_per_account: int = 5
    signin_free_failures_per_ip: int = 20
    signin_lockout_base_seconds: float = 2.0
    signin_lockout_max_seconds: float = 900.0
    signin_forget_seconds: int = 3600
    # Messages one note socket may send: sustained per second, and in a burst (over it: close 4429).
    notes_messages_per_second: float = 100.0
    notes_message_burst: int = 300
    digest_interval_seconds: int = 300
    log_format: str = "text"
    metrics_token: str = field(default="", repr=False)
    digest_delay_seconds: int = 60
    # Feedback metric weights "actions,negative_trend,score" (server/feedback/rules.py, docs/REPORTS.md).
    feedback_weights: str = "0.5,0.3,0.2"
    # Origins allowed to open a WebSocket besides base_url (comma separated in the environment).
    allowed_origins: tuple[str, ...] = ()
    auto_migrate: bool = True
    # Uploads larger than this are refused (413) while they stream in.
    upload_max_bytes: int = 100 * 1024 * 1024
    # Where file contents live: file:///path (default: DATA_DIR/files) or s3://bucket/prefix.
    storage_url: str = ""
    s3: S3Settings = field(default_factory=S3Settings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    mail_in: MailInSettings = field(default_factory=MailInSettings)

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def secure_cookies(self) -> bool:
        return self.production or self.base_url.startswith("https://")


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


_N = TypeVar("_N", int, float)


def _number(env: Mapping[str, str], name: str, default: _N, parse: Callable[[str], _N], what: str) -> _N:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return parse(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be {what}, got {raw!r}") from exc


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    return _number(env, name, default, int, "an integer")


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    return _number(env, name, default, float, "a number")


def _webhooks(env: Mapping[str, str]) -> WebhookSettings:
    return WebhookSettings(
        worker=_bool(env.get("TANDEM_WEBHOOK_WORKER"), True),
        timeout_seconds=_float(env, "TANDEM_WEBHOOK_TIMEOUT_SECONDS", 10.0),
        max_attempts=max(1, _int(env, "TANDEM_WEBHOOK_MAX_ATTEMPTS", 10)),
        retry_base_seconds=_float(env, "TANDEM_WEBHOOK_RETRY_BASE_SECONDS", 30.0),
        retry_max_seconds=_float(env, "TANDEM_WEBHOOK_RETRY_MAX_SECONDS", 6 * 3600.0),
        disable_after=max(1, _int(env, "TANDEM_WEBHOOK_DISABLE_AFTER", 5)),
        allow_private_targets=_bool(env.get("TANDEM_WEBHOOK_ALLOW_PRIVATE_TARGETS"), False),
        poll_seconds=_float(env, "TANDEM_WEBHOOK_POLL_SECONDS", 2.0),
    )


def _secret_key(env: Mapping[str, str], production: bool, data_dir: Path) -> str:
    key = env.get("TANDEM_SECRET_KEY", "")
    if key:
        if len(key) < 32:
            raise ConfigurationError("TANDEM_SECRET_KEY must be at least 32 characters")
        return key
    if production:
        raise ConfigurationError("TANDEM_SECRET_KEY is required when TANDEM_ENV=production")
    # Development: generate once and keep it, so sessions survive restarts.
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


def _url_tokens(env: Mapping[str, str], production: bool) -> bool:
    allowed = _bool(env.get("TANDEM_WS_URL_TOKENS"), False)
    if allowed and production:
        raise ConfigurationError("TANDEM_WS_URL_TOKENS is for benchmarks: tokens in URLs end up in proxies' logs")
    return allowed


def _served_url(host: str, port: int) -> str:
    """The base URL of a node listening on ``host:port``; a wildcard address is reached on this machine's loopback."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the environment into a ``Settings``.

    Args:
        env: the mapping to read; ``os.environ`` when omitted.

    Returns:
        The frozen settings.

    Raises:
        ConfigurationError: a value is malformed, or production lacks a secret key.
    """
    env = os.environ if env is None else env
    tandem_env = env.get("TANDEM_ENV", "development")
    data_dir = Path(env.get("TANDEM_DATA_DIR", "var"))
    host = env.get("TANDEM_HOST", "127.0.0.1")
    port = _int(env, "PORT", _int(env, "TANDEM_PORT", 8000))
    smtp_host = env.get("TANDEM_SMTP_HOST")
    smtp = None
    if smtp_host:
        smtp = SmtpSettings(
            host=smtp_host,
            port=_int(env, "TANDEM_SMTP_PORT", 587),
            username=env.get("TANDEM_SMTP_USERNAME") or None,
            password=env.get("TANDEM_SMTP_PASSWORD") or None,
            starttls=_bool(env.get("TANDEM_SMTP_STARTTLS"), True),
            sender=env.get("TANDEM_SMTP_SENDER", "Tandem <tandem@localhost>"),
        )
    origins = tuple(o.strip().rstrip("/") for o in env.get("TANDEM_ALLOWED_ORIGINS", "").split(",") if o.strip())
    production = tandem_env == "production"
    return Settings(
        env=tandem_env,
        database_url=env.get("TANDEM_DATABASE_URL") or f"sqlite:///{data_dir / 'tandem.db'}",
        redis_url=env.get("TANDEM_REDIS_URL") or None,
        secret_key=_secret_key(env, production, data_dir),
        host=host,
        port=port,
        base_url=(env.get("TANDEM_BASE_URL") or _served_url(host, port)).rstrip("/"),
        smtp=smtp,
        data_dir=data_dir,
        redis_prefix=env.get("TANDEM_REDIS_PREFIX", "tandem:"),
        session_days=_int(env, "TANDEM_SESSION_DAYS", 14),
        session_idle_minutes=_int(env, "TANDEM_SESSION_IDLE_MINUTES", 720),
        session_sweep_seconds=_int(env, "TANDEM_SESSION_SWEEP_SECONDS", 60),
        session_purge_seconds=_int(env, "TANDEM_SESSION_PURGE_SECONDS", 3600),
        audit_retention_days=_int(env, "TANDEM_AUDIT_RETENTION_DAYS", 365),
        invite_hours=_int(env, "TANDEM_INVITE_HOURS", 72),
        password_reset_minutes=_int(env, "TANDEM_PASSWORD_RESET_MINUTES", 30),
        signin_link_minutes=_int(env, "TANDEM_SIGNIN_LINK_MINUTES", 15),
        due_soon_days=_int(env, "TANDEM_DUE_SOON_DAYS", 3),
        login_attempts_per_minute=_int(env, "TANDEM_LOGIN_ATTEMPTS_PER_MINUTE", 10),
        api_requests_per_minute_per_ip=_int(env, "TANDEM_API_REQUESTS_PER_MINUTE_PER_IP", 3000),
        api_requests_per_minute_per_user=_int(env, "TANDEM_API_REQUESTS_PER_MINUTE_PER_USER", 1200),
        api_writes_per_minute_per_user=_int(env, "TANDEM_API_WRITES_PER_MINUTE_PER_USER", 600),
        history_size=_int(env, "TANDEM_HISTORY_SIZE", 1000),
        history_ttl_seconds=_int(env, "TANDEM_HISTORY_TTL_SECONDS", 3600),
        presence_ttl_seconds=_int(env, "TANDEM_PRESENCE_TTL_SECONDS", 30),
        ws_max_queue_messages=_int(env, "TANDEM_WS_MAX_QUEUE_MESSAGES", 4096),
        ws_max_subscriptions=_int(env, "TANDEM_WS_MAX_SUBSCRIPTIONS", 512),
        ws_admit_concurrency=_int(env, "TANDEM_WS_ADMIT_CONCURRENCY", 8),
        ws_admit_queue=_int(env, "TANDEM_WS_ADMIT_QUEUE", 256),
        ws_admit_wait_seconds=float(_int(env, "TANDEM_WS_ADMIT_WAIT_SECONDS", 5)),
        ws_max_sockets_per_user=_int(env, "TANDEM_WS_MAX_SOCKETS_PER_USER", 64),
        ws_max_sockets_per_ip=_int(env, "TANDEM_WS_MAX_SOCKETS_PER_IP", 256),
        ws_ticket_seconds=_int(env, "TANDEM_WS_TICKET_SECONDS", 30),
        accept_legacy_cookie=_bool(env.get("TANDEM_ACCEPT_LEGACY_COOKIE"), True),
        ws_url_tokens=_url_tokens(env, production),
        signin_free_failures_per_account=_int(env, "TANDEM_SIGNIN_FREE_FAILURES_PER_ACCOUNT", 5),
        signin_free_failures_per_ip=_int(env, "TANDEM_SIGNIN_FREE_FAILURES_PER_IP", 20),
        signin_lockout_base_seconds=_float(env, "TANDEM_SIGNIN_LOCKOUT_BASE_SECONDS", 2.0),
        signin_lockout_max_seconds=_float(env, "TANDEM_SIGNIN_LOCKOUT_MAX_SECONDS", 900.0),
        signin_forget_seconds=_int(env, "TANDEM_SIGNIN_FORGET_SECONDS", 3600),
        notes_messages_per_second=_float(env, "TANDEM_NOTES_MESSAGES_PER_SECOND", 100.0),
        notes_message_burst=_int(env, "TANDEM_NOTES_MESSAGE_BURST", 300),
        digest_interval_seconds=_int(env, "TANDEM_DIGEST_INTERVAL_SECONDS", 300),
        log_format=env.get("TANDEM_LOG_FORMAT") or ("json" if production else "text"),
        metrics_token=env.get("TANDEM_METRICS_TOKEN", ""),
        digest_delay_seconds=_int(env, "TANDEM_DIGEST_DELAY_SECONDS", 60),
        feedback_weights=env.get("TANDEM_FEEDBACK_WEIGHTS", "0.5,0.3,0.2"),
        allowed_origins=origins,
        auto_migrate=_bool(env.get("TANDEM_AUTO_MIGRATE"), not production),
        upload_max_bytes=_int(env, "TANDEM_UPLOAD_MAX_BYTES", 100 * 1024 * 1024),
        storage_url=env.get("TANDEM_STORAGE_URL", ""),
        s3=S3Settings(
            endpoint_url=env.get("TANDEM_S3_ENDPOINT_URL") or None,
            access_key_id=env.get("TANDEM_S3_ACCESS_KEY_ID") or None,
            secret_access_key=env.get("TANDEM_S3_SECRET_ACCESS_KEY") or None,
            region=env.get("TANDEM_S3_REGION", "us-east-1"),
        ),
        webhooks=_webhooks(env),
        mail_in=MailInSettings(
            domain=env.get("TANDEM_MAIL_DOMAIN", "").strip().lower(),
            host=env.get("TANDEM_MAIL_IN_HOST", "127.0.0.1"),
            port=_int(env, "TANDEM_MAIL_IN_PORT", 2525),
            max_bytes=_int(env, "TANDEM_MAIL_IN_MAX_BYTES", 25 * 1024 * 1024),
            per_sender_per_hour=_int(env, "TANDEM_MAIL_IN_PER_SENDER_PER_HOUR", 60),
            tls_cert=env.get("TANDEM_MAIL_IN_TLS_CERT", ""),
            tls_key=env.get("TANDEM_MAIL_IN_TLS_KEY", ""),
            require_tls=_bool(env.get("TANDEM_MAIL_IN_REQUIRE_TLS"), False),
        ),
    )
