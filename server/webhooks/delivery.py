"""The webhook worker: claims due deliveries, POSTs them signed, retries with backoff, disables dead webhooks.

It runs in the web process's lifespan (``TANDEM_WEBHOOK_WORKER``, on by default) or as ``tandem worker``, on any
number of nodes. Due rows are picked (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so nodes take different rows
without waiting), then claimed by a conditional ``UPDATE`` (``... WHERE id IN (picked) AND next_attempt_at <=
now``) that moves ``next_attempt_at`` past the attempt's deadline and counts the attempt: a claimed row is no
longer due, so no two nodes make the same attempt. If a node dies mid-attempt, the row becomes due again when that
lease runs out (at least once, which is why receivers deduplicate by ``X-Tandem-Delivery``).

Guarantees: every delivery of a committed event is attempted until it succeeds (any 2xx), its attempts run out
(``failed``), or its webhook is disabled or deleted (``cancelled``). Deliveries are not ordered. After
``disable_after`` deliveries of a webhook in a row end ``failed``, the webhook is disabled with a reason.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.loops import Loop
from server.db import Database, utcnow
from server.models import DeliveryStatus, Visibility, Webhook, WebhookDelivery
from server.observability import WEBHOOK_ATTEMPTS, WEBHOOK_DISABLED
from server.settings import Settings
from server.webhooks.signing import signature
from server.webhooks.targets import Target, TargetRefused, resolve

log = logging.getLogger(__name__)

USER_AGENT = "Tandem-Webhooks/1"
# Extra time a claim lasts beyond the attempt's own deadline before another node may retry the row.
LEASE_MARGIN_SECONDS = 30.0


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    webhook_id: int
    attempt: int
    event_type: str
    payload: str
    url: str
    secret: str
    audience: str = Visibility.INTERNAL


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status: int | None = None
    error: str | None = None


PRIVATE_WITHHELD = "the answer of a private address is not shown"


def withheld(target: Target, claimed: Claimed) -> bool:
    """Whether what the target answered stays out of the delivery log: a shared webhook's log is read by customers,
    who may not see the network behind Tandem, so the answers (and errors) of private addresses, which only
    development allows, are left out of it. Staff's internal webhooks keep them, for debugging."""
    return not target.public and claimed.audience != Visibility.INTERNAL


def retry_delay(settings: Settings, attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): exponential, capped, with jitter (between
    half and all of ``min(retry_max, retry_base * 2**(attempt-1))``, so failed deliveries do not retry in step)."""
    hooks = settings.webhooks
    ceiling: float = min(hooks.retry_max_seconds, hooks.retry_base_seconds * 2.0 ** min(attempt - 1, 30))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def disable_reason(failures: int, error: str | None, when: dt.datetime) -> str:
    last = f" (last: {error})" if error else ""
    text = f"Disabled automatically at {when:%Y-%m-%d %H:%M} UTC after {failures} failed deliveries in a row{last}."
    return text[:300]


async def cancel_pending(session: AsyncSession, webhook_id: int, reason: str) -> None:
    """Cancel the webhook's deliveries that have not gone out (the caller commits)."""
    await session.exec(
        update(WebhookDelivery)
        .where(col(WebhookDelivery.webhook_id) == webhook_id, col(WebhookDelivery.status) == DeliveryStatus.PENDING)
        .values(status=DeliveryStatus.CANCELLED, last_error=reason[:500])
    )


