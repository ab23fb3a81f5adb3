"""Personal API tokens: a signed-in user makes, lists and revokes tokens for their scripts.

Only a browser or login session manages tokens (a token cannot mint or revoke tokens). A new token is shown once;
revoking one makes its next request 401 and closes its live sockets on every node.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import Field, StringConstraints
from sqlmodel import col, func, select

from server.accounts.api_tokens import new_api_token, parse_scopes
from server.api import api
from server.api.routing import ApiError, not_found
from server.audit.log import AuditAction, record
from server.context import Context
from server.db import utcnow
from server.models import ApiToken
from server.policy import Scope
from server.schemas import In, Out

MAX_TOKENS_PER_USER = 50


class ApiTokenIn(In):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    scopes: list[Scope] = Field(min_length=1, max_length=3, description="read (GET), write (the rest), admin.")
    expires_in_days: int | None = Field(None, ge=1, le=3650, description="Null: until revoked.")


class ApiTokenOut(Out):
    id: int
    name: str
    scopes: list[str]
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None


class ApiTokenCreatedOut(ApiTokenOut):
    token: str = Field(description="The token itself (tnd_...): shown this once, stored only as a hash.")


class ApiTokenList(Out):
    items: list[ApiTokenOut]


def token_out(token: ApiToken) -> ApiTokenOut:
    assert token.id is not None
    return ApiTokenOut(
        id=token.id,
        name=token.name,
        scopes=sorted(parse_scopes(token.scopes)),
        created_at=token.created_at,
        expires_at=token.expires_at,
        last_used_at=token.last_used_at,
    )


@api.route(
    "POST",
    "/api/me/tokens",
    summary="Make a personal API token (shown once)",
    tag="tokens",
    body=ApiTokenIn,
    response=ApiTokenCreatedOut,
    status=201,
    errors=(401, 403, 422),
    session_only=True,
)
async def create_token(ctx: Context, body: ApiTokenIn) -> ApiTokenCreatedOut:
    actor = ctx.actor
    scopes = set(body.scopes)
    if Scope.ADMIN in scopes and not actor.is_admin:
        raise ApiError(
            403, "forbidden", "Only organization admins may make tokens with the admin scope.", reason="admin_scope"
        )
    count = (await ctx.session.exec(select(func.count()).where(ApiToken.user_id == actor.user_id))).one()
    if count >= MAX_TOKENS_PER_USER:
        raise ApiError(422, "too_many_tokens", f"At most {MAX_TOKENS_PER_USER} tokens; revoke one first.")
    token, hashed = new_api_token()
    now = utcnow()
    row = ApiToken(
        user_id=actor.user_id,
        name=body.name,
        token_hash=hashed,
        scopes=" ".join(sorted(scopes)),
        created_at=now,
        expires_at=now + dt.timedelta(days=body.expires_in_days) if body.expires_in_days else None,
    )
    ctx.session.add(row)
    await ctx.session.flush()
    record(ctx, AuditAction.TOKEN_CREATED, "api_token", row.id, details={"name": row.name, "scopes": row.scopes})
    return ApiTokenCreatedOut(**token_out(row).model_dump(), token=token)


@api.route(
    "GET",
    "/api/me/tokens",
    summary="My personal API tokens (never the tokens themselves)",
    tag="tokens",
    response=ApiTokenList,
    errors=(401, 403),
    session_only=True,
)
async def list_tokens(ctx: Context) -> ApiTokenList:
    rows = await ctx.session.exec(
        select(ApiToken).where(ApiToken.user_id == ctx.actor.user_id).order_by(col(ApiToken.id).desc())
    )
    return ApiTokenList(items=[token_out(t) for t in rows.all()])


@api.route(
    "DELETE",
    "/api/me/tokens/{token_id:int}",
    summary="Revoke a personal API token: its next request is refused and its live sockets close",
    tag="tokens",
    status=204,
    errors=(401, 403, 404),
    session_only=True,
)
async def revoke_token(ctx: Context) -> None:
    token = await ctx.session.get(ApiToken, ctx.path_int("token_id"))
    if token is None or token.user_id != ctx.actor.user_id:
        raise not_found("token")
    await ctx.session.delete(token)
    record(ctx, AuditAction.TOKEN_REVOKED, "api_token", token.id, details={"name": token.name})
    await ctx.services.live.disconnect_user(ctx, token.user_id, hashed=token.token_hash)
