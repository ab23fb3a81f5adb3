"""Clients and projects."""

from __future__ import annotations

import json

from sqlmodel import col, select

from server.api import api
from server.api.routing import ApiError
from server.audit.log import AuditAction, record
from server.board.rules import default_statuses, project_for, project_summaries
from server.context import Context
from server.db import utcnow
from server.files.rules import purge_blobs_after_commit
from server.models import Client, Project, Status, StoredFile, WorkflowTemplate
from server.policy import Action, NotFound, Scope, authorize, visible_projects
from server.schemas import (
    ClientIn,
    ClientOut,
    ClientPatch,
    Page,
    PageQuery,
    ProjectIn,
    ProjectOut,
    ProjectPatch,
    ProjectQuery,
)


def project_out(ctx: Context, project: Project, client_name: str) -> ProjectOut:
    assert project.id is not None
    return ProjectOut(
        id=project.id,
        name=project.name,
        description=project.description,
        client_id=project.client_id,
        client_name=client_name,
        archived=project.archived,
        my_role=ctx.actor.memberships.get(project.id),
        created_at=project.created_at,
        updated_at=project.updated_at,
    )


@api.route(
    "GET",
    "/api/clients",
    summary="List the organization's clients (staff)",
    tag="clients",
    query=PageQuery,
    response=Page[ClientOut],
    errors=(401, 403),
)
async def list_clients(ctx: Context, query: PageQuery) -> Page[ClientOut]:
    authorize(ctx.actor, Action.CLIENT_READ)
    stmt = select(Client).where(Client.organization_id == ctx.actor.organization_id)
    if query.cursor:
        stmt = stmt.where(col(Client.id) > int(query.cursor))
    rows = (await ctx.session.exec(stmt.order_by(col(Client.id)).limit(query.limit + 1))).all()
    items = [ClientOut.model_validate(c) for c in rows[: query.limit]]
    return Page[ClientOut](items=items, next_cursor=str(items[-1].id) if len(rows) > query.limit else None)


@api.route(
    "POST",
    "/api/clients",
    summary="Add a client company (admin)",
    tag="clients",
    body=ClientIn,
    response=ClientOut,
    status=201,
    errors=(401, 403, 422),
    scope=Scope.ADMIN,
)
async def create_client(ctx: Context, body: ClientIn) -> ClientOut:
    authorize(ctx.actor, Action.CLIENT_MANAGE)
    client = Client(organization_id=ctx.actor.organization_id, name=body.name)
    ctx.session.add(client)
    await ctx.session.flush()
    return ClientOut.model_validate(client)


@api.route(
    "PATCH",
    "/api/clients/{client_id:int}",
    summary="Rename a client company (admin)",
    tag="clients",
    body=ClientPatch,
    response=ClientOut,
    errors=(401, 403, 404, 422),
    scope=Scope.ADMIN,
)
async def rename_client(ctx: Context, body: ClientPatch) -> ClientOut:
    client = await ctx.session.get(Client, ctx.path_int("client_id"))
    if client is None or client.organization_id != ctx.actor.organization_id:
        raise NotFound
    authorize(ctx.actor, Action.CLIENT_MANAGE)
    client.name = body.name
    ctx.session.add(client)
    return ClientOut.model_validate(client)


@api.route(
    "GET",
    "/api/projects",
    summary="List the projects I can see",
    tag="projects",
    query=ProjectQuery,
    response=Page[ProjectOut],
    errors=(401,),
)
async def list_projects(ctx: Context, query: ProjectQuery) -> Page[ProjectOut]:
    stmt = (
        select(Project, Client.name)
        .join(Client, col(Client.id) == Project.client_id)
        .where(visible_projects(ctx.actor))
    )
    if query.client_id is not None:
        stmt = stmt.where(Project.client_id == query.client_id)
    if query.archived is not None:
        stmt = stmt.where(Project.archived == query.archived)
    if query.cursor:
        stmt = stmt.where(col(Project.id) > int(query.cursor))
    rows = (await ctx.session.exec(stmt.order_by(col(Project.id)).limit(query.limit + 1))).all()
    items = [project_out(ctx, p, name) for p, name in rows[: query.limit]]
    summaries = await project_summaries(
        ctx.session, ctx.actor, [item.id for item in items], ctx.services.settings.due_soon_days
    )
    for item in items:
        item.summary = summaries[item.id]
    return Page[ProjectOut](items=items, next_cursor=str(items[-1].id) if len(rows) > query.limit else None)


