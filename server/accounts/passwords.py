"""The password policy every new password meets: on account creation, password change and password reset.

It follows NIST SP 800-63B 5.1.1.2 and OWASP ASVS V2.1: at least 12 characters, up to 128 (so passphrases fit),
no composition rules (no "one digit, one symbol"), and a check against what attackers try first: passwords known
from breaches (a bundled list, ``server/accounts/data/README.md``), small variations of them, and words from the context
(the person's email address, the product's name).
"""

from __future__ import annotations

import enum
import functools
import gzip
import string
from dataclasses import dataclass
from pathlib import Path

from server.errors import Invalid

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 128
PRODUCT_NAME = "tandem"
BREACHED_LIST = Path(__file__).resolve().parent / "data" / "common-passwords.txt.gz"
# Stripped from both ends before the list is asked again: "Sunshine2026!" is "sunshine" to an attacker.
_DECORATION = string.digits + string.punctuation + string.whitespace
# Shorter local parts ("jo@") would refuse too many good passwords that merely contain them.
_MIN_EMAIL_PART = 4


class WeakReason(enum.StrEnum):
    """Why a password is refused: the ``type`` of the ``weak_password`` error's detail."""

    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    BREACHED = "breached"
    REPETITIVE = "repetitive"
    CONTAINS_EMAIL = "contains_email"
    CONTAINS_PRODUCT_NAME = "contains_product_name"


@dataclass(frozen=True)
class Weakness:
    reason: WeakReason
    message: str


@functools.cache
def breached_passwords() -> frozenset[str]:
    """The bundled list of common breached passwords, lower-cased; read from disk on first use only."""
    with gzip.open(BREACHED_LIST, "rt", encoding="utf-8") as lines:
        return frozenset(line.rstrip("\n") for line in lines if line.strip())


def password_weakness(password: str, *, email: str = "") -> Weakness | None:
    """Why ``password`` may not be used by the person with ``email``, or None if it may.

    Length is counted in Unicode code points, so every script and emoji count alike.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        return Weakness(WeakReason.TOO_SHORT, f"Use at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        return Weakness(WeakReason.TOO_LONG, f"Use at most {MAX_PASSWORD_LENGTH} characters.")
    lowered = password.lower()
    if len(set(lowered)) < 4:
        return Weakness(WeakReason.REPETITIVE, "This password repeats too few characters to be hard to guess.")
    local_part = email.strip().lower().partition("@")[0]
    if len(local_part) >= _MIN_EMAIL_PART and local_part in lowered:
        return Weakness(WeakReason.CONTAINS_EMAIL, "The password must not contain your email address.")
    if PRODUCT_NAME in lowered:
        return Weakness(WeakReason.CONTAINS_PRODUCT_NAME, "The password must not contain the name Tandem.")
    known = breached_passwords()
    if lowered in known or lowered.strip(_DECORATION) in known:
        return Weakness(
            WeakReason.BREACHED,
            "This password (or one very like it) appears in lists of breached passwords. Choose another; "
            "a few unrelated words make a strong one.",
        )
    return None


def require_strong_password(password: str, *, email: str, field: str = "password") -> None:
    """Refuse ``password`` for the person with ``email`` unless the policy allows it.

    Raises:
        Invalid: ``weak_password``; its ``reason`` (and the one ``details`` entry's ``type``) is the
            `WeakReason`, its ``params`` the length limits.
    """
    weakness = password_weakness(password, email=email)
    if weakness is not None:
        raise Invalid(
            weakness.message,
            code="weak_password",
            details=[{"field": field, "message": weakness.message, "type": weakness.reason.value}],
            reason=weakness.reason.value,
            params={"min": MIN_PASSWORD_LENGTH, "max": MAX_PASSWORD_LENGTH},
        )
