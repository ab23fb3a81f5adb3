"""Marking a customer's comment, or a customer's reply in a request's history, as informal feedback (staff only;
rules: ``server/feedback/marks.py``)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field
from sqlmodel import select
from sqlmodel.sql.expression import SelectOfScalar

from server.api import api
from server.api.routing import ApiError
from server.board.rules import task_for
from server.context import Context
from server.db import utcnow
from server.feedback.marks import marks_of_request, marks_of_task
from server.feedback.rules import OTHER, THEMES
from server.models import Comment, FeedbackMark, OrgRole, Project, Request, RequestEvent, Task, User
from server.policy import Action, NotVisible, authorize
from server.schemas import In, Out


class FeedbackMarkIn(In):
    kind: Literal["praise", "concern", "change"] = Field(description="Praise, a concern, or a request for change.")
    theme: str = Field(
        max_length=40,
        description=f"One of {', '.join((*THEMES, OTHER))}.",
        json_schema_extra={"enum": [*THEMES, OTHER]},  # checked in the route, with a translatable reason
    )


class FeedbackMarkOut(Out):
    comment_id: int | None = Field(description="The marked comment; null for a request's history entry.")
    task_id: int | None = Field(description="The marked comment's task; null for a request's history entry.")
    request_event_id: int | None = Field(
        None, description="The marked entry of a request's history; null for a comment."
    )
    request_id: int | None = Field(None, description="The request of a marked history entry; null for a comment.")
    kind: str
    theme: str
    by_email: bool = Field(description="The comment or request reply came in as a reply by email.")
    marked_by_id: int | None
    created_at: dt.datetime


class FeedbackMarkList(Out):
    items: list[FeedbackMarkOut]


def _check_theme(body: FeedbackMarkIn) -> None:
    if body.theme not in THEMES and body.theme != OTHER:
        raise ApiError(
            422,
            "invalid",
            f"theme must be one of {', '.join((*THEMES, OTHER))}.",
            reason="theme",
            params={"field": "theme"},
        )


async def _customer_comment(ctx: Context) -> tuple[Comment, Task, Project]:
    """The comment, if the actor is staff who see it (404 if hidden, 403 for customers who see it)."""
    comment = await ctx.session.get(Comment, ctx.path_int("comment_id"))
    if comment is None:
        raise NotVisible("comment", ctx.path_int("comment_id"))
    task, project, _ = await task_for(ctx.session, ctx.actor, comment.task_id, Action.ITEM_READ)
    authorize(ctx.actor, Action.ITEM_READ, project, comment, parents=[task.visibility])
    authorize(ctx.actor, Action.TASK_UPDATE, project)  # staff only
    return comment, task, project


def _publish(ctx: Context, comment: Comment, out: FeedbackMarkOut | None) -> None:
    # The thread's staff stream only, and the staff KPIs only: customers never hear of a marking.
    event = {"type": "feedback.marked", "comment_id": comment.id, "mark": out.model_dump(mode="json") if out else None}
    ctx.services.live.staff_thread_event(ctx, comment.task_id, event)
    ctx.services.live.kpis_changed(ctx, comment.project_id, shared=False)


@api.route(
    "PUT",
    "/api/comments/{comment_id:int}/feedback",
    summary="Mark a customer's comment (or emailed reply) as feedback: praise, concern or change, with a theme "
    "(staff only; customers never see it)",
    tag="feedback",
    body=FeedbackMarkIn,
    response=FeedbackMarkOut,
    errors=(401, 403, 404, 409, 422),
)
async def mark_feedback(ctx: Context, body: FeedbackMarkIn) -> FeedbackMarkOut:
    comment, task, project = await _customer_comment(ctx)
    assert comment.id is not None and project.id is not None and task.id is not None
    _check_theme(body)
    author = await ctx.session.get(User, comment.author_id) if comment.author_id is not None else None
    if author is None or author.role != OrgRole.CUSTOMER or comment.deleted_at is not None:
        raise ApiError(409, "not_customer_comment", "Only a customer's comment can be marked as feedback.")
    new = FeedbackMark(comment_id=comment.id, project_id=project.id, kind=body.kind, theme=body.theme)
    mark = await _save_mark(ctx, _mark_of(comment.id), body, new)
    marks = {m.comment_id: by_email for m, by_email in await marks_of_task(ctx.session, task.id)}
    out = FeedbackMarkOut(
        comment_id=comment.id,
        task_id=task.id,
        kind=mark.kind,
        theme=mark.theme,
        by_email=marks.get(comment.id, False),
        marked_by_id=mark.marked_by_id,
        created_at=mark.created_at,
    )
    _publish(ctx, comment, out)
    return out


async def _save_mark(
    ctx: Context, existing: SelectOfScalar[FeedbackMark], body: FeedbackMarkIn, new: FeedbackMark
) -> FeedbackMark:
    """The item's mark, changed to ``body`` by the acting staff member now; ``new`` when the item had none."""
    mark = (await ctx.session.exec(existing)).first() or new
    mark.kind, mark.theme = body.kind, body.theme
    mark.marked_by_id, mark.created_at = ctx.actor.user_id, utcnow()
    ctx.session.add(mark)
    await ctx.session.flush()
    return mark


