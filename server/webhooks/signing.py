"""Webhook signatures: ``X-Tandem-Signature: sha256=<hex HMAC-SHA256 of "timestamp.body" keyed with the secret>``.

The timestamp is signed with the body so a receiver can refuse replays of old deliveries (docs/API.md shows the
receiver's side).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh random secret (256 bits)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Tandem-Signature`` value of ``body`` sent at ``timestamp`` (Unix seconds, as sent)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """True if ``header`` is the signature of ``body`` at ``timestamp`` (constant-time comparison)."""
    return hmac.compare_digest(signature(secret, timestamp, body).encode(), header.encode())