class WebhookWorker:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        batch_size: int = 16,
        lease_margin_seconds: float = LEASE_MARGIN_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.db = db
        self.batch_size = batch_size
        self.lease_margin_seconds = lease_margin_seconds
        self._transport = transport
        self._clock = clock  # what "due" is measured against (tests pass a fixed time to step past a lease)
        self._client: httpx.AsyncClient | None = None
        poll = settings.webhooks.poll_seconds
        # Right away at start (deliveries may be due), then when the next is due; a failed round retries after a
        # backoff from one poll up to ten.
        self.loop = Loop("webhook-worker", self._pass, interval=poll, first_delay=0, backoff_max=10 * poll)

    def kick(self) -> None:
        """Look for due deliveries now rather than at the next poll."""
        self.loop.wake()

    def start(self) -> None:
        self.loop.start()

    async def stop(self) -> None:
        """Stop the loop; attempts in flight are abandoned and retried (by any node) once their lease runs out."""
        await self.loop.stop()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self._transport,
                timeout=httpx.Timeout(self.settings.webhooks.timeout_seconds),
                follow_redirects=False,
                trust_env=False,  # no proxy from the environment: the target checked is the target reached
            )
        return self._client

    async def _pass(self) -> float:
        poll = self.settings.webhooks.poll_seconds
        if await self.run_once():
            return 0.0  # more may be due right away
        return await self._seconds_until_due(poll)

    async def _seconds_until_due(self, ceiling: float) -> float:
        async with self.db.session() as session:
            due = (
                await session.exec(
                    # The same rows a claim considers: a pending row of a disabled webhook must not spin the loop.
                    select(func.min(WebhookDelivery.next_attempt_at))
                    .join(Webhook, col(Webhook.id) == WebhookDelivery.webhook_id)
                    .where(col(WebhookDelivery.status) == DeliveryStatus.PENDING, col(Webhook.enabled).is_(True))
                )
            ).one()
        if due is None:
            return ceiling
        return max(0.01, min(ceiling, (due - self._clock()).total_seconds()))

    async def run_once(self) -> int:
        """Claim up to ``batch_size`` due deliveries and attempt them concurrently.

        Returns:
            How many attempts were made.
        """
        claimed = await self._claim()
        if claimed:
            await asyncio.gather(*(self._deliver(c) for c in claimed))
        return len(claimed)

    async def _claim(self) -> list[Claimed]:
        now = self._clock()
        lease = now + dt.timedelta(seconds=self.settings.webhooks.timeout_seconds + self.lease_margin_seconds)
        due = (
            select(WebhookDelivery.id)
            .join(Webhook, col(Webhook.id) == WebhookDelivery.webhook_id)
            .where(
                col(WebhookDelivery.status) == DeliveryStatus.PENDING,
                col(WebhookDelivery.next_attempt_at) <= now,
                col(Webhook.enabled).is_(True),
            )
            .order_by(col(WebhookDelivery.next_attempt_at), col(WebhookDelivery.id))
            .limit(self.batch_size)
        )
        if self.db.dialect == "postgresql":
            due = due.with_for_update(skip_locked=True, of=WebhookDelivery)
        async with self.db.session() as session:
            # Two statements, not ``UPDATE ... WHERE id IN (SELECT ... LIMIT n)``: PostgreSQL may run that subquery
            # more than once and claim far more than ``n`` rows. And an idle poll
            # stays a read: SQLite's write lock is only taken when something is due.
            picked = list((await session.exec(due)).all())
            if not picked:
                return []
            claim = (
                update(WebhookDelivery)
                .where(
                    col(WebhookDelivery.id).in_(picked),
                    # On SQLite, what tells two processes that picked the same rows apart: the second finds them
                    # no longer due (its UPDATE starts a fresh write transaction, after the first one's commit).
                    col(WebhookDelivery.status) == DeliveryStatus.PENDING,
                    col(WebhookDelivery.next_attempt_at) <= now,
                )
                .values(next_attempt_at=lease, attempts=col(WebhookDelivery.attempts) + 1, last_attempt_at=now)
                .returning(col(WebhookDelivery.id))
            )
            ids = list((await session.exec(claim)).scalars().all())
            rows = (
                (
                    await session.exec(
                        select(WebhookDelivery, Webhook)
                        .join(Webhook, col(Webhook.id) == WebhookDelivery.webhook_id)
                        .where(col(WebhookDelivery.id).in_(ids))
                    )
                ).all()
                if ids
                else []
            )
            await session.commit()
        return [
            Claimed(d.id, w.id, d.attempts, d.event_type, d.payload, w.url, w.secret, w.audience)  # type: ignore[arg-type]
            for d, w in rows
        ]

    async def attempt(self, claimed: Claimed) -> Outcome:
        """POST one delivery, signed, within the timeout; any 2xx answer is success."""
        body = claimed.payload.encode()
        timestamp = str(int(time.time()))
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "x-tandem-event": claimed.event_type,
            "x-tandem-delivery": str(claimed.delivery_id),
            "x-tandem-attempt": str(claimed.attempt),
            "x-tandem-timestamp": timestamp,
            "x-tandem-signature": signature(claimed.secret, timestamp, body),
        }
        target: Target | None = None
        try:
            async with asyncio.timeout(self.settings.webhooks.timeout_seconds):
                target = await resolve(claimed.url, self.settings)
                headers["host"] = target.host
                extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else None
                request = self._http().build_request("POST", target.url, content=body, headers=headers)
                if extensions:
                    request.extensions.update(extensions)
                response = await self._http().send(request, stream=True)
                try:
                    snippet = b""
                    async for chunk in response.aiter_bytes():
                        snippet += chunk
                        if len(snippet) >= 200:
                            break
                finally:
                    await response.aclose()
        except TargetRefused as exc:
            return Outcome(False, error=str(exc))
        except TimeoutError:
            return Outcome(False, error=f"no answer within {self.settings.webhooks.timeout_seconds:g}s")
        except (httpx.HTTPError, OSError, ValueError) as exc:
            # ValueError: URLs httpx or IDNA refuses (UnicodeError is one); a failed attempt like any other.
            if target is not None and withheld(target, claimed):
                return Outcome(False, error=PRIVATE_WITHHELD)
            return Outcome(False, error=f"{type(exc).__name__}: {exc}"[:500])
        if 200 <= response.status_code < 300:
            return Outcome(True, status=response.status_code)
        if withheld(target, claimed):
            return Outcome(
                False, status=response.status_code, error=f"HTTP {response.status_code} ({PRIVATE_WITHHELD})"
            )
        text = snippet[:200].decode(errors="replace").strip()
        return Outcome(
            False, status=response.status_code, error=f"HTTP {response.status_code}" + (f": {text}" if text else "")
        )

    async def _deliver(self, claimed: Claimed) -> None:
        outcome = await self.attempt(claimed)
        WEBHOOK_ATTEMPTS.labels(outcome="ok" if outcome.ok else "error").inc()
        try:
            await self._record(claimed, outcome)
        except Exception:
            # The claim's lease runs out and the delivery is attempted again: at least once.
            log.warning("webhooks: could not record delivery %s", claimed.delivery_id, exc_info=True)

    async def _record(self, claimed: Claimed, outcome: Outcome) -> None:
        now = utcnow()
        gave_up = not outcome.ok and claimed.attempt >= self.settings.webhooks.max_attempts
        values: dict[str, Any] = {"response_status": outcome.status, "last_error": outcome.error}
        if outcome.ok:
            values.update(status=DeliveryStatus.DELIVERED, delivered_at=now)
        elif gave_up:
            values.update(status=DeliveryStatus.FAILED, next_attempt_at=now)
        else:
            values.update(next_attempt_at=now + dt.timedelta(seconds=retry_delay(self.settings, claimed.attempt)))
        async with self.db.session() as session:
            # One conditional UPDATE: a delivery cancelled (its webhook made shared, disabled, deleted) or retried by
            # another node after the lease ran out, even while this attempt was in flight, keeps what that wrote.
            recorded = await session.exec(
                update(WebhookDelivery)
                .where(
                    col(WebhookDelivery.id) == claimed.delivery_id,
                    col(WebhookDelivery.status) == DeliveryStatus.PENDING,
                    col(WebhookDelivery.attempts) == claimed.attempt,
                )
                .values(**values)
            )
            if recorded.rowcount != 1:
                return
            hooks = update(Webhook).where(col(Webhook.id) == claimed.webhook_id)
            if outcome.ok:
                await session.exec(hooks.values(consecutive_failures=0))
            elif gave_up:
                failures = (
                    await session.exec(
                        hooks.values(consecutive_failures=col(Webhook.consecutive_failures) + 1).returning(
                            col(Webhook.consecutive_failures)
                        )
                    )
                ).scalar_one_or_none()
                if failures is not None and failures >= self.settings.webhooks.disable_after:
                    await self._disable(session, claimed.webhook_id, disable_reason(failures, outcome.error, now))
            await session.commit()

    async def _disable(self, session: AsyncSession, webhook_id: int, reason: str) -> None:
        disabled = await session.exec(
            update(Webhook)
            .where(col(Webhook.id) == webhook_id, col(Webhook.enabled).is_(True))
            .values(enabled=False, disabled_reason=reason, updated_at=utcnow())
        )
        if disabled.rowcount:
            WEBHOOK_DISABLED.inc()
            log.warning("webhooks: webhook %s disabled: %s", webhook_id, reason)
            await cancel_pending(session, webhook_id, "The webhook was disabled before this was sent.")
