"""Workflow templates: an organization's reusable sets of statuses, and applying one (or another project's
workflow) to a live project.

Applying keeps statuses whose names match (updating category, colour, order and WIP limit), adds the new ones and
removes the rest. A removed status that holds tasks needs a destination (``moves``: status id -> a status name of
the new workflow); without one nothing changes and the answer lists what needs a destination. Everything happens
in one transaction and every connected board is told (``workflow.changed``).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy import func, update
from sqlmodel import col, select

from server.api import api
from server.api.routing import ApiError
from server.board.routes.workflow import MAX_STATUSES, StatusList, project_statuses
from server.board.rules import project_for
from server.context import Context
from server.db import utcnow
from server.models import Project, Status, StatusCategory, Task, WorkflowTemplate
from server.policy import Action, NotFound, Scope, authorize
from server.schemas import Colour, Id, In, Name, Out, exactly_one_of
from server.waiting import rules as waiting


class StatusSpec(In):
    name: Annotated[str, StringConstraints(min_length=1, max_length=80)]
    category: StatusCategory
    colour: Colour
    wip_limit: int | None = Field(None, ge=1, le=10_000)
    waits_on_customer: bool = False


def _unique_names(statuses: list[StatusSpec]) -> list[StatusSpec]:
    names = [s.name.casefold() for s in statuses]
    if len(set(names)) != len(names):
        raise ValueError("status names must be unique")
    return statuses


class TemplateIn(In):
    model_config = ConfigDict(**In.model_config, json_schema_extra=exactly_one_of("statuses", "from_project_id"))

    name: Name
    statuses: list[StatusSpec] | None = Field(None, min_length=1, max_length=MAX_STATUSES)
    from_project_id: Id | None = Field(None, description="Copy this project's workflow instead of `statuses`.")

    @model_validator(mode="after")
    def _one_source(self) -> TemplateIn:
        if (self.statuses is None) == (self.from_project_id is None):
            raise ValueError("give either statuses or from_project_id")
        if self.statuses is not None:
            _unique_names(self.statuses)
        return self


class TemplateOut(Out):
    id: int
    name: str
    statuses: list[StatusSpec]
    created_at: dt.datetime


class TemplateList(Out):
    items: list[TemplateOut]


class ApplyIn(In):
    model_config = ConfigDict(**In.model_config, json_schema_extra=exactly_one_of("template_id", "from_project_id"))

    template_id: Id | None = None
    from_project_id: Id | None = None
    moves: dict[str, Annotated[str, StringConstraints(min_length=1, max_length=80)]] = Field(
        default_factory=dict,
        description="For each removed status holding tasks: its id -> the name of the status they move to.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> ApplyIn:
        if (self.template_id is None) == (self.from_project_id is None):
            raise ValueError("give either template_id or from_project_id")
        return self


def _template_out(template: WorkflowTemplate) -> TemplateOut:
    return TemplateOut.model_validate({**template.model_dump(), "statuses": json.loads(template.statuses)})


async def _project_specs(ctx: Context, project_id: int) -> list[StatusSpec]:
    project = await project_for(ctx.session, ctx.actor, project_id, Action.PROJECT_READ)
    authorize(ctx.actor, Action.TEMPLATE_READ)
    assert project.id is not None
    return [
        StatusSpec(
            name=s.name,
            category=s.category,
            colour=s.colour,
            wip_limit=s.wip_limit,
            waits_on_customer=s.waits_on_customer,
        )
        for s in await project_statuses(ctx, project.id)
    ]


@api.route(
    "GET",
    "/api/workflow-templates",
    summary="The organization's workflow templates (staff)",
    tag="workflow",
    response=TemplateList,
    errors=(401, 403),
)
async def list_templates(ctx: Context) -> TemplateList:
    authorize(ctx.actor, Action.TEMPLATE_READ)
    rows = await ctx.session.exec(
        select(WorkflowTemplate)
        .where(WorkflowTemplate.organization_id == ctx.actor.organization_id)
        .order_by(col(WorkflowTemplate.name), col(WorkflowTemplate.id))
    )
    return TemplateList(items=[_template_out(t) for t in rows.all()])


@api.route(
    "POST",
    "/api/workflow-templates",
    summary="Save a workflow template, from statuses or copied from a project (admins)",
    tag="workflow",
    body=TemplateIn,
    response=TemplateOut,
    status=201,
    errors=(401, 403, 404, 422),
    scope=Scope.ADMIN,
)
async def create_template(ctx: Context, body: TemplateIn) -> TemplateOut:
    authorize(ctx.actor, Action.TEMPLATE_MANAGE)
    specs = body.statuses if body.from_project_id is None else await _project_specs(ctx, body.from_project_id)
    assert specs is not None
    template = WorkflowTemplate(
        organization_id=ctx.actor.organization_id,
        name=body.name,
        statuses=json.dumps([s.model_dump(mode="json") for s in specs]),
    )
    ctx.session.add(template)
    await ctx.session.flush()
    return _template_out(template)


@api.route(
    "DELETE",
    "/api/workflow-templates/{template_id:int}",
    summary="Delete a workflow template (projects made from it keep their statuses)",
    tag="workflow",
    status=204,
    errors=(401, 403, 404),
    scope=Scope.ADMIN,
)
async def delete_template(ctx: Context) -> None:
    template = await ctx.session.get(WorkflowTemplate, ctx.path_int("template_id"))
    if template is None or template.organization_id != ctx.actor.organization_id:
        raise NotFound
    authorize(ctx.actor, Action.TEMPLATE_MANAGE)
    await ctx.session.delete(template)


async def _source_specs(ctx: Context, body: ApplyIn) -> list[StatusSpec]:
    if body.from_project_id is not None:
        return await _project_specs(ctx, body.from_project_id)
    template = await ctx.session.get(WorkflowTemplate, body.template_id)
    if template is None or template.organization_id != ctx.actor.organization_id:
        raise ApiError(422, "invalid", "template_id names no template of your organization.", reason="unknown_template")
    return _template_out(template).statuses


@api.route(
    "POST",
    "/api/projects/{project_id:int}/workflow/apply",
    summary="Replace the project's workflow with a template's or another project's, moving tasks as told",
    tag="workflow",
    body=ApplyIn,
    response=StatusList,
    errors=(401, 403, 404, 409, 422),
)
async def apply_workflow(ctx: Context, body: ApplyIn) -> StatusList:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.WORKFLOW_MANAGE)
    assert project.id is not None
    specs = await _source_specs(ctx, body)
    if len({s.name.casefold() for s in specs}) != len(specs):
        raise ApiError(
            422, "invalid", "The source workflow has two statuses of the same name.", reason="duplicate_status"
        )
    moved = await _replace_statuses(ctx, project, specs, body.moves)
    await ctx.services.live.workflow_changed(ctx, project.id, moved_tasks=moved)
    await waiting.hint_project(ctx, project.id)
    return StatusList(items=await project_statuses(ctx, project.id))


async def _replace_statuses(ctx: Context, project: Project, specs: list[StatusSpec], moves: dict[str, str]) -> bool:
    current = list((await ctx.session.exec(select(Status).where(Status.project_id == project.id))).all())
    by_name = {s.name.casefold(): s for s in current}
    wanted = {spec.name.casefold() for spec in specs}
    removed = [s for s in current if s.name.casefold() not in wanted]
    counts: dict[int | None, int] = dict(
        (
            await ctx.session.exec(
                select(Task.status_id, func.count())
                .where(col(Task.status_id).in_([s.id for s in removed]))
                .group_by(col(Task.status_id))
            )
        ).all()
    )
    missing = [
        {"field": f"moves.{s.id}", "message": f"{s.name}: {counts[s.id]} tasks", "type": "status_in_use"}
        for s in removed
        if counts.get(s.id) and moves.get(str(s.id), "").casefold() not in wanted
    ]
    if missing:
        raise ApiError(409, "status_in_use", "Say where the tasks of removed statuses go (moves).", missing)
    kept: dict[str, Status] = {}
    for position, spec in enumerate(specs):
        assert project.id is not None
        status = by_name.get(spec.name.casefold()) or Status(
            project_id=project.id, name=spec.name, category=spec.category, colour=spec.colour
        )
        status.name, status.category, status.colour = spec.name, spec.category, spec.colour
        status.wip_limit, status.position = spec.wip_limit, position
        status.waits_on_customer = spec.waits_on_customer
        ctx.session.add(status)
        kept[spec.name.casefold()] = status
    await ctx.session.flush()
    for status in removed:
        if counts.get(status.id):
            target = kept[moves[str(status.id)].casefold()]
            await ctx.session.exec(
                update(Task)
                .where(col(Task.status_id) == status.id)
                .values(status_id=target.id, version=Task.version + 1, updated_at=utcnow())
            )
        await ctx.session.delete(status)
    return any(counts.values())
