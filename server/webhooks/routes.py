"""Outgoing webhooks of a project: create, list, change, delete, and read their delivery log.

Who may (``server/policy.py``): staff read every webhook of a project and its managers manage them; a ``customer``
member reads and manages the project's ``shared``-audience webhooks, which only ever carry shared items. The secret
is shown once, in the answer that set it.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator
from sqlalchemy import func
from sqlmodel import col, select

from server.api import api
from server.api.routing import ApiError
from server.board.rules import project_for
from server.context import Context
from server.db import utcnow
from server.models import DeliveryStatus, Project, Visibility, Webhook, WebhookDelivery, WebhookEvent
from server.policy import Action, NotFound, authorize, visible_items
from server.schemas import In, Out, Page, PageQuery, omittable
from server.webhooks.delivery import cancel_pending
from server.webhooks.signing import new_secret
from server.webhooks.targets import TargetRefused, check_url, resolve, restricts_private

MAX_WEBHOOKS_PER_PROJECT = 20
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
# http(s), a host name or IPv4 address (no credentials, no IPv6 literal), an optional port, then a path and query
# in printable ASCII (percent-encode the rest) without a fragment.
URL_PATTERN = rf'^https?://{_LABEL}(?:\.{_LABEL})*(?::{_PORT})?(?:[/?][!-"$-~]*)?$'

Url = Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=URL_PATTERN)]
Secret = Annotated[str, StringConstraints(min_length=16, max_length=200, strip_whitespace=False)]
Events = Annotated[list[WebhookEvent], Field(min_length=1, max_length=len(WebhookEvent))]


def _unique(events: list[WebhookEvent] | None) -> list[WebhookEvent] | None:
    return None if events is None else list(dict.fromkeys(events))


class WebhookIn(In):
    url: Url = Field(description="http(s) URL the events are POSTed to.")
    events: Events = Field(description="The event types to send.")
    audience: Visibility | None = Field(
        None,
        description="internal: a staff integration, receives events about internal and shared items; shared: "
        "receives events about shared items only. Defaults to internal for staff, shared for customers.",
    )
    description: Annotated[str, StringConstraints(max_length=200)] = ""
    secret: Secret | None = Field(None, description="Signs every delivery; generated when omitted.")
    enabled: bool = True

    _unique_events = field_validator("events")(_unique)


class WebhookPatch(In):
    url: Url | None = omittable()
    events: Events | None = omittable()
    audience: Visibility | None = omittable()
    description: Annotated[str, StringConstraints(max_length=200)] | None = omittable()
    secret: Secret | None = Field(None, description="A new secret of your choosing.")
    rotate_secret: bool = Field(False, description="Generate a new secret (shown in this answer only).")
    enabled: bool | None = omittable("true also clears an automatic disabling and its reason.")

    _unique_events = field_validator("events")(_unique)


class WebhookOut(Out):
    id: int
    project_id: int
    url: str
    description: str
    events: list[str]
    audience: Visibility
    enabled: bool
    disabled_reason: str | None = Field(description="Why the webhook is disabled, when it is.")
    consecutive_failures: int = Field(description="Deliveries in a row that failed every attempt.")
    secret_hint: str = Field(description="The secret's last four characters, to tell secrets apart.")
    secret: str | None = Field(
        None, description="The signing secret: only in the answer that created or changed it, never again."
    )
    created_at: dt.datetime
    updated_at: dt.datetime


class WebhookList(Out):
    items: list[WebhookOut]


class DeliveryQuery(PageQuery):
    status: DeliveryStatus | None = None


class DeliveryOut(Out):
    id: int = Field(description="Sent as X-Tandem-Delivery; the same on every attempt.")
    webhook_id: int
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    response_status: int | None = Field(description="The HTTP status of the last attempt, if it got an answer.")
    last_error: str | None
    created_at: dt.datetime
    last_attempt_at: dt.datetime | None
    next_attempt_at: dt.datetime | None = Field(description="When the next attempt is due (pending only).")
    delivered_at: dt.datetime | None
    payload: dict[str, Any] = Field(description="The JSON body sent.")


def _out(hook: Webhook, secret: str | None = None) -> WebhookOut:
    assert hook.id is not None
    return WebhookOut(
        id=hook.id,
        project_id=hook.project_id,
        url=hook.url,
        description=hook.description,
        events=hook.event_types,
        audience=Visibility(hook.audience),
        enabled=hook.enabled,
        disabled_reason=hook.disabled_reason,
        consecutive_failures=hook.consecutive_failures,
        secret_hint=hook.secret[-4:],
        secret=secret,
        created_at=hook.created_at,
        updated_at=hook.updated_at,
    )


def _id(hook: Webhook) -> int:
    assert hook.id is not None
    return hook.id


def _manage_action(audience: str) -> Action:
    return Action.WEBHOOK_MANAGE_SHARED if audience == Visibility.SHARED else Action.WEBHOOK_MANAGE


async def _check_target(ctx: Context, url: str) -> None:
    try:
        check_url(url)
        if restricts_private(ctx.services.settings):
            await resolve(url, ctx.services.settings)
    except TargetRefused as exc:
        raise ApiError(
            422, "invalid", str(exc), [{"field": "url", "message": str(exc), "type": "url"}], reason="fields"
        ) from None


async def webhook_for(ctx: Context, webhook_id: int, action: Action) -> tuple[Webhook, Project]:
    """The webhook and its project, if ``ctx.actor`` may see it (404 otherwise) and do ``action`` (403 otherwise)."""
    hook = await ctx.session.get(Webhook, webhook_id)
    if hook is None:
        raise NotFound
    project = await ctx.session.get(Project, hook.project_id)
    if project is None:
        raise NotFound
    authorize(ctx.actor, action, project, hook)
    return hook, project


@api.route(
    "GET",
    "/api/projects/{project_id:int}/webhooks",
    summary="The project's webhooks (customers: the shared-audience ones)",
    tag="webhooks",
    response=WebhookList,
    errors=(401, 403, 404),
)
async def list_webhooks(ctx: Context) -> WebhookList:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.WEBHOOK_READ)
    rows = await ctx.session.exec(
        select(Webhook)
        .where(Webhook.project_id == project.id, visible_items(ctx.actor, Webhook))
        .order_by(col(Webhook.id))
    )
    return WebhookList(items=[_out(h) for h in rows.all()])


@api.route(
    "POST",
    "/api/projects/{project_id:int}/webhooks",
    summary="Add a webhook; the answer holds its secret, shown this once",
    tag="webhooks",
    body=WebhookIn,
    response=WebhookOut,
    status=201,
    errors=(401, 403, 404, 409, 422),
)
async def create_webhook(ctx: Context, body: WebhookIn) -> WebhookOut:
    audience = body.audience or (Visibility.INTERNAL if ctx.actor.is_staff else Visibility.SHARED)
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), _manage_action(audience))
    count = (await ctx.session.exec(select(func.count()).where(Webhook.project_id == project.id))).one()
    if count >= MAX_WEBHOOKS_PER_PROJECT:
        raise ApiError(
            409,
            "too_many_webhooks",
            f"A project has at most {MAX_WEBHOOKS_PER_PROJECT} webhooks.",
            params={"limit": MAX_WEBHOOKS_PER_PROJECT},
        )
    await _check_target(ctx, body.url)
    assert project.id is not None
    secret = body.secret or new_secret()
    hook = Webhook(
        project_id=project.id,
        url=body.url,
        description=body.description,
        secret=secret,
        events=",".join(body.events),
        audience=audience,
        enabled=body.enabled,
        created_by_id=ctx.actor.user_id,
    )
    ctx.session.add(hook)
    await ctx.session.flush()
    return _out(hook, secret)


@api.route(
    "GET",
    "/api/webhooks/{webhook_id:int}",
    summary="A webhook",
    tag="webhooks",
    response=WebhookOut,
    errors=(401, 403, 404),
)
async def get_webhook(ctx: Context) -> WebhookOut:
    hook, _ = await webhook_for(ctx, ctx.path_int("webhook_id"), Action.WEBHOOK_READ)
    return _out(hook)


@api.route(
    "PATCH",
    "/api/webhooks/{webhook_id:int}",
    summary="Change a webhook: target, events, audience, secret, or turn it on or off",
    tag="webhooks",
    body=WebhookPatch,
    response=WebhookOut,
    errors=(401, 403, 404, 422),
)
async def update_webhook(ctx: Context, body: WebhookPatch) -> WebhookOut:
    hook, project = await webhook_for(ctx, ctx.path_int("webhook_id"), Action.WEBHOOK_READ)
    authorize(ctx.actor, _manage_action(hook.audience), project, hook)
    changes = body.model_dump(exclude_unset=True, exclude={"rotate_secret", "secret"})
    if "audience" in changes and changes["audience"] != hook.audience:
        authorize(ctx.actor, _manage_action(changes["audience"]), project)
        # Events queued for the old audience must not reach the new one (an internal event to a customer's URL).
        await cancel_pending(ctx.session, _id(hook), "The webhook's audience changed before this was sent.")
        hook.audience = changes["audience"]
    if "url" in changes:
        await _check_target(ctx, changes["url"])
        hook.url = changes["url"]
    if "events" in changes:
        hook.events = ",".join(changes["events"])
    if "description" in changes:
        hook.description = changes["description"]
    if changes.get("enabled") is True:
        hook.enabled, hook.disabled_reason, hook.consecutive_failures = True, None, 0
    elif changes.get("enabled") is False and hook.enabled:
        hook.enabled, hook.disabled_reason = False, f"Turned off by {ctx.actor.name}."
        await cancel_pending(ctx.session, _id(hook), "The webhook was turned off before this was sent.")
    secret = body.secret or (new_secret() if body.rotate_secret else None)
    if secret is not None:
        hook.secret = secret
    hook.updated_at = utcnow()
    ctx.session.add(hook)
    await ctx.session.flush()
    return _out(hook, secret)


@api.route(
    "DELETE",
    "/api/webhooks/{webhook_id:int}",
    summary="Delete a webhook and its delivery log",
    tag="webhooks",
    status=204,
    errors=(401, 403, 404),
)
async def delete_webhook(ctx: Context) -> None:
    hook, project = await webhook_for(ctx, ctx.path_int("webhook_id"), Action.WEBHOOK_READ)
    authorize(ctx.actor, _manage_action(hook.audience), project, hook)
    await ctx.session.delete(hook)


@api.route(
    "GET",
    "/api/webhooks/{webhook_id:int}/deliveries",
    summary="The webhook's delivery log, newest first: status, attempts, last answer or error",
    tag="webhooks",
    query=DeliveryQuery,
    response=Page[DeliveryOut],
    errors=(401, 403, 404, 422),
)
async def list_deliveries(ctx: Context, query: DeliveryQuery) -> Page[DeliveryOut]:
    hook, _ = await webhook_for(ctx, ctx.path_int("webhook_id"), Action.WEBHOOK_READ)
    stmt = select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id)
    if query.status is not None:
        stmt = stmt.where(col(WebhookDelivery.status) == query.status)
    if query.cursor:
        stmt = stmt.where(col(WebhookDelivery.id) < int(query.cursor))
    rows = list((await ctx.session.exec(stmt.order_by(col(WebhookDelivery.id).desc()).limit(query.limit + 1))).all())
    items = [
        DeliveryOut.model_validate(
            {
                **d.model_dump(exclude={"payload", "next_attempt_at"}),
                "next_attempt_at": d.next_attempt_at if d.status == DeliveryStatus.PENDING else None,
                "payload": json.loads(d.payload),
            }
        )
        for d in rows[: query.limit]
    ]
    return Page[DeliveryOut](items=items, next_cursor=str(items[-1].id) if len(rows) > query.limit else None)
