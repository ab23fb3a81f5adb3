"""Passkeys (WebAuthn, through ``webauthn``, py_webauthn): register several, name and remove them, sign in with
one, with or without typing an address first (discoverable credentials).

A ceremony is two requests: the options (with a fresh challenge), then the browser's answer. The challenge travels
in a sealed, expiring ``state`` (server/accounts/second_factor.py's ``seal``) and is accepted once (the rate limiter's
store remembers spent ones for the state's lifetime), so nothing is stored between the two requests. The relying
party is ``TANDEM_BASE_URL``: its host is the RP ID and it is the only origin accepted.

A passkey that verified its user (a PIN, a fingerprint) is a whole sign-in; after a password it is the second
factor, and then presence is enough.
"""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import StringConstraints
from sqlmodel import col, select
from webauthn import (
    base64url_to_bytes,
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from server.accounts.notices import Notice, notify
from server.accounts.routes.accounts import sign_in
from server.accounts.routes.second_factor import PasskeyOut, check_attempts, enrolled, passkey_out
from server.accounts.second_factor import factors_of, required_of, seal, ticket_user, unseal
from server.api import api
from server.api.routing import ApiError, not_found
from server.audit import log as audit
from server.audit.log import AuditAction
from server.context import Context
from server.db import utcnow
from server.models import Organization, Passkey, User
from server.schemas import In, LoginOut, Out
from server.settings import Settings

MAX_PASSKEYS = 20
_CEREMONY_MINUTES = 5


class CeremonyOut(Out):
    options: dict[str, Any]
    state: str


class PasskeyOptionsIn(In):
    ticket: Annotated[str, StringConstraints(max_length=400)] | None = None


class PasskeyRegisterIn(In):
    state: Annotated[str, StringConstraints(max_length=2000)]
    credential: dict[str, Any]
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class PasskeySignInIn(In):
    state: Annotated[str, StringConstraints(max_length=2000)]
    credential: dict[str, Any]


class PasskeyPatch(In):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


def _rp(settings: Settings) -> tuple[str, str]:
    """The relying party's id (the host) and the one origin accepted."""
    parts = urlsplit(settings.base_url)
    return parts.hostname or "localhost", f"{parts.scheme}://{parts.netloc}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _refused() -> ApiError:
    return ApiError(401, "passkey_invalid", "That passkey could not be checked. Try again, or another way in.")


async def _take_challenge(ctx: Context, purpose: str, state: str) -> dict[str, object]:
    """The sealed ceremony data, once: a replayed or expired state is refused."""
    data = unseal(ctx.services.settings.secret_key, purpose, state, ctx.services.auth.clock())
    challenge = data.get("ch") if data else None
    if data is None or not isinstance(challenge, str):
        raise _refused()
    if not await ctx.services.limiter.hit(f"webauthn:spent:{challenge}", 1, _CEREMONY_MINUTES * 60):
        raise _refused()
    return data


def _options(options: Any) -> dict[str, Any]:
    return json.loads(options_to_json(options))  # type: ignore[no-any-return]


def _descriptors(rows: list[Passkey]) -> list[PublicKeyCredentialDescriptor]:
    out = []
    for row in rows:
        transports = [
            AuthenticatorTransport(t) for t in row.transports.split() if t in AuthenticatorTransport._value2member_map_
        ]
        out.append(
            PublicKeyCredentialDescriptor(id=base64url_to_bytes(row.credential_id), transports=transports or None)
        )
    return out


async def _mine(ctx: Context) -> list[Passkey]:
    rows = await ctx.session.exec(select(Passkey).where(Passkey.user_id == ctx.actor.user_id).order_by(col(Passkey.id)))
    return list(rows.all())


@api.route(
    "POST",
    "/api/me/passkeys/options",
    summary="Start adding a passkey: the options for navigator.credentials.create and a state to send back",
    tag="accounts",
    response=CeremonyOut,
    errors=(401, 409),
    session_only=True,
)
async def registration_options(ctx: Context) -> CeremonyOut:
    user = await ctx.session.get(User, ctx.actor.user_id)
    assert user is not None and user.id is not None
    mine = await _mine(ctx)
    if len(mine) >= MAX_PASSKEYS:
        raise ApiError(409, "too_many_passkeys", f"At most {MAX_PASSKEYS} passkeys.", params={"limit": MAX_PASSKEYS})
    rp_id, _ = _rp(ctx.services.settings)
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name="Tandem",
        user_name=user.email,
        user_id=f"tandem-user-{user.id}".encode(),
        user_display_name=user.name,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED, user_verification=UserVerificationRequirement.PREFERRED
        ),
        exclude_credentials=_descriptors(mine),
    )
    data = {"ch": _b64(options.challenge), "uid": user.id}
    state = seal(
        ctx.services.settings.secret_key, "webauthn-register", data, ctx.services.auth.clock(), _CEREMONY_MINUTES
    )
    return CeremonyOut(options=_options(options), state=state)


