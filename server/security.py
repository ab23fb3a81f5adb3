"""Passwords, tokens and CSRF: the primitives accounts are built from.

Passwords are hashed with argon2id. Session, bearer and invite tokens are random 256-bit strings handed to the
user once; the database keeps only their SHA-256, so a leaked table grants nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile
# Verified against when the email is unknown, so a login takes as long either way (no user enumeration).
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

MIN_PASSWORD_LENGTH = 10
_COMMON_PASSWORDS = frozenset(
    {
        "password",
        "password1",
        "password12",
        "password123",
        "1234567890",
        "12345678910",
        "qwertyuiop",
        "iloveyou12",
        "letmein123",
        "welcome123",
        "administrator",
        "passw0rd12",
        "qwerty1234",
        "1q2w3e4r5t",
        "abc1234567",
        "changeme12",
        "trustno1234",
        "tandem1234",
        "0123456789",
        "aaaaaaaaaa",
    }
)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check ``password``; with ``password_hash=None`` spend the same time and answer False."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def password_problem(password: str, *, email: str = "") -> str | None:
    """Why ``password`` is not acceptable, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > 256:
        return "Use at most 256 characters."
    lowered = password.lower()
    if lowered in _COMMON_PASSWORDS or len(set(lowered)) < 4:
        return "This password is too easy to guess."
    if email and lowered == email.lower():
        return "The password must not be your email address."
    return None


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(secret_key: str, session_token: str) -> str:
    """The CSRF token bound to one session: a browser must echo it in ``X-CSRF-Token`` on cookie writes."""
    return hmac.new(secret_key.encode(), b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
