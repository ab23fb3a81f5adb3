"""What a unit of work runs with: the request, the app's services, a database session and the actor.

A route handler receives one from the HTTP layer; the mail-in handler builds one for a reply it turns into a comment.
Rules take it to read the actor and session and to queue work after the transaction commits or rolls back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request

from server.errors import Unauthenticated
from server.policy import Actor, NotFound

if TYPE_CHECKING:
    # Only a type: the composition root builds the services and hands them in (no import at run time).
    from server.services import Services

# The largest id a database integer holds: a larger one in a path names nothing.
MAX_ID = 2**63 - 1


@dataclass
class Context:
    """What a handler works with during one request."""

    request: Request
    services: Services
    session: AsyncSession
    actor_or_none: Actor | None
    # Run after the handler's transaction commits (e.g. publishing events to live sockets).
    after_commit: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Run when the handler fails and its transaction rolls back (e.g. removing a blob already stored).
    after_rollback: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    response_headers: dict[str, str] = field(default_factory=dict)
    set_cookies: list[dict[str, Any]] = field(default_factory=list)

    @property
    def actor(self) -> Actor:
        if self.actor_or_none is None:
            raise Unauthenticated("Sign in first.")
        return self.actor_or_none

    def path_int(self, name: str) -> int:
        """An id from the path; one too large for a database integer names nothing (404, not an overflow's 500)."""
        value = int(self.request.path_params[name])
        if value > MAX_ID:
            raise NotFound
        return value
