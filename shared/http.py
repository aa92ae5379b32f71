"""HTTP conventions every service shares: problem+json errors (RFC 9457) and health.

Every error a client sees is `application/problem+json` with a stable `code`, a `title`
in the client's preferred language, and the message in both Persian and English. Bad
input is a 4xx with the reason; nothing a client sends turns into a 500.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.errors import DomainError
from shared.logging import get_logger
from shared.messages import MESSAGES, Language, message, preferred_language

log = get_logger(__name__)

PROBLEM_JSON = "application/problem+json"


class Problem(BaseModel):
    """An RFC 9457 problem document with Panjereh's extensions."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    code: str = Field(description="Stable, machine-readable error code.")
    messages: dict[Language, str] = Field(description="The title in Persian and English.")
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="Per-field reasons, for invalid input."
    )


class ProblemError(Exception):
    """Raise from a route to answer with a problem document."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if code not in MESSAGES:
            raise ValueError(f"no message for problem code {code!r}")
        super().__init__(detail or code)
        self.status, self.code, self.detail, self.errors = status, code, detail, errors
        # Extra response headers, e.g. Retry-After on a 429 or WWW-Authenticate on a 401.
        self.headers = headers or {}


def problem_response(
    request: Request,
    status: int,
    code: str,
    detail: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    language = preferred_language(request.headers.get("accept-language"))
    body = Problem(
        title=message(code, language),
        status=status,
        detail=detail,
        instance=str(request.url.path),
        code=code,
        messages=MESSAGES[code],
        errors=errors,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers={**(headers or {}), "content-language": language},
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error of `app` a problem document."""

    async def on_problem(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ProblemError)
        return problem_response(
            request, error.status, error.code, error.detail, error.errors, error.headers
        )

    async def on_domain_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, DomainError)
        return problem_response(
            request, error.status, error.code, error.detail, error.errors, error.headers
        )

    async def on_invalid(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        errors = [
            {"location": [str(p) for p in e.get("loc", ())], "reason": e.get("msg", "")}
            for e in error.errors()
        ]
        return problem_response(request, 422, "invalid_request", "see errors", errors)

    async def on_http(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return problem_response(request, error.status_code, code, str(error.detail))

    async def on_unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path)
        return problem_response(request, 500, "internal_error")

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
