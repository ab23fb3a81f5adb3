"""Where a person is signed in: their own sessions (device, address, last use), each of which they can end, or all
but the one they are using.

Ending a session deletes it (its next request is 401) and closes its ``/ws`` and ``/yjs`` sockets on every node,
as signing out does; each end is audited (``session.ended``). Only a browser or login session sees this list (a
personal API token is not a sign-in and cannot end one).
"""

from __future__ import annotations

import datetime as dt

from pydantic import Field
from sqlalchemy import delete
from sqlmodel import col, select

from server.accounts.auth import credentials, session_alive
from server.accounts.devices import describe_device, device_parts
from server.api import api
from server.api.routing import not_found
from server.audit.log import AuditAction, record
from server.context import Context
from server.models import AuthSession
from server.schemas import Out
from server.security import token_hash


class SessionInfoOut(Out):
    id: int
    device: str = Field(description="In English, kept for compatibility: clients word browser and system.")
    browser: str | None = Field(description="Firefox, Chrome, Safari, Edge, Script...; null when unknown.")
    system: str | None = Field(description="iOS, Android, Windows, macOS, ChromeOS, Linux; null when unknown.")
    user_agent: str
    ip: str
    created_at: dt.datetime
    last_seen_at: dt.datetime
    current: bool


class SessionList(Out):
    items: list[SessionInfoOut]


class EndedOut(Out):
    ended: int


def _current_hash(ctx: Context) -> str:
    creds = credentials(ctx.request)
    assert creds is not None  # authenticated, so it carried a token
    return token_hash(creds.token)


async def _my_sessions(ctx: Context) -> list[AuthSession]:
    idle = ctx.services.auth.idle
    rows = await ctx.session.exec(
        select(AuthSession)
        .where(AuthSession.user_id == ctx.actor.user_id, session_alive(idle))
        .order_by(col(AuthSession.last_seen_at).desc(), col(AuthSession.id).desc())
    )
    return list(rows.all())


@api.route(
    "GET",
    "/api/me/sessions",
    summary="Where I am signed in: my sessions, most recently used first (the one asking is marked current)",
    tag="accounts",
    response=SessionList,
    errors=(401, 403),
    session_only=True,
)
async def list_sessions(ctx: Context) -> SessionList:
    current = _current_hash(ctx)
    return SessionList(
        items=[
            SessionInfoOut(
                id=row.id or 0,
                device=describe_device(row.user_agent),
                browser=device_parts(row.user_agent)[0],
                system=device_parts(row.user_agent)[1],
                user_agent=row.user_agent,
                ip=row.ip,
                created_at=row.created_at,
                last_seen_at=row.last_seen_at,
                current=row.token_hash == current,
            )
            for row in await _my_sessions(ctx)
        ]
    )


async def _end(ctx: Context, rows: list[AuthSession], how: str) -> None:
    ids = [row.id for row in rows]
    await ctx.session.exec(delete(AuthSession).where(col(AuthSession.id).in_(ids)))
    for row in rows:
        record(
            ctx,
            AuditAction.SESSION_ENDED,
            "session",
            row.id,
            details={"by": how, "device": describe_device(row.user_agent)},
        )
        await ctx.services.live.disconnect_user(ctx, row.user_id, hashed=row.token_hash)


@api.route(
    "DELETE",
    "/api/me/sessions/{session_id:int}",
    summary="Sign out one of my sessions: its next request is 401 and its live sockets close on every node",
    tag="accounts",
    status=204,
    errors=(401, 403, 404),
    session_only=True,
)
async def end_session(ctx: Context) -> None:
    row = await ctx.session.get(AuthSession, ctx.path_int("session_id"))
    if row is None or row.user_id != ctx.actor.user_id:
        raise not_found("session")
    await _end(ctx, [row], "user")
    if row.token_hash == _current_hash(ctx):
        ctx.set_cookies.extend(ctx.services.auth.clear_cookies())


@api.route(
    "POST",
    "/api/me/sessions/end-others",
    summary="Sign out everywhere else: end every session of mine but this one",
    tag="accounts",
    response=EndedOut,
    errors=(401, 403),
    session_only=True,
)
async def end_other_sessions(ctx: Context) -> EndedOut:
    current = _current_hash(ctx)
    others = [row for row in await _my_sessions(ctx) if row.token_hash != current]
    if others:
        await _end(ctx, others, "user_everywhere_else")
    return EndedOut(ended=len(others))
