"""Wires the identity service together: settings, HTTP routes, event handlers and tasks."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

import services.identity.messages  # noqa: F401  (registers the service's messages)
from services.identity.adapters.operator_check import OperatorCheck
from services.identity.adapters.sms_gateway import SmsGatewaySettings, development_gateway
from services.identity.domain.citizens import InvalidInput
from services.identity.handlers import HANDLERS
from services.identity.handlers.context import Identity, utc_now
from services.identity.http import router
from services.identity.settings import IdentitySettings
from shared.http import problem_response
from shared.runtime import Runtime, create_app, serve


def build(
    settings: IdentitySettings | None = None,
    *,
    operator_check: OperatorCheck | None = None,
    sms_gateway: SmsGatewaySettings | None = None,
) -> FastAPI:
    settings = settings or IdentitySettings()
    identity = Identity(settings)
    if operator_check is not None:
        identity.operator_check = operator_check

    async def rotate_keys(runtime: Runtime) -> None:
        identity.bind(runtime.pool)
        await identity.keys.keep_rotating(utc_now)

    background: dict[str, Callable[[Runtime], Coroutine[Any, Any, None]]] = {
        "issuer-key-rotation": rotate_keys
    }
    if settings.sms_gateway == "log":
        # Its own settings, with the private key identity's settings never hold.
        background["sms-gateway"] = development_gateway(sms_gateway or SmsGatewaySettings())
    app = create_app(
        settings,
        title="Panjereh identity",
        routers=[router],
        handlers=HANDLERS,
        background=background,
    )
    app.state.identity = identity

    async def on_invalid_input(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, InvalidInput)
        return problem_response(request, 422, error.code, error.reason)

    app.add_exception_handler(InvalidInput, on_invalid_input)
    return app


def main() -> None:
    settings = IdentitySettings()
    serve(build(settings), settings)
