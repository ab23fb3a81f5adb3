"""Customer feedback: requests (at a shared milestone's completion, or on demand), answers, the staff view with
themes and the feedback metric, and action items made from themes. Rules: ``server/feedback/rules.py``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import Field, StringConstraints
from sqlmodel import col, select

from server.activity import rules as activity
from server.api import api
from server.api.routing import ApiError
from server.board.rules import check_wip_limit, project_for, task_out
from server.context import Context
from server.feedback.marks import load_marks
from server.feedback.requests import FeedbackRequestOut, open_request, request_out
from server.feedback.rules import OTHER, THEMES, ActionOut, FeedbackSummary, load_feedback, summarize
from server.models import (
    FeedbackAction,
    FeedbackAnswer,
    FeedbackRequest,
    Milestone,
    Project,
    ProjectRole,
    Status,
    Task,
    Visibility,
)
from server.policy import Action, Forbidden, NotFound, authorize, visible_items
from server.reports.kpis import weights_of
from server.schemas import Id, In, Out, Title
from server.waiting import rules as waiting

Answer = Annotated[str, StringConstraints(max_length=2000)]


class FeedbackRequestIn(In):
    milestone_id: Id | None = Field(None, description="A shared milestone the question is about.")


class FeedbackRequestList(Out):
    items: list[FeedbackRequestOut]


class AnswerIn(In):
    score: int = Field(ge=1, le=5, description="How well were your goals supported? 1 (poorly) to 5 (very well)")
    helped: Answer = Field("", description="What helped most?")
    hindered: Answer = Field("", description="What hindered most?")


class AnswerOut(Out):
    id: int
    request_id: int
    project_id: int
    milestone_id: int | None
    score: int
    helped: str
    hindered: str
    created_at: dt.datetime


class ActionIn(In):
    theme: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,40}$")] = Field(
        description=f"One of {', '.join((*THEMES, OTHER))}.",
        json_schema_extra={"enum": [*THEMES, OTHER]},  # checked in the route too, as marks do
    )
    title: Title | None = Field(None, description="Defaults to 'Feedback: <theme>'.")
    visibility: Visibility = Visibility.INTERNAL


@api.route(
    "GET",
    "/api/projects/{project_id:int}/feedback/requests",
    summary="The project's feedback requests, newest first",
    tag="feedback",
    response=FeedbackRequestList,
    errors=(401, 404),
)
async def list_requests(ctx: Context) -> FeedbackRequestList:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.PROJECT_READ)
    rows = (
        await ctx.session.exec(
            select(FeedbackRequest)
            .where(
                FeedbackRequest.project_id == project.id,
                visible_items(ctx.actor, FeedbackRequest),
            )
            .order_by(col(FeedbackRequest.id).desc())
            .limit(200)
        )
    ).all()
    return FeedbackRequestList(items=[await request_out(ctx, r) for r in rows])


@api.route(
    "POST",
    "/api/projects/{project_id:int}/feedback/requests",
    summary="Ask the project's customers for feedback now",
    tag="feedback",
    body=FeedbackRequestIn,
    response=FeedbackRequestOut,
    status=201,
    errors=(401, 403, 404, 422),
)
async def create_request(ctx: Context, body: FeedbackRequestIn) -> FeedbackRequestOut:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.MILESTONE_MANAGE)
    milestone = None
    if body.milestone_id is not None:
        milestone = await ctx.session.get(Milestone, body.milestone_id)
        if milestone is None or milestone.project_id != project.id:
            raise ApiError(
                422, "invalid", "milestone_id names no milestone of this project.", reason="unknown_milestone"
            )
    request = await open_request(ctx, project, milestone)
    return await request_out(ctx, request)


@api.route(
    "POST",
    "/api/feedback/requests/{request_id:int}/answers",
    summary="Answer a feedback request (the project's customer members, once each)",
    tag="feedback",
    body=AnswerIn,
    response=AnswerOut,
    status=201,
    errors=(401, 403, 404, 409, 422),
)
async def answer(ctx: Context, body: AnswerIn) -> AnswerOut:
    request = await ctx.session.get(FeedbackRequest, ctx.path_int("request_id"))
    if request is None:
        raise NotFound
    project = await ctx.session.get(Project, request.project_id)
    if project is None:
        raise NotFound
    milestone = await ctx.session.get(Milestone, request.milestone_id) if request.milestone_id else None
    # A request about a milestone made internal since is gone for customers: it takes no answers.
    authorize(
        ctx.actor,
        Action.PROJECT_READ,
        project,
        request,
        parents=(milestone.visibility if milestone is not None else None,),
    )
    if ctx.actor.memberships.get(request.project_id) != ProjectRole.CUSTOMER:
        raise Forbidden
    if request.closed_at is not None:
        raise ApiError(409, "closed", "This feedback request is closed.")
    mine = FeedbackAnswer.request_id == request.id, FeedbackAnswer.user_id == ctx.actor.user_id
    if (await ctx.session.exec(select(FeedbackAnswer.id).where(*mine))).first() is not None:
        raise ApiError(409, "already_answered", "You have answered this request.")
    assert request.id is not None
    row = FeedbackAnswer(
        request_id=request.id,
        project_id=request.project_id,
        milestone_id=request.milestone_id,
        user_id=ctx.actor.user_id,
        score=body.score,
        helped=body.helped,
        hindered=body.hindered,
    )
    ctx.session.add(row)
    await ctx.session.flush()
    ctx.services.live.kpis_changed(ctx, request.project_id)
    waiting.hint(ctx, [ctx.actor.user_id])
    return AnswerOut.model_validate(row)


@api.route(
    "GET",
    "/api/projects/{project_id:int}/feedback",
    summary="Scores, trend, themes with survey answers and marked comments, action items and the feedback metric "
    "(staff only)",
    tag="feedback",
    response=FeedbackSummary,
    errors=(401, 403, 404),
)
async def feedback_view(ctx: Context) -> FeedbackSummary:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.MILESTONE_MANAGE)
    assert project.id is not None
    answers, actions = await load_feedback(ctx.session, [project.id])
    marks = await load_marks(ctx.session, [project.id])
    weights = weights_of(ctx.services.settings.feedback_weights)
    return summarize(answers[project.id], actions[project.id], weights, marks[project.id])


@api.route(
    "POST",
    "/api/projects/{project_id:int}/feedback/actions",
    summary="Turn a feedback theme into an action item (a task in the first status)",
    tag="feedback",
    body=ActionIn,
    response=ActionOut,
    status=201,
    errors=(401, 403, 404, 409, 422),
)
async def create_action(ctx: Context, body: ActionIn) -> ActionOut:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.TASK_CREATE)
    assert project.id is not None
    if body.theme not in THEMES and body.theme != OTHER:
        raise ApiError(422, "invalid", f"theme must be one of {', '.join((*THEMES, OTHER))}.")
    first = (
        await ctx.session.exec(
            select(Status).where(Status.project_id == project.id).order_by(col(Status.position), col(Status.id))
        )
    ).first()
    if first is None or first.id is None:
        raise ApiError(409, "no_workflow", "The project has no statuses.")
    await check_wip_limit(ctx.session, ctx.actor, first)
    title = body.title or f"Feedback: {body.theme}"
    task = Task(
        project_id=project.id,
        title=title,
        status_id=first.id,
        visibility=body.visibility,
        created_by_id=ctx.actor.user_id,
    )
    ctx.session.add(task)
    await ctx.session.flush()
    assert task.id is not None
    action = FeedbackAction(project_id=project.id, theme=body.theme, task_id=task.id, created_by_id=ctx.actor.user_id)
    ctx.session.add(action)
    await ctx.session.flush()
    assert action.id is not None
    await ctx.services.live.task_changed(ctx, await task_out(ctx, task), previous_visibility=None)
    await activity.task_changed(ctx, task, None)
    return ActionOut(id=action.id, theme=body.theme, task_id=task.id, title=title, done=False)
