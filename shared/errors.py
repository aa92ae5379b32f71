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

    def __init_subclass__(cls, *, status: int | None = None, **kwargs: Any) -> None:
        # Each kind names its HTTP status where it is declared; a subclass keeps its kind's.
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status

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


class Malformed(DomainError, status=400):
    """The request cannot be read as written (a parameter's syntax)."""


class Invalid(DomainError, status=422):
    """The input breaks a rule of the domain."""


class NotAuthenticated(DomainError, status=401):
    """The caller did not prove who they are."""


class Forbidden(DomainError, status=403):
    """The caller may not do this."""


class NotFound(DomainError, status=404):
    """What the request names does not exist."""


class Conflict(DomainError, status=409):
    """The request contradicts the current state."""


class Gone(DomainError, status=410):
    """What the request names existed but no longer may be used."""


class TooManyAttempts(DomainError, status=429):
    """The caller must wait before trying again."""


class Unavailable(DomainError, status=503):
    """Something the use case depends on cannot answer now."""