def _mark_of(comment_id: int) -> SelectOfScalar[FeedbackMark]:
    return select(FeedbackMark).where(FeedbackMark.comment_id == comment_id)


@api.route(
    "DELETE",
    "/api/comments/{comment_id:int}/feedback",
    summary="Unmark a comment as feedback (staff only)",
    tag="feedback",
    status=204,
    errors=(401, 403, 404),
)
async def unmark_feedback(ctx: Context) -> None:
    comment, _, _ = await _customer_comment(ctx)
    assert comment.id is not None
    mark = (await ctx.session.exec(_mark_of(comment.id))).first()
    if mark is not None:
        await ctx.session.delete(mark)
        _publish(ctx, comment, None)


@api.route(
    "GET",
    "/api/tasks/{task_id:int}/feedback-marks",
    summary="The comments of a task's thread marked as feedback (staff only)",
    tag="feedback",
    response=FeedbackMarkList,
    errors=(401, 403, 404),
)
async def task_feedback_marks(ctx: Context) -> FeedbackMarkList:
    task, project, _ = await task_for(ctx.session, ctx.actor, ctx.path_int("task_id"), Action.ITEM_READ)
    authorize(ctx.actor, Action.TASK_UPDATE, project)
    assert task.id is not None
    return FeedbackMarkList(
        items=[
            FeedbackMarkOut(
                comment_id=m.comment_id,
                task_id=task.id,
                kind=m.kind,
                theme=m.theme,
                by_email=by_email,
                marked_by_id=m.marked_by_id,
                created_at=m.created_at,
            )
            for m, by_email in await marks_of_task(ctx.session, task.id)
        ]
    )


# -- a customer's reply in a request's history ---------------------------------------------------------------------


async def _staff_request(ctx: Context, request_id: int | None) -> tuple[Request, Project]:
    """The request, if the actor is staff who see its project. Customers are told "not found" whatever they see: a
    request's marks are no business of theirs, and a different answer would tell them marking exists."""
    request = await ctx.session.get(Request, request_id) if request_id is not None else None
    project = await ctx.session.get(Project, request.project_id) if request is not None else None
    if request is None or project is None or not ctx.actor.is_staff:
        raise NotVisible("request", request_id)
    authorize(ctx.actor, Action.PROJECT_READ, project)
    authorize(ctx.actor, Action.TASK_UPDATE, project)
    return request, project


