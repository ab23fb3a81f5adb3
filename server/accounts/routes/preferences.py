"""Settings people choose: what a project's customers may do, and how each user wants notifications mailed."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from server.api import api
from server.audit.log import AuditAction, record
from server.board.rules import project_for
from server.context import Context
from server.db import utcnow
from server.live.control import AccessChanged, Subject
from server.models import EmailCadence, NotificationPreference, ProjectSettings
from server.policy import Action
from server.schemas import In, Out, omittable


class ProjectSettingsOut(Out):
    project_id: int
    customer_comment: bool
    customer_requests: bool
    customer_upload: bool
    customer_edit_notes: bool
    customer_move_own: bool


class ProjectSettingsPatch(In):
    customer_comment: bool | None = omittable()
    customer_requests: bool | None = omittable()
    customer_upload: bool | None = omittable()
    customer_edit_notes: bool | None = omittable()
    customer_move_own: bool | None = omittable()


class PreferencesOut(Out):
    mentions: EmailCadence
    others: EmailCadence
    progress: Literal["daily", "weekly", "off"] = Field(
        description="The progress digest (server/inbox/progress_digest.py): daily, weekly (the default) or off."
    )


class PreferencesPatch(In):
    mentions: EmailCadence | None = omittable()
    others: Literal["hourly", "daily", "off"] | None = omittable()
    progress: Literal["daily", "weekly", "off"] | None = omittable()


@api.route(
    "GET",
    "/api/projects/{project_id:int}/settings",
    summary="What the project's customers may do",
    tag="projects",
    response=ProjectSettingsOut,
    errors=(401, 404),
)
async def get_project_settings(ctx: Context) -> ProjectSettingsOut:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.PROJECT_READ)
    assert project.id is not None
    settings = await ctx.session.get(ProjectSettings, project.id) or ProjectSettings(project_id=project.id)
    return ProjectSettingsOut.model_validate(settings)


@api.route(
    "PATCH",
    "/api/projects/{project_id:int}/settings",
    summary="Turn what customers may do on or off (comment, file requests, upload, edit notes, move their tasks)",
    tag="projects",
    body=ProjectSettingsPatch,
    response=ProjectSettingsOut,
    errors=(401, 403, 404, 422),
)
async def update_project_settings(ctx: Context, body: ProjectSettingsPatch) -> ProjectSettingsOut:
    project = await project_for(ctx.session, ctx.actor, ctx.path_int("project_id"), Action.SETTINGS_MANAGE)
    project_id = project.id
    assert project_id is not None
    settings = await ctx.session.get(ProjectSettings, project_id) or ProjectSettings(project_id=project_id)
    changes = body.model_dump(exclude_unset=True)
    for field, value in changes.items():
        setattr(settings, field, value)
    settings.updated_at = utcnow()
    record(ctx, AuditAction.PROJECT_SETTINGS_CHANGED, "project", project_id, details=changes)
    ctx.session.add(settings)
    out = ProjectSettingsOut.model_validate(settings)
    await ctx.services.live.settings_changed(ctx, project_id, out)
    # Open note sockets re-check whether their customers may still edit.
    ctx.services.live.access_changed(ctx, AccessChanged(Subject.PROJECT, project_id))
    return out


@api.route(
    "GET",
    "/api/me/notification-preferences",
    summary="How my notifications are mailed",
    tag="accounts",
    response=PreferencesOut,
    errors=(401,),
)
async def get_preferences(ctx: Context) -> PreferencesOut:
    preference = await ctx.session.get(NotificationPreference, ctx.actor.user_id)
    return PreferencesOut.model_validate(preference or NotificationPreference(user_id=ctx.actor.user_id))


@api.route(
    "PATCH",
    "/api/me/notification-preferences",
    summary="Mentions: immediately, hourly, daily or off; everything else: hourly, daily or off; progress digest: "
    "daily, weekly or off",
    tag="accounts",
    body=PreferencesPatch,
    response=PreferencesOut,
    errors=(401, 422),
)
async def update_preferences(ctx: Context, body: PreferencesPatch) -> PreferencesOut:
    preference = await ctx.session.get(NotificationPreference, ctx.actor.user_id) or NotificationPreference(
        user_id=ctx.actor.user_id
    )
    for field, value in body.model_dump(exclude_unset=True).items():
        setattr(preference, field, value)
    ctx.session.add(preference)
    return PreferencesOut.model_validate(preference)
