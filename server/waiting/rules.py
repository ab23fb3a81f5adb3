"""What waits on whom: the one definition of "waiting on the customer", and who each waiting item waits on.

A task **waits on the customer** when it is shared, not done, and either assigned to a customer user or standing
in a status flagged ``waits_on_customer`` (the default workflow's "Waiting on customer" column). Project
summaries, the task filter, reports and the board's ``waiting_on_customer`` all use :func:`task_waits_on_customer`
(SQL) or :func:`waits_on_customer` (the same rule on loaded rows; a test keeps the two in step).

What waits on one person (``GET /api/me/waiting``, server/waiting/routes.py), across the projects they may see:

- ``task``: an open task assigned to them; or, for a project's ``customer`` members, a task waiting on the
  customer whose assignee is not a customer user (nobody on the customer's side has it yet);
- ``request``: a request of a project where they are a ``customer`` member, needing information;
- ``feedback``: an open feedback request of such a project that they have not answered;
- ``mention``: a comment mentioning them, on an open task, that they have not commented after (a later comment
  of theirs on the same task answers it, even if since deleted).

Every query goes through the policy's scopes (``visible_projects``, ``visible_items``, ``thread_rows_visible``),
so a customer is never shown an internal item. When something may have entered or left someone's list, a hint
goes to their ``user:{id}`` channel and clients refetch the list: ``{"type": "waiting.changed"}``, or the
event that already tells them (``notification.created`` for a new mention, ``feedback.requested`` for a new
feedback ask, ``action_items.changed`` for a task assigned to them).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, or_
from sqlmodel import col, select

from server.models import (
    Comment,
    Membership,
    Mention,
    OrgRole,
    ProjectRole,
    Status,
    StatusCategory,
    Task,
    User,
    Visibility,
)

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

    from server.context import Context


def customer_users() -> ColumnElement[bool]:
    """``Task.assignee_id`` names a customer user (false, never NULL, for an unassigned task, so it negates)."""
    customers = select(User.id).where(User.role == OrgRole.CUSTOMER)
    return and_(col(Task.assignee_id).is_not(None), col(Task.assignee_id).in_(customers))


def task_waits_on_customer() -> ColumnElement[bool]:
    """A WHERE clause on tasks joined with their ``Status``: the task waits on the customer."""
    return and_(
        col(Task.visibility) == Visibility.SHARED,
        col(Status.category) != StatusCategory.DONE,
        or_(customer_users(), col(Status.waits_on_customer).is_(True)),
    )


def waits_on_customer(visibility: str, category: str, status_waits: bool, assignee_is_customer: bool) -> bool:
    """:func:`task_waits_on_customer` for a task already loaded (its status's category and flag, its assignee)."""
    return (
        visibility == Visibility.SHARED and category != StatusCategory.DONE and (assignee_is_customer or status_waits)
    )


def customer_member_of(user_id: int, project_id_column: Any) -> ColumnElement[bool]:
    """The project (by ``project_id_column``) has ``user_id`` as a ``customer`` member (viewers only read)."""
    projects = select(Membership.project_id).where(
        Membership.user_id == user_id, Membership.role == ProjectRole.CUSTOMER
    )
    return col(project_id_column).in_(projects)


def task_waits_on(user_id: int) -> ColumnElement[bool]:
    """A WHERE clause on tasks joined with their ``Status``: the open task waits on ``user_id``."""
    return and_(
        col(Status.category) != StatusCategory.DONE,
        or_(
            col(Task.assignee_id) == user_id,
            and_(task_waits_on_customer(), ~customer_users(), customer_member_of(user_id, Task.project_id)),
        ),
    )


# -- live hints ---------------------------------------------------------------------------------------------------


async def project_customers(session: AsyncSession, project_id: int) -> set[int]:
    """The project's ``customer`` members: the people a task waiting on the customer (or a request needing
    information, or a feedback request) waits on."""
    rows = await session.exec(
        select(Membership.user_id).where(Membership.project_id == project_id, Membership.role == ProjectRole.CUSTOMER)
    )
    return set(rows.all())


def hint(ctx: Context, user_ids: Iterable[int | None]) -> None:
    """Tell ``user_ids`` (their every device) that their "waiting on you" list may have changed."""
    ctx.services.live.waiting_changed(ctx, sorted({u for u in user_ids if u is not None}))


async def hint_project(ctx: Context, project_id: int, *also: int | None) -> None:
    """:func:`hint` the project's customer members, and ``also`` these people."""
    hint(ctx, [*await project_customers(ctx.session, project_id), *also])


async def task_moved(
    ctx: Context,
    project_id: int,
    *,
    before: tuple[str, str, bool, int | None] | None,
    after: tuple[str, str, bool, int | None] | None,
) -> None:
    """Hint whoever a task waited on before a change or waits on after it.

    Args:
        before: the task's (visibility, status category, status ``waits_on_customer``, assignee id) before the
            change; None for a new task.
        after: the same after the change; None for a deleted task.
    """
    states = [s for s in (before, after) if s is not None]
    if not any(waits_on_customer(v, c, w, a is not None) for v, c, w, a in states):
        # Waits on nobody even if its assignee were a customer: the customers need not be read.
        hint(ctx, [a for *_, a in states])
        return
    customers = await project_customers(ctx.session, project_id)
    if any(waits_on_customer(v, c, w, a in customers) for v, c, w, a in states):
        hint(ctx, [*customers, *(a for *_, a in states)])
    else:
        hint(ctx, [a for *_, a in states])


async def mentions_answered(ctx: Context, task_id: int, comment_id: int) -> None:
    """After ``ctx.actor`` commented on a task: hint them if the comment answered a mention of them there."""
    user_id = ctx.actor.user_id
    stmt = (
        select(Comment.id)
        .join(Mention, col(Mention.comment_id) == Comment.id)
        .where(Comment.task_id == task_id, Mention.user_id == user_id, col(Comment.id) < comment_id)
        .limit(1)
    )
    if (await ctx.session.exec(stmt)).first() is not None:
        hint(ctx, [user_id])
