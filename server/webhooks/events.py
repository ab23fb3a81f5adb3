"""Webhook events: recorded in the transaction of the change they describe.

A handler calls one of :class:`WebhookEvents`' methods inside its transaction, exactly where it tells live sockets
(``server/live/updates.py``). The method writes one ``WebhookDelivery`` row per enabled webhook of the project that
subscribes to the event and may receive it, in the same session: the delivery table is itself a transactional
outbox, so a delivery exists if and only if its change committed (nothing is sent for a rolled-back change), and
the worker is woken after the commit, like the outbox relay.

The audience rule: an ``internal`` webhook receives every event of its project; a ``shared`` one only events about
shared items (a shared task; a shared comment on a shared task; a shared milestone; requests, which are shared by
nature). An event about an internal item is never written for a shared webhook, so no later path can send it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlmodel import col, select

from server.db import utcnow
from server.models import Visibility, Webhook, WebhookDelivery, WebhookEvent

if TYPE_CHECKING:
    from pydantic import BaseModel

    from server.context import Context
    from server.models import Status, Task
    from server.schemas import CommentOut, MilestoneOut, TaskOut


def may_receive(webhook: Webhook, event_type: str, *, shared: bool) -> bool:
    """Whether ``webhook`` gets an event of ``event_type`` about an item that is ``shared`` (or internal)."""
    if not webhook.enabled or event_type not in webhook.event_types:
        return False
    return webhook.audience == Visibility.INTERNAL or (shared and webhook.audience == Visibility.SHARED)


class WebhookEvents:
    def __init__(self, kick: Callable[[], None]) -> None:
        self._kick = kick

    async def _after_commit(self) -> None:
        self._kick()

    async def emit(
        self, ctx: Context, project_id: int, event_type: WebhookEvent, data: dict[str, Any], *, shared: bool
    ) -> int:
        """Record ``event_type`` for every webhook of ``project_id`` that may receive it, in ``ctx``'s transaction.

        Args:
            ctx: the request; its session holds the change the event describes.
            project_id: the project the event belongs to.
            event_type: what happened.
            data: the event's ``data`` (JSON-ready); it must hold only what the audience ``shared`` allows.
            shared: whether the item is shared; if not, only ``internal`` webhooks receive the event.

        Returns:
            How many deliveries were recorded.
        """
        return self._record(ctx, project_id, event_type, data, await self._targets(ctx, project_id, event_type, shared))

    async def _targets(self, ctx: Context, project_id: int, event_type: WebhookEvent, shared: bool) -> list[Webhook]:
        hooks = (
            await ctx.session.exec(
                select(Webhook).where(Webhook.project_id == project_id, col(Webhook.enabled).is_(True))
            )
        ).all()
        return [h for h in hooks if may_receive(h, event_type, shared=shared)]

    def _record(
        self, ctx: Context, project_id: int, event_type: WebhookEvent, data: dict[str, Any], targets: list[Webhook]
    ) -> int:
        if not targets:
            return 0
        now = utcnow()
        event_id = uuid.uuid4().hex
        actor = ctx.actor_or_none
        body = json.dumps(
            {
                "id": event_id,
                "type": event_type.value,
                "created_at": now.isoformat().replace("+00:00", "Z"),
                "project_id": project_id,
                "actor": {"id": actor.user_id, "name": actor.name} if actor is not None else None,
                "data": data,
            },
            separators=(",", ":"),
        )
        for hook in targets:
            assert hook.id is not None
            ctx.session.add(
                WebhookDelivery(
                    webhook_id=hook.id,
                    event_id=event_id,
                    event_type=event_type.value,
                    payload=body,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
        if self._after_commit not in ctx.after_commit:
            ctx.after_commit.append(self._after_commit)
        return len(targets)

    async def task_status_changed(self, ctx: Context, task: TaskOut, before: Status, after: Status) -> None:
        """A task moved from the status ``before`` to ``after`` (``task.status_id``). (The commonest event: its data
        is built only when some webhook takes it.)"""
        shared = task.visibility == Visibility.SHARED
        targets = await self._targets(ctx, task.project_id, WebhookEvent.TASK_STATUS_CHANGED, shared)
        if not targets:
            return
        data = {
            "task": task.model_dump(mode="json"),
            "from_status": {"id": before.id, "name": before.name, "category": before.category},
            "to_status": {"id": after.id, "name": after.name, "category": after.category},
        }
        self._record(ctx, task.project_id, WebhookEvent.TASK_STATUS_CHANGED, data, targets)

    async def comment_created(self, ctx: Context, comment: CommentOut, task: Task) -> None:
        data = {
            "comment": comment.model_dump(mode="json", exclude={"reactions"}),
            "task": {"id": task.id, "title": task.title, "visibility": task.visibility},
        }
        shared = comment.visibility == Visibility.SHARED and task.visibility == Visibility.SHARED
        await self.emit(ctx, comment.project_id, WebhookEvent.COMMENT_CREATED, data, shared=shared)

    async def request_filed(self, ctx: Context, project_id: int, request: BaseModel) -> None:
        data = {"request": request.model_dump(mode="json")}
        await self.emit(ctx, project_id, WebhookEvent.REQUEST_FILED, data, shared=True)

    async def request_triaged(self, ctx: Context, project_id: int, request: BaseModel, action: str) -> None:
        """``action``: accept, merge, ask or decline."""
        data = {"action": action, "request": request.model_dump(mode="json")}
        await self.emit(ctx, project_id, WebhookEvent.REQUEST_TRIAGED, data, shared=True)

    async def milestone_completed(self, ctx: Context, milestone: MilestoneOut) -> None:
        data = {"milestone": milestone.model_dump(mode="json")}
        shared = milestone.visibility == Visibility.SHARED
        await self.emit(ctx, milestone.project_id, WebhookEvent.MILESTONE_COMPLETED, data, shared=shared)