@api.route(
    "POST",
    "/api/me/passkeys",
    summary="Add a passkey: the browser's answer to the options, with a name for it",
    tag="accounts",
    body=PasskeyRegisterIn,
    response=PasskeyOut,
    status=201,
    errors=(401, 409, 422),
    session_only=True,
)
async def register_passkey(ctx: Context, body: PasskeyRegisterIn) -> PasskeyOut:
    data = await _take_challenge(ctx, "webauthn-register", body.state)
    if data.get("uid") != ctx.actor.user_id:
        raise _refused()
    rp_id, origin = _rp(ctx.services.settings)
    try:
        verified = verify_registration_response(
            credential=body.credential,
            expected_challenge=base64url_to_bytes(str(data["ch"])),
            expected_rp_id=rp_id,
            expected_origin=origin,
        )
    except (InvalidRegistrationResponse, ValueError, KeyError, TypeError) as exc:
        raise ApiError(422, "invalid", "The passkey could not be added.", reason="passkey_refused") from exc
    credential_id = _b64(verified.credential_id)
    taken = (await ctx.session.exec(select(Passkey.id).where(Passkey.credential_id == credential_id))).first()
    if taken is not None:
        raise ApiError(409, "passkey_exists", "This passkey is added already.")
    transports = body.credential.get("response", {}).get("transports") or []
    row = Passkey(
        user_id=ctx.actor.user_id,
        name=body.name,
        credential_id=credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=" ".join(str(t) for t in transports if isinstance(t, str))[:200],
    )
    ctx.session.add(row)
    await ctx.session.flush()
    await enrolled(ctx, ctx.actor.user_id)
    audit.record(ctx, AuditAction.PASSKEY_ADDED, "passkey", row.id, details={"name": row.name})
    user = await ctx.session.get(User, ctx.actor.user_id)
    assert user is not None
    notify(ctx, user, Notice.PASSKEY_ADDED, passkey=row.name)
    return passkey_out(row)


async def _own(ctx: Context) -> Passkey:
    row = await ctx.session.get(Passkey, ctx.path_int("passkey_id"))
    if row is None or row.user_id != ctx.actor.user_id:
        raise not_found("passkey")
    return row


@api.route(
    "PATCH",
    "/api/me/passkeys/{passkey_id:int}",
    summary="Rename one of my passkeys",
    tag="accounts",
    body=PasskeyPatch,
    response=PasskeyOut,
    errors=(401, 404, 422),
    session_only=True,
)
async def rename_passkey(ctx: Context, body: PasskeyPatch) -> PasskeyOut:
    row = await _own(ctx)
    row.name = body.name
    ctx.session.add(row)
    audit.record(ctx, AuditAction.PASSKEY_RENAMED, "passkey", row.id, details={"name": row.name})
    return passkey_out(row)


