"""Asking for something by mail (a password-reset link, a sign-in link): the same answer for any address.

Both requests are limited per address and per client IP, answer 202 at once, and only then look the address up,
store a token and mail it, in a background task of the response, so neither the answer nor its timing tells who
has an account here (OWASP Forgot Password Cheat Sheet).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.background import BackgroundTask
from starlette.responses import Response

from server.accounts.routes.accounts import client_ip
from server.api.routing import ApiError
from server.context import Context
from server.schemas import Out

log = logging.getLogger(__name__)


async def check_hourly_rate(ctx: Context, kind: str, email: str, per_account: int, per_ip: int, refusal: str) -> None:
    """Count one request of ``kind`` for ``email`` and for the client's IP in the hour.

    Raises:
        ApiError: 429 ``rate_limited`` with ``refusal`` when either count is over its limit.
    """
    limiter = ctx.services.limiter
    account_ok = await limiter.hit(f"{kind}:acct:{email}", per_account, 3600)
    ip_ok = await limiter.hit(f"{kind}:ip:{client_ip(ctx)}", per_ip, 3600)
    if not (account_ok and ip_ok):
        raise ApiError(429, "rate_limited", refusal)


def answer_then(answer: Out, work: Callable[[], Awaitable[None]], what: str) -> Response:
    """A 202 with ``answer``; ``work`` runs once the answer's last byte is sent, and its failure is logged as
    ``what`` failing (the asker has their answer already; it never tells them)."""

    async def after_the_answer() -> None:
        try:
            await work()
        except Exception:
            log.exception("%s failed", what)

    return Response(
        answer.model_dump_json(), 202, media_type="application/json", background=BackgroundTask(after_the_answer)
    )
