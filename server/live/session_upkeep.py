"""Keeping sessions honest over time: closing live sockets whose session ended, and deleting what has ended.

One `session_sweeper` (run by ``server/live/sockets.py`` over the ``/ws`` and the ``/yjs`` sockets alike) makes sure
a socket never outlives its session by more than ``session_sweep_seconds``, whether the session was signed out
elsewhere, reached its absolute expiry or went idle. `purge_ended` deletes ended sessions and spent invite and reset
tokens, so the tables hold only what can still be used (and what admins still see of invitations).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import astuple, dataclass

from sqlalchemy import delete, not_, or_
from sqlmodel import col

from channels.loops import Clock, Loop
from server.accounts.auth import live_session_hashes, session_alive
from server.audit.chain import purge_older_than
from server.db import Database, utcnow
from server.models import AuthSession, Invite, PasswordReset, SignInLink
from server.settings import Settings

log = logging.getLogger(__name__)

# Accepted or expired invitations stay listed for admins this long (GET /api/invites), then go.
INVITE_KEEP = dt.timedelta(days=30)


def session_sweeper(
    db: Database,
    interval: float,
    idle: dt.timedelta,
    live: Callable[[], set[str]],
    close: Callable[[set[str]], None],
    *,
    name: str = "session-sweeper",
    clock: Clock | None = None,
) -> Loop:
    """A loop that closes, every ``interval`` seconds, the sockets whose sessions are no longer valid (start it).

    Args:
        db: where sessions live.
        interval: seconds between sweeps.
        idle: the idle timeout (see `server.accounts.auth.session_alive`).
        live: the token hashes of this node's open sockets, asked at each sweep.
        close: closes the sockets of the given ended token hashes (4401).
    """

    async def sweep() -> None:
        hashes = live()
        if not hashes:
            return
        async with db.session() as session:
            alive = await live_session_hashes(session, hashes, idle)
        ended = hashes - alive
        if ended:
            close(ended)

    # A failed sweep is retried at the next interval, not sooner: the database it needs is what failed.
    return Loop(name, sweep, interval=interval, clock=clock)


@dataclass(frozen=True)
class Purged:
    sessions: int
    invites: int
    password_resets: int
    sign_in_links: int = 0
    audit_events: int = 0


async def purge_ended(db: Database, settings: Settings) -> Purged:
    """Delete sessions past their expiry or idle timeout, password-reset tokens and sign-in links past theirs
    (used reset tokens are deleted when used), invitations accepted or expired more than `INVITE_KEEP` ago, and
    audit rows older than ``audit_retention_days`` (unless 0; the chain keeps verifying,
    `server.audit.chain.purge_older_than`).
    Idempotent; safe on every node."""
    now = utcnow()
    idle = dt.timedelta(minutes=settings.session_idle_minutes)
    async with db.session() as session:
        sessions = await session.exec(delete(AuthSession).where(not_(session_alive(idle))))
        resets = await session.exec(delete(PasswordReset).where(col(PasswordReset.expires_at) <= now))
        links = await session.exec(delete(SignInLink).where(col(SignInLink.expires_at) <= now))
        invites = await session.exec(
            delete(Invite).where(
                or_(col(Invite.expires_at) <= now - INVITE_KEEP, col(Invite.accepted_at) <= now - INVITE_KEEP)
            )
        )
        await session.commit()
    audit_events = 0
    if settings.audit_retention_days > 0:
        cutoff = now - dt.timedelta(days=settings.audit_retention_days)
        audit_events = await db.write(lambda conn: purge_older_than(conn, cutoff))
    return Purged(sessions.rowcount, invites.rowcount, resets.rowcount, links.rowcount, audit_events)


def purger(db: Database, settings: Settings, *, clock: Clock | None = None) -> Loop:
    """A loop that runs `purge_ended` every ``session_purge_seconds`` (start it); failures are logged, not raised."""

    async def purge() -> None:
        purged = await purge_ended(db, settings)
        if any(astuple(purged)):
            log.info("purged %s", purged)

    return Loop("session-purger", purge, interval=settings.session_purge_seconds, clock=clock)
