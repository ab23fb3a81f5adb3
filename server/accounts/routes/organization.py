"""The organization's own settings: whether its staff may sign in by a link by email (customers always may;
``server/accounts/routes/sign_in_link.py``). Staff read them; owners change them, audited."""

from __future__ import annotations

from pydantic import Field

from server.api import api
from server.audit.log import AuditAction, record
from server.context import Context
from server.models import Organization
from server.policy import Action, authorize
from server.schemas import In, Out, omittable


class OrganizationSettingsOut(Out):
    allow_staff_link_sign_in: bool = Field(description="Staff may ask for a sign-in link by email, as customers may.")


class OrganizationSettingsPatch(In):
    allow_staff_link_sign_in: bool | None = omittable()


async def _organization(ctx: Context, action: Action) -> Organization:
    authorize(ctx.actor, action)
    organization = await ctx.session.get(Organization, ctx.actor.organization_id)
    assert organization is not None
    return organization


@api.route(
    "GET",
    "/api/organization/settings",
    summary="The organization's settings (staff)",
    tag="accounts",
    response=OrganizationSettingsOut,
    errors=(401, 403),
)
async def get_organization_settings(ctx: Context) -> OrganizationSettingsOut:
    return OrganizationSettingsOut.model_validate(await _organization(ctx, Action.STAFF_READ))


@api.route(
    "PATCH",
    "/api/organization/settings",
    summary="Change the organization's settings: whether staff may sign in by link (owners)",
    tag="accounts",
    body=OrganizationSettingsPatch,
    response=OrganizationSettingsOut,
    errors=(401, 403, 422),
)
async def update_organization_settings(ctx: Context, body: OrganizationSettingsPatch) -> OrganizationSettingsOut:
    organization = await _organization(ctx, Action.STAFF_MANAGE)
    changes = body.model_dump(exclude_unset=True)
    for field, value in changes.items():
        setattr(organization, field, value)
    ctx.session.add(organization)
    record(ctx, AuditAction.ORGANIZATION_SETTINGS_CHANGED, "organization", organization.id, details=changes)
    return OrganizationSettingsOut.model_validate(organization)