async def _customer_event(ctx: Context) -> tuple[RequestEvent, Request, Project]:
    event_id = ctx.path_int("event_id")
    event = await ctx.session.get(RequestEvent, event_id)
    if event is None or not ctx.actor.is_staff:
        raise NotVisible("request_event", event_id)
    request, project = await _staff_request(ctx, event.request_id)
    return event, request, project


def _event_mark_out(mark: FeedbackMark, event: RequestEvent, by_email: bool) -> FeedbackMarkOut:
    return FeedbackMarkOut(
        comment_id=None,
        task_id=None,
        request_event_id=event.id,
        request_id=event.request_id,
        kind=mark.kind,
        theme=mark.theme,
        by_email=by_email,
        marked_by_id=mark.marked_by_id,
        created_at=mark.created_at,
    )


def _publish_event_mark(ctx: Context, event: RequestEvent, project_id: int, out: FeedbackMarkOut | None) -> None:
    # The project's staff stream only, and the staff KPIs only: customers never hear of a marking.
    payload = {
        "type": "feedback.marked",
        "request_id": event.request_id,
        "request_event_id": event.id,
        "mark": out.model_dump(mode="json") if out else None,
    }
    ctx.services.live.staff_project_event(ctx, project_id, payload)
    ctx.services.live.kpis_changed(ctx, project_id, shared=False)


def _mark_of_event(event_id: int) -> SelectOfScalar[FeedbackMark]:
    return select(FeedbackMark).where(FeedbackMark.request_event_id == event_id)


@api.route(
    "PUT",
    "/api/request-events/{event_id:int}/feedback",
    summary="Mark a customer's reply in a request's history (in the portal or by email) as feedback: praise, concern "
    "or change, with a theme (staff only; customers never see it)",
    tag="feedback",
    body=FeedbackMarkIn,
    response=FeedbackMarkOut,
    errors=(401, 403, 404, 409, 422),
)
async def mark_request_event(ctx: Context, body: FeedbackMarkIn) -> FeedbackMarkOut:
    event, _, project = await _customer_event(ctx)
    assert event.id is not None and project.id is not None
    _check_theme(body)
    author = await ctx.session.get(User, event.actor_id) if event.actor_id is not None else None
    if author is None or author.role != OrgRole.CUSTOMER or not event.text.strip():
        raise ApiError(409, "not_customer_reply", "Only a customer's reply on a request can be marked as feedback.")
    new = FeedbackMark(request_event_id=event.id, project_id=project.id, kind=body.kind, theme=body.theme)
    mark = await _save_mark(ctx, _mark_of_event(event.id), body, new)
    by_email = {m.request_event_id: e for m, _, e in await marks_of_request(ctx.session, event.request_id)}
    out = _event_mark_out(mark, event, by_email.get(event.id, False))
    _publish_event_mark(ctx, event, project.id, out)
    return out


@api.route(
    "DELETE",
    "/api/request-events/{event_id:int}/feedback",
    summary="Unmark a request's history entry as feedback (staff only)",
    tag="feedback",
    status=204,
    errors=(401, 403, 404),
)
async def unmark_request_event(ctx: Context) -> None:
    event, _, project = await _customer_event(ctx)
    assert event.id is not None and project.id is not None
    mark = (await ctx.session.exec(_mark_of_event(event.id))).first()
    if mark is not None:
        await ctx.session.delete(mark)
        _publish_event_mark(ctx, event, project.id, None)


@api.route(
    "GET",
    "/api/requests/{request_id:int}/feedback-marks",
    summary="The entries of a request's history marked as feedback (staff only)",
    tag="feedback",
    response=FeedbackMarkList,
    errors=(401, 403, 404),
)
async def request_feedback_marks(ctx: Context) -> FeedbackMarkList:
    request, _ = await _staff_request(ctx, ctx.path_int("request_id"))
    assert request.id is not None
    marks = await marks_of_request(ctx.session, request.id)
    return FeedbackMarkList(items=[_event_mark_out(mark, event, by_email) for mark, event, by_email in marks])