@api.route(
    "POST",
    "/api/projects",
    summary="Create a project with the default workflow (admin)",
    tag="projects",
    body=ProjectIn,
    response=ProjectOut,
    status=201,
    errors=(401, 403, 422),
    scope=Scope.ADMIN,
)
async def create_project(ctx: Context, body: ProjectIn) -> ProjectOut:
    authorize(ctx.actor, Action.PROJECT_CREATE)
    client = await ctx.session.get(Client, body.client_id)
    if client is None or client.id is None or client.organization_id != ctx.actor.organization_id:
        raise _invalid_field("client_id", "Choose a client of your organization.")
    specs = None
    if body.template_id is not None:
        template = await ctx.session.get(WorkflowTemplate, body.template_id)
        if template is None or template.organization_id != ctx.actor.organization_id:
            raise _invalid_field("template_id", "Choose a workflow template of your organization.")
        specs = json.loads(template.statuses)
    project = Project(
        organization_id=ctx.actor.organization_id, client_id=client.id, name=body.name, description=body.description
    )
    ctx.session.add(project)
    await ctx.session.flush()
    assert project.id is not None
    if specs is None:
        ctx.session.add_all(default_statuses(project.id))
    else:
        ctx.session.add_all(
            Status(
                project_id=project.id,
                name=spec["name"],
                category=spec["category"],
                colour=spec["colour"],
                wip_limit=spec.get("wip_limit"),
                position=position,
            )
            for position, spec in enumerate(specs)
        )
    return project_out(ctx, project, client.name)


def _invalid_field(field: str, message: str) -> ApiError:
    return ApiError(422, "invalid", message, [{"field": field, "message": message, "type": "invalid"}], reason="fields")


@api.route(
    "GET", "/api/projects/{project_id:int}", summary="A project", tag="projects", response=ProjectOut, errors=(401, 404)
)
async def get_project(ctx: Context) -> ProjectOut:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.PROJECT_READ)
    client = await ctx.session.get(Client, project.client_id)
    assert client is not None
    return project_out(ctx, project, client.name)


@api.route(
    "PATCH",
    "/api/projects/{project_id:int}",
    summary="Rename, describe or archive a project",
    tag="projects",
    body=ProjectPatch,
    response=ProjectOut,
    errors=(401, 403, 404, 422),
)
async def update_project(ctx: Context, body: ProjectPatch) -> ProjectOut:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.PROJECT_UPDATE)
    for field, value in body.model_dump(exclude_unset=True).items():
        setattr(project, field, value)
    project.updated_at = utcnow()
    ctx.session.add(project)
    client = await ctx.session.get(Client, project.client_id)
    assert client is not None
    out = project_out(ctx, project, client.name)
    await ctx.services.live.project_changed(ctx, out)
    return out


@api.route(
    "DELETE",
    "/api/projects/{project_id:int}",
    summary="Delete a project and everything in it (admin)",
    tag="projects",
    status=204,
    errors=(401, 403, 404),
    scope=Scope.ADMIN,
)
async def delete_project(ctx: Context) -> None:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.PROJECT_DELETE)
    project_id = project.id
    assert project_id is not None
    await purge_blobs_after_commit(ctx, col(StoredFile.project_id) == project_id)
    await ctx.session.delete(project)
    record(ctx, AuditAction.PROJECT_DELETED, "project", project_id, details={"name": project.name})
    await ctx.services.live.project_deleted(ctx, project_id)
