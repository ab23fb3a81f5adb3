"""Asking customers for feedback: opening a request (on demand, or once when a shared milestone is completed) and
how a request appears to the people asked. The feedback routes and the board's milestone routes share these."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func
from sqlmodel import col, select

from server.context import Context
from server.errors import Invalid
from server.inbox import notify
from server.models import FeedbackAnswer, FeedbackRequest, Membership, Milestone, Project, ProjectRole, User, Visibility
from server.schemas import Out


class FeedbackRequestOut(Out):
    id: int
    project_id: int
    milestone_id: int | None
    milestone_name: str | None
    created_at: dt.datetime
    closed_at: dt.datetime | None
    answers: int
    answered_by_me: bool


async def request_out(ctx: Context, request: FeedbackRequest) -> FeedbackRequestOut:
    milestone = await ctx.session.get(Milestone, request.milestone_id) if request.milestone_id else None
    if milestone is not None and not ctx.actor.is_staff and milestone.visibility != Visibility.SHARED:
        # Callers only serialize requests the actor may see; this keeps a milestone's name from ever riding along.
        milestone = None
    answers = (
        await ctx.session.exec(select(FeedbackAnswer.user_id).where(FeedbackAnswer.request_id == request.id))
    ).all()
    assert request.id is not None
    return FeedbackRequestOut(
        id=request.id,
        project_id=request.project_id,
        milestone_id=request.milestone_id,
        milestone_name=milestone.name if milestone else None,
        created_at=request.created_at,
        closed_at=request.closed_at,
        answers=len(answers),
        answered_by_me=ctx.actor.user_id in answers,
    )


async def open_request(ctx: Context, project: Project, milestone: Milestone | None) -> FeedbackRequest:
    """Ask the project's ``customer`` members for feedback: a request, a notification and a live event each.

    Raises:
        Invalid: when ``milestone`` is internal (customers could not see what they are asked about).
    """
    assert project.id is not None
    if milestone is not None and milestone.visibility != Visibility.SHARED:
        raise Invalid("Customers can only be asked about a shared milestone.", reason="internal_milestone")
    request = FeedbackRequest(
        project_id=project.id,
        milestone_id=milestone.id if milestone else None,
        requested_by_id=ctx.actor.user_id,
    )
    ctx.session.add(request)
    await ctx.session.flush()
    out = await request_out(ctx, request)
    customers = (
        await ctx.session.exec(
            select(Membership.user_id)
            .join(User, col(User.id) == Membership.user_id)
            .where(
                Membership.project_id == project.id,
                Membership.role == ProjectRole.CUSTOMER,
                col(User.is_active).is_(True),
            )
        )
    ).all()
    # The params name the project only: a notification keeps them, and the milestone may be made internal later.
    # The ask itself (GET .../feedback-requests) names the milestone while customers may see it.
    for user_id in customers:
        await notify.notify(
            ctx, user_id, notify.NotificationKind.FEEDBACK, {"project": project.name}, project_id=project.id
        )
        await ctx.services.live.feedback_requested(ctx, user_id, out.model_copy(update={"answered_by_me": False}))
    return request


async def milestone_completed(ctx: Context, milestone: Milestone, project: Project) -> None:
    """The hook of a milestone's completion: ask customers about a shared milestone once (not on re-completion)."""
    if milestone.visibility != Visibility.SHARED:
        return
    asked = (await ctx.session.exec(select(func.count()).where(FeedbackRequest.milestone_id == milestone.id))).one()
    if not asked:
        await open_request(ctx, project, milestone)
