"""A project's activity feed and "since your last visit" (rules: ``server/activity/rules.py``)."""

from __future__ import annotations

import datetime as dt

from pydantic import ConfigDict, Field

from server.activity import rules as activity
from server.activity.rules import ActivityOut
from server.api import api
from server.board.rules import project_for
from server.context import Context
from server.policy import Action
from server.schemas import In, Out


class ActivityQuery(In):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(50, ge=1, le=200)
    before: int | None = Field(None, ge=1, le=2**53, description="Only events with a smaller id (the next page).")


class ActivityPage(Out):
    items: list[ActivityOut] = Field(description="Newest first; for customers shared items only.")
    last_visit_at: dt.datetime | None = Field(description="When the caller last marked the project visited.")
    next_before: int | None = Field(description="Pass as `before` for older events; null at the end.")


class VisitOut(Out):
    visited_at: dt.datetime
    previous_visit_at: dt.datetime | None


@api.route(
    "GET",
    "/api/projects/{project_id:int}/activity",
    summary="The project's activity, newest first (customers: shared items only), and the caller's last visit",
    tag="projects",
    query=ActivityQuery,
    response=ActivityPage,
    errors=(401, 404, 422),
)
async def project_activity(ctx: Context, query: ActivityQuery) -> ActivityPage:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.PROJECT_READ)
    assert project.id is not None
    items = await activity.events_for(
        ctx.session, ctx.actor, [project.id], before_id=query.before, limit=query.limit + 1
    )
    more = len(items) > query.limit
    items = items[: query.limit]
    return ActivityPage(
        items=items,
        last_visit_at=await activity.last_visit(ctx.session, ctx.actor.user_id, project),
        next_before=items[-1].id if more and items else None,
    )


@api.route(
    "PUT",
    "/api/projects/{project_id:int}/visit",
    summary="Mark the project as seen now: later activity is new since this visit",
    tag="projects",
    response=VisitOut,
    errors=(401, 404),
)
async def mark_visited(ctx: Context) -> VisitOut:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.PROJECT_READ)
    now, previous = await activity.mark_visited(ctx.session, ctx.actor.user_id, project)
    return VisitOut(visited_at=now, previous_visit_at=previous)
