"""Domain errors: what a use case raises when the rules say no.

Use cases know nothing of HTTP. They raise one of these kinds with a stable code (one of
`shared.messages.MESSAGES`, so the client reads it in Persian or English) and a reason;
`shared.http` turns each kind into its problem+json status in one place. A consumer that
meets one dead-letters the event with the code and reason.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A request the rules refuse: `code` is stable, `detail` says why."""

    status = 400

    def __init__(
        self,
        code: str,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or code)
        self.code, self.detail = code, detail
        # Details a client reads by machine (e.g. until when to wait), in the problem's `errors`.
        self.errors = errors
        # Extra response headers, e.g. Retry-After on a 429 or WWW-Authenticate on a 401.
        self.headers = headers or {}

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}" if self.detail else self.code


class Malformed(DomainError):
    """The request cannot be read as written (a parameter's syntax)."""

    status = 400


class Invalid(DomainError):
    """The input breaks a rule of the domain."""

    status = 422


class NotAuthenticated(DomainError):
    """The caller did not prove who they are."""

    status = 401


class Forbidden(DomainError):
    """The caller may not do this."""

    status = 403


class NotFound(DomainError):
    """What the request names does not exist."""

    status = 404


class Conflict(DomainError):
    """The request contradicts the current state."""

    status = 409


class Gone(DomainError):
    """What the request names existed but no longer may be used."""

    status = 410


class TooManyAttempts(DomainError):
    """The caller must wait before trying again."""

    status = 429


class Unavailable(DomainError):
    """Something the use case depends on cannot answer now."""

    status = 503
