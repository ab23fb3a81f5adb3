"""Creating notifications of every kind, and people's email preferences for them.

A notification is written in the handler's transaction and pushed to the recipient's ``user:{id}`` channel through
the outbox, so it exists exactly when the change that caused it does. Kinds:

- ``mention``: someone mentioned you in a comment;
- ``assignment``: a task was assigned to you;
- ``request``: a request you filed changed (or, for staff on the project, a request was filed);
- ``status``: a task assigned to you (waiting on you) moved to another status;
- ``feedback``: a milestone was completed (or staff asked): how well were your goals supported?

A notification carries no sentence of its own but its ``kind`` and ``params`` (names and titles as they were when it
was made, and for ``request`` the ``step``: a ``RequestStep``); the web client words it from its catalogs
and mails word it with ``server.i18n`` in the recipient's language. ``text`` keeps the sentence in the recipient's
language at the time, for API clients that show a line as it is.

Nobody is notified of their own doing. Email follows the recipient's ``NotificationPreference``: mentions
``immediately`` (mailed right after the change commits), or ``hourly`` / ``daily`` digests, or ``off``; the other
kinds ``hourly``, ``daily`` or ``off``. Without a row: everything in hourly digests.
"""

from __future__ import annotations

import datetime as dt
import json
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlmodel import col, select

from server.i18n import notification_text
from server.models import (
    STAFF_PROJECT_ROLES,
    EmailCadence,
    Membership,
    Notification,
    NotificationPreference,
    Request,
    Status,
    Task,
    User,
)

if TYPE_CHECKING:
    from server.context import Context


class RequestStep(StrEnum):
    """What happened to a request, for a ``request`` notification's ``step``."""

    FILED = "filed"
    REPLY = "reply"
    ACCEPTED = "accepted"
    MERGED = "merged"
    ASKED = "asked"
    DECLINED = "declined"


class NotificationKind(StrEnum):
    MENTION = "mention"
    ASSIGNMENT = "assignment"
    REQUEST = "request"
    STATUS = "status"
    FEEDBACK = "feedback"


DIGEST_PERIODS = {EmailCadence.HOURLY: dt.timedelta(hours=1), EmailCadence.DAILY: dt.timedelta(days=1)}


def cadence_for(preference: NotificationPreference | None, kind: str) -> EmailCadence:
    """How notifications of ``kind`` are mailed to the owner of ``preference`` (the defaults without one)."""
    if preference is None:
        return EmailCadence.HOURLY
    return EmailCadence(preference.mentions if kind == NotificationKind.MENTION else preference.others)


async def notify(
    ctx: Context,
    user_id: int,
    kind: NotificationKind,
    params: dict[str, str],
    *,
    project_id: int | None,
    task_id: int | None = None,
    comment_id: int | None = None,
    request_id: int | None = None,
) -> Notification | None:
    """Notify ``user_id`` (never the actor) in-app now, and by email as their preferences say.

    Returns:
        The notification, or None when the recipient is the actor.
    """
    if user_id == ctx.actor.user_id:
        return None
    recipient = await ctx.session.get(User, user_id)
    text = notification_text(recipient.locale if recipient else "en", kind, params)
    notification = Notification(
        user_id=user_id,
        kind=kind,
        project_id=project_id,
        task_id=task_id,
        comment_id=comment_id,
        request_id=request_id,
        actor_id=ctx.actor.user_id,
        text=text[:500],
        params=json.dumps({key: value[:300] for key, value in params.items()}),
    )
    ctx.session.add(notification)
    await ctx.session.flush()
    await ctx.services.live.notification_created(ctx, notification)
    preference = await ctx.session.get(NotificationPreference, user_id)
    if cadence_for(preference, kind) == EmailCadence.IMMEDIATELY:
        digests = ctx.services.digests

        async def mail_now() -> None:
            digests.send_soon(user_id)

        ctx.after_commit.append(mail_now)
    return notification


async def task_changed(ctx: Context, task: Task, *, assignee_before: int | None, status_before: int | None) -> None:
    """Notify about a created or changed task: its new assignee, or its assignee when it moved.

    Args:
        assignee_before: the assignee before the change (None for a new task).
        status_before: the status before the change (None for a new task).
    """
    assert task.id is not None
    if task.assignee_id is None:
        return
    if task.assignee_id != assignee_before:
        await notify(
            ctx,
            task.assignee_id,
            NotificationKind.ASSIGNMENT,
            {"actor": ctx.actor.name, "task": task.title},
            project_id=task.project_id,
            task_id=task.id,
        )
    elif status_before is not None and task.status_id != status_before:
        status = await ctx.session.get(Status, task.status_id)
        await notify(
            ctx,
            task.assignee_id,
            NotificationKind.STATUS,
            {"task": task.title, "status": status.name if status else ""},
            project_id=task.project_id,
            task_id=task.id,
        )


async def request_changed(
    ctx: Context, request: Request, step: RequestStep, *, to_staff: bool = False, task_title: str = ""
) -> None:
    """Notify about a request: its filer of every step; with ``to_staff``, the project's staff members too
    (a request filed or answered by the customer).

    Args:
        task_title: for ``merged``, the task it was merged into (only a task its filer may see).
    """
    assert request.id is not None
    recipients: set[int] = set()
    if request.created_by_id is not None:
        recipients.add(request.created_by_id)
    if to_staff:
        staff = await ctx.session.exec(
            select(Membership.user_id)
            .join(User, col(User.id) == Membership.user_id)
            .where(
                Membership.project_id == request.project_id,
                col(Membership.role).in_(list(STAFF_PROJECT_ROLES)),
                col(User.is_active).is_(True),
            )
        )
        recipients.update(staff.all())
    for user_id in sorted(recipients):
        await notify(
            ctx,
            user_id,
            NotificationKind.REQUEST,
            {"request": request.title, "step": step, **({"task": task_title} if task_title else {})},
            project_id=request.project_id,
            request_id=request.id,
            task_id=request.task_id,
        )