@api.route(
    "DELETE",
    "/api/me/passkeys/{passkey_id:int}",
    summary="Remove one of my passkeys (refused if it is my last factor and my organization requires one)",
    tag="accounts",
    status=204,
    errors=(401, 404, 409),
    session_only=True,
)
async def remove_passkey(ctx: Context) -> None:
    row = await _own(ctx)
    user = await ctx.session.get(User, ctx.actor.user_id)
    assert user is not None and user.id is not None
    factors = await factors_of(ctx.session, user.id)
    organization = await ctx.session.get(Organization, user.organization_id)
    last = factors.passkeys == 1 and not factors.totp
    if last and organization is not None and required_of(user, organization):
        raise ApiError(409, "second_factor_required", "Your organization requires a second factor: add another first.")
    await ctx.session.delete(row)
    audit.record(ctx, AuditAction.PASSKEY_REMOVED, "passkey", row.id, details={"name": row.name})
    notify(ctx, user, Notice.PASSKEY_REMOVED, passkey=row.name)


@api.route(
    "POST",
    "/api/auth/passkey/options",
    summary="Start signing in with a passkey: options for navigator.credentials.get (any of my passkeys when no "
    "ticket is given: sign-in without typing an address)",
    tag="accounts",
    body=PasskeyOptionsIn,
    response=CeremonyOut,
    public=True,
    errors=(401, 422, 429),
)
async def authentication_options(ctx: Context, body: PasskeyOptionsIn) -> CeremonyOut:
    settings = ctx.services.settings
    now = ctx.services.auth.clock()
    allow: list[PublicKeyCredentialDescriptor] = []
    uid = None
    if body.ticket:
        user = await ticket_user(ctx.session, settings.secret_key, body.ticket, now)
        if user is None:
            raise ApiError(401, "sign_in_expired", "This sign-in took too long. Sign in again.")
        uid = user.id
        rows = (await ctx.session.exec(select(Passkey).where(Passkey.user_id == uid))).all()
        allow = _descriptors(list(rows))
    rp_id, _ = _rp(settings)
    options = generate_authentication_options(
        rp_id=rp_id,
        allow_credentials=allow or None,
        user_verification=UserVerificationRequirement.PREFERRED if uid else UserVerificationRequirement.REQUIRED,
    )
    state = seal(
        settings.secret_key, "webauthn-sign-in", {"ch": _b64(options.challenge), "uid": uid}, now, _CEREMONY_MINUTES
    )
    return CeremonyOut(options=_options(options), state=state)


@api.route(
    "POST",
    "/api/auth/passkey",
    summary="Sign in with a passkey: the browser's answer to the options (a second step when they came with a ticket)",
    tag="accounts",
    body=PasskeySignInIn,
    response=LoginOut,
    public=True,
    errors=(401, 422, 429),
)
async def passkey_sign_in(ctx: Context, body: PasskeySignInIn) -> LoginOut:
    data = await _take_challenge(ctx, "webauthn-sign-in", body.state)
    credential_id = body.credential.get("id") or body.credential.get("rawId")
    if not isinstance(credential_id, str):
        raise _refused()
    row = (await ctx.session.exec(select(Passkey).where(Passkey.credential_id == credential_id))).first()
    if row is None or (data.get("uid") is not None and data["uid"] != row.user_id):
        raise _refused()
    await check_attempts(ctx, row.user_id)
    user = await ctx.session.get(User, row.user_id)
    if user is None or not user.is_active:
        raise _refused()
    rp_id, origin = _rp(ctx.services.settings)
    try:
        verified = verify_authentication_response(
            credential=body.credential,
            expected_challenge=base64url_to_bytes(str(data["ch"])),
            expected_rp_id=rp_id,
            expected_origin=origin,
            credential_public_key=row.public_key,
            credential_current_sign_count=row.sign_count,
            require_user_verification=data.get("uid") is None,
        )
    except (InvalidAuthenticationResponse, ValueError, KeyError, TypeError) as exc:
        raise _refused() from exc
    row.sign_count = verified.new_sign_count
    row.last_used_at = user.last_login_at = utcnow()
    ctx.session.add(row)
    ctx.session.add(user)
    audit.record(
        ctx,
        AuditAction.PASSKEY_LOGIN,
        "passkey",
        row.id,
        actor_id=user.id,
        organization_id=user.organization_id,
        details={"step": "second" if data.get("uid") is not None else "only"},
    )
    return await sign_in(ctx, user, second_factor_done=True)
