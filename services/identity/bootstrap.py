"""Wires the identity service together: settings, HTTP routes and event handlers."""

from __future__ import annotations

from fastapi import FastAPI

from services.identity.handlers import HANDLERS
from services.identity.http import router
from services.identity.settings import IdentitySettings
from shared.runtime import create_app, serve


def build(settings: IdentitySettings | None = None) -> FastAPI:
    settings = settings or IdentitySettings()
    return create_app(settings, title="Panjereh identity", routers=[router], handlers=HANDLERS)


def main() -> None:
    settings = IdentitySettings()
    serve(build(settings), settings)
