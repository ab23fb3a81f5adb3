"""``POST /api/ws-ticket``: a single-use ticket that opens one WebSocket (``/ws`` or ``/yjs``) without a long-lived
credential in its URL (docs/PROTOCOL.md, "Authentication").

Browsers on the app's own origin need none (the session cookie travels with the handshake); the ticket serves
clients that can neither send a cookie nor set a header on a WebSocket: a ticket is valid for
``ws_ticket_seconds`` (30 by default), opens one socket, on any node, and is bound to the session or API token
that asked for it, which must still be valid when it is used. Only its SHA-256 is stored (``server/live/admission.py``).
"""

from __future__ import annotations

from server.api import api
from server.context import Context
from server.policy import Scope
from server.schemas import Out
from server.security import token_hash


class WsTicketOut(Out):
    ticket: str
    expires_in: int


@api.route(
    "POST",
    "/api/ws-ticket",
    summary="A single-use ticket (30 s) to open one WebSocket: /ws?ticket=... or /yjs/{note_id}?ticket=...",
    tag="accounts",
    response=WsTicketOut,
    status=201,
    errors=(401, 429),
    scope=Scope.READ,
)
async def ws_ticket(ctx: Context) -> WsTicketOut:
    creds = ctx.services.auth.credentials(ctx.request)
    assert creds is not None  # authenticated, so it carried a token
    tickets = ctx.services.sockets.tickets
    ticket = await tickets.issue(ctx.actor.user_id, token_hash(creds.token))
    return WsTicketOut(ticket=ticket, expires_in=int(tickets.ttl_seconds))
