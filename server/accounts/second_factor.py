"""Second factors: authenticator codes (TOTP, RFC 6238, through ``pyotp``), one-time recovery codes, and what an
organization requires of whom. Passkeys are ``server/passkeys.py``.

A sign-in by password (or link, or invitation) that belongs to a person with a second factor does not start a
session: it hands back a short-lived *sign-in ticket*, an HMAC-signed ``(user, expiry, password fingerprint)``, which
the second step redeems with a code, a recovery code or a passkey. The ticket is worthless without the factor, dies
after ``TICKET_MINUTES``, and dies at once when the password changes. A person whose organization requires a second
factor and who has none gets a session that may only enrol (``auth_sessions.needs_enrolment``).

Codes are checked against the injected clock (``AuthService.clock``), one step either side for drifting phones; a
step once accepted is never accepted again (``totp_factors.last_step``), so an overheard code is spent. Recovery
codes are stored as SHA-256 only and each works once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

import pyotp
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.models import Organization, Passkey, RecoveryCode, TotpFactor, User

ISSUER = "Tandem"
STEP_SECONDS = 30
TICKET_MINUTES = 5
RECOVERY_CODES = 10
# Codes tried against one ticket's person, per five minutes: a six-digit code cannot be guessed in ten tries.
ATTEMPTS_PER_WINDOW = 10
ATTEMPT_WINDOW_SECONDS = 300


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, email: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads from a QR code (or typed in as the secret)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def accepted_step(secret: str, code: str, now: float, last_step: int) -> int | None:
    """The time step ``code`` belongs to, if it is valid at ``now`` (one step either side) and later than
    ``last_step`` (a code is good once); None otherwise."""
    code = "".join(code.split())
    if len(code) != 6 or not (code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    current = int(now // STEP_SECONDS)
    for step in (current - 1, current, current + 1):
        if step > last_step and hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def new_recovery_codes() -> list[str]:
    """Ten codes of 10 base32 characters (50 bits each), shown once as ``xxxxx-xxxxx``."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(alphabet) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def recovery_hash(code: str) -> str:
    """SHA-256 of a recovery code as typed, ignoring case, spaces and dashes."""
    normal = "".join(ch for ch in code.lower() if ch.isalnum())
    return hashlib.sha256(normal.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret_key: str, purpose: str, payload: str) -> str:
    return _b64(hmac.new(secret_key.encode(), f"{purpose}|{payload}".encode(), hashlib.sha256).digest())


def seal(secret_key: str, purpose: str, data: dict[str, object], now: float, minutes: int = TICKET_MINUTES) -> str:
    """An opaque, signed, expiring value holding ``data`` for ``purpose`` (a sign-in ticket, a WebAuthn challenge)."""
    payload = _b64(json.dumps({**data, "exp": int(now) + minutes * 60}, separators=(",", ":")).encode())
    return f"{payload}.{_sign(secret_key, purpose, payload)}"


def unseal(secret_key: str, purpose: str, sealed: str, now: float) -> dict[str, object] | None:
    """The data of a value `seal` made for ``purpose``, if its signature holds and it has not expired."""
    if not sealed.isascii():  # a value seal made is base64 and a dot; anything else is forged
        return None
    payload, _, signature = sealed.partition(".")
    if not signature or not hmac.compare_digest(signature, _sign(secret_key, purpose, payload)):
        return None
    try:
        data = json.loads(_unb64(payload))
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("exp"), int) or data["exp"] < now:
        return None
    return data


def password_fingerprint(user: User) -> str:
    """A short digest of the stored password hash: a ticket carrying it dies when the password changes."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def sign_in_ticket(secret_key: str, user: User, now: float) -> str:
    return seal(secret_key, "sign-in", {"uid": user.id, "pw": password_fingerprint(user)}, now)


async def ticket_user(session: AsyncSession, secret_key: str, ticket: str, now: float) -> User | None:
    """The active person a sign-in ticket is for, if it is valid and their password has not changed since."""
    data = unseal(secret_key, "sign-in", ticket, now)
    if data is None or not isinstance(data.get("uid"), int):
        return None
    user = await session.get(User, data["uid"])
    if user is None or not user.is_active or data.get("pw") != password_fingerprint(user):
        return None
    return user


@dataclass(frozen=True)
class Factors:
    """The second factors a person has set up."""

    totp: bool
    passkeys: int
    recovery_left: int

    @property
    def any(self) -> bool:
        return self.totp or self.passkeys > 0

    @property
    def methods(self) -> list[str]:
        """What the sign-in step may ask for, in the order the screen offers them."""
        out = []
        if self.passkeys:
            out.append("passkey")
        if self.totp:
            out.append("totp")
        if self.recovery_left:
            out.append("recovery")
        return out


async def factors_of(session: AsyncSession, user_id: int) -> Factors:
    totp = (
        await session.exec(
            select(TotpFactor.id).where(TotpFactor.user_id == user_id, col(TotpFactor.confirmed_at).is_not(None))
        )
    ).first()
    passkeys = (await session.exec(select(func.count()).where(Passkey.user_id == user_id))).one()
    left = (
        await session.exec(
            select(func.count()).where(RecoveryCode.user_id == user_id, col(RecoveryCode.used_at).is_(None))
        )
    ).one()
    return Factors(totp=totp is not None, passkeys=int(passkeys), recovery_left=int(left))


def required_of(user: User, organization: Organization) -> bool:
    """Whether ``user``'s organization requires them (staff, or customers) to sign in with a second factor."""
    if user.is_staff:
        return organization.require_second_factor_staff
    return organization.require_second_factor_customers
