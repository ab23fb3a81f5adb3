"""The services of a process, made once: settings, database, sign-in, mail, live sockets, limits, storage, webhooks.

The web app (``server/app.py``) and the mail-in server (``server/mail/server.py``) both build them here, so a
worker never imports the HTTP layer to get them.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.accounts.auth import AuthService
from server.accounts.signin_throttle import make_throttle
from server.db import Database
from server.files.storage import Storage, storage_from_url
from server.inbox.digest import DigestWorker
from server.live.admission import SocketAdmission, Tickets, make_ticket_store
from server.live.notes_ws import NoteRooms
from server.live.realtime import Realtime
from server.live.report_live import KpiPublisher
from server.live.sockets import LiveSockets
from server.live.updates import LiveUpdates
from server.mail.outgoing import Mailer
from server.observability import Readiness, instrument_engine
from server.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from server.settings import Settings
from server.webhooks import WebhookEvents, WebhookWorker


@dataclass
class Services:
    """Everything a request handler may use, made once per process."""

    settings: Settings
    db: Database
    auth: AuthService
    sockets: SocketAdmission
    mailer: Mailer
    live: LiveUpdates
    limiter: RateLimiter
    realtime: Realtime
    readiness: Readiness
    notes: NoteRooms
    live_sockets: LiveSockets
    digests: DigestWorker
    storage: Storage
    webhooks: WebhookEvents
    webhook_worker: WebhookWorker


def build_services(settings: Settings) -> Services:
    limiter: RateLimiter
    redis_ping = None
    redis = None
    if settings.redis_url:
        from channels.backends.redis_cluster import redis_client

        # Bounded waits: every API request asks the limiter, so a Redis that hangs must not hang the API.
        redis = redis_client(settings.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
        limiter = RedisRateLimiter(redis, settings.redis_prefix)
        redis_ping = redis.ping
    else:
        limiter = MemoryRateLimiter()
    db = Database(settings.database_url)
    instrument_engine(db.engine)
    auth = AuthService(settings, limiter, make_throttle(settings, redis))
    # One admission for /ws and /yjs: origin, credentials and tickets, the caps on open sockets, the gate.
    tickets = Tickets(make_ticket_store(redis, settings.redis_prefix), settings.ws_ticket_seconds)
    sockets = SocketAdmission(settings, db, auth, tickets)
    realtime = Realtime(settings, db, auth, sockets)
    notes = NoteRooms(settings, db, auth, sockets)
    # Every kind of socket this node serves: the session sweep and every control message reach each of them.
    live_sockets = LiveSockets(settings, db, auth.idle, (realtime, notes), sockets.epoch)
    mailer = Mailer(settings.smtp)
    webhook_worker = WebhookWorker(settings, db)
    return Services(
        settings=settings,
        db=db,
        auth=auth,
        sockets=sockets,
        mailer=mailer,
        live=LiveUpdates(
            realtime.relay,
            live_sockets.control,
            KpiPublisher(db, realtime.relay.publish, settings.feedback_weights, listening=realtime.hub.has_subscribers),
        ),
        limiter=limiter,
        realtime=realtime,
        readiness=Readiness(settings, db.engine, redis_ping),
        notes=notes,
        live_sockets=live_sockets,
        digests=DigestWorker(settings, db, mailer),
        storage=storage_from_url(settings),
        # Without a worker in this process, a separate ``tandem worker`` finds new deliveries at its next poll.
        webhooks=WebhookEvents(webhook_worker.kick),
        webhook_worker=webhook_worker,
    )
