"""The route of a person's "waiting on you" list (server/waiting/queries.py)."""

from __future__ import annotations

from server.api import api
from server.context import Context
from server.waiting.queries import WaitingList, waiting_on


@api.route(
    "GET",
    "/api/me/waiting",
    summary="Everything waiting on me, across my projects, most urgent first",
    tag="accounts",
    response=WaitingList,
    errors=(401,),
)
async def my_waiting(ctx: Context) -> WaitingList:
    return WaitingList(items=await waiting_on(ctx.session, ctx.actor, ctx.services.settings.due_soon_days))
