"""Wires the identity service together: settings, HTTP routes, event handlers and tasks."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from argon2 import PasswordHasher
from fastapi import FastAPI

import services.identity.messages  # noqa: F401  (registers the service's messages)
from services.identity.adapters.hashing import BoundedHasher, HashingGate
from services.identity.adapters.http_client import PartnerSettings
from services.identity.adapters.key_ring import KeyRing
from services.identity.adapters.operator_check import (
    DevelopmentOperatorCheck,
    HttpOperatorCheck,
    OperatorCheck,
)
from services.identity.adapters.sms_gateway import (
    SmsGatewaySettings,
    development_gateway,
    provider_gateway,
)
from services.identity.cors import TokenEndpointCors
from services.identity.domain.networks import parse_networks
from services.identity.handlers import HANDLERS
from services.identity.http import IdentityContext, router, utc_now
from services.identity.settings import IdentitySettings
from services.identity.use_cases.ports import Dependencies
from shared.runtime import Runtime, create_app, serve
from shared.sealing import Sealer


def chosen_operator_check(settings: IdentitySettings) -> OperatorCheck:
    """The check the settings name (production refuses the development one)."""
    if settings.operator_check == "development":
        return DevelopmentOperatorCheck()
    assert settings.operator_check_url is not None  # the settings refuse http without it
    token = settings.operator_check_token
    return HttpOperatorCheck.at(
        PartnerSettings(
            url=settings.operator_check_url,
            token=token.get_secret_value() if token else None,
            timeout_seconds=settings.operator_check_timeout_seconds,
            retries=settings.operator_check_retries,
        )
    )


def build(
    settings: IdentitySettings | None = None,
    *,
    operator_check: OperatorCheck | None = None,
    sms_gateway: SmsGatewaySettings | None = None,
) -> FastAPI:
    settings = settings or IdentitySettings()
    check = operator_check or chosen_operator_check(settings)
    hasher = BoundedHasher(PasswordHasher(), settings.hashing_concurrency)
    hashing = HashingGate(settings.hashing_concurrency)
    proxies = parse_networks(settings.trusted_proxies)

    def context(runtime: Runtime) -> IdentityContext:
        sealer = Sealer(settings.data_key_bytes)
        keys = KeyRing(settings, runtime.pool, sealer)
        deps = Dependencies(
            settings=settings,
            signer=keys,
            operator_check=check,
            hasher=hasher,
            sms_gateway_key=settings.sms_gateway_key,
        )
        return IdentityContext(
            pool=runtime.pool,
            sealer=sealer,
            keys=keys,
            deps=deps,
            hashing=hashing,
            proxies=proxies,
        )

    async def rotate_keys(runtime: Runtime) -> None:
        await runtime.context.keys.keep_rotating(utc_now)

    background: dict[str, Callable[[Runtime], Coroutine[Any, Any, None]]] = {
        "issuer-key-rotation": rotate_keys
    }
    if settings.sms_gateway == "log":
        # Its own settings, with the private key identity's settings never hold.
        background["sms-gateway"] = development_gateway(sms_gateway or SmsGatewaySettings())
    elif settings.sms_gateway == "http":
        background["sms-gateway"] = provider_gateway(sms_gateway or SmsGatewaySettings())
    app = create_app(
        settings,
        title="Panjereh identity",
        routers=[router],
        handlers=HANDLERS,
        context=context,
        background=background,
    )
    if settings.token_endpoint_origins:
        # The metrics service's report form fetches a directorate's token from the browser.
        app.add_middleware(TokenEndpointCors, origins=settings.token_endpoint_origins)
    return app


def main() -> None:
    settings = IdentitySettings()
    serve(build(settings), settings)
