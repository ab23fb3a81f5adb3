"""Personal API tokens: long-lived bearer tokens a user makes for scripts, narrowed to scopes.

A token is ``tnd_`` followed by 43 URL-safe characters; the prefix tells it apart from session tokens (and lets
secret scanners find leaked ones). Only its SHA-256 is stored. It authenticates as its owner, with memberships read
afresh on every request, so it can never do more than the owner could; its scopes only narrow that.
"""

from __future__ import annotations

import datetime as dt

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.db import utcnow
from server.models import ApiToken, User
from server.policy import Scope
from server.security import new_token, token_hash

TOKEN_PREFIX = "tnd_"
# Refresh last_used_at at most this often, as sessions do: a read must not turn into a write on every request.
_TOUCH_INTERVAL = dt.timedelta(minutes=1)


def is_api_token(token: str) -> bool:
    return token.startswith(TOKEN_PREFIX)


def new_api_token() -> tuple[str, str]:
    """A fresh token and its SHA-256 (what is stored)."""
    token = TOKEN_PREFIX + new_token()
    return token, token_hash(token)


def parse_scopes(stored: str) -> frozenset[str]:
    return frozenset(s for s in stored.split() if s in Scope.__members__.values())


async def token_owner(
    session: AsyncSession, hashed: str, *, user_id: int | None = None, touch: bool = False
) -> tuple[ApiToken, User] | None:
    """The token whose SHA-256 is ``hashed`` and its owner, if it is unexpired and the owner is active.

    Args:
        user_id: when given, the token must also belong to this user (re-checks of a live socket).
        touch: record the use in ``last_used_at`` (at most once a minute).
    """
    query = (
        select(ApiToken, User)
        .join(User, col(User.id) == ApiToken.user_id)
        .where(ApiToken.token_hash == hashed, col(User.is_active).is_(True))
    )
    if user_id is not None:
        query = query.where(ApiToken.user_id == user_id)
    row = (await session.exec(query)).first()
    if row is None:
        return None
    token, user = row
    now = utcnow()
    if token.expires_at is not None and token.expires_at <= now:
        return None
    if touch and (token.last_used_at is None or now - token.last_used_at > _TOUCH_INTERVAL):
        token.last_used_at = now
        session.add(token)
    return token, user


async def live_token_hashes(session: AsyncSession, hashes: list[str]) -> set[str]:
    """Which of ``hashes`` (at most a few hundred) are API tokens still valid: not revoked, not expired."""
    rows = await session.exec(
        select(ApiToken.token_hash).where(
            col(ApiToken.token_hash).in_(hashes),
            col(ApiToken.expires_at).is_(None) | (col(ApiToken.expires_at) > utcnow()),
        )
    )
    return set(rows.all())
