"""Domain errors: what a rule refuses, said without HTTP.

Rules (a feature's rules, the core, the live side, workers) raise these; the HTTP layer maps each kind to a status in
exactly one place (``server/api/routing.py``: ``HTTP_STATUS``), and a socket or a mail handler maps them its own way.
Each error carries the stable ``code`` a client translates, an optional ``reason`` naming one refusal among several
that share a code, the ``params`` its sentence needs, and an English ``message`` for people reading the API directly.

Not found and forbidden live in ``server/policy.py`` (``NotFound``, ``NotVisible``, ``Forbidden``): the policy raises
them and the HTTP layer maps them too.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal a person should see: a stable code and a message (subclasses say which kind)."""

    default_code = "invalid"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        reason: str | None = None,
        params: dict[str, Any] | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.message = message
        self.reason = reason
        self.params = params
        self.details = details


class Invalid(DomainError):
    """The input breaks a rule (HTTP 422)."""

    default_code = "invalid"


class Conflict(DomainError):
    """The input is fine but the current state refuses it, e.g. a column at its WIP limit (HTTP 409)."""

    default_code = "conflict"


class Unauthenticated(DomainError):
    """No one, or not the right one, is signed in (HTTP 401)."""

    default_code = "unauthorized"


class Refused(DomainError):
    """The caller is known but this request of theirs is refused, e.g. a missing CSRF token (HTTP 403)."""

    default_code = "forbidden"


class RateLimited(DomainError):
    """Too many attempts; try again after ``retry_after`` seconds (HTTP 429 with Retry-After)."""

    default_code = "rate_limited"

    def __init__(
        self,
        message: str,
        *,
        retry_after: int | None = None,
        code: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, code=code, params=params)
        self.retry_after = retry_after
