"""Wires the exchange service together: settings, HTTP routes and event handlers."""

from __future__ import annotations

from fastapi import FastAPI

from services.exchange.handlers import HANDLERS
from services.exchange.http import router
from services.exchange.settings import ExchangeSettings
from shared.runtime import create_app, serve


def build(settings: ExchangeSettings | None = None) -> FastAPI:
    settings = settings or ExchangeSettings()
    return create_app(settings, title="Panjereh exchange", routers=[router], handlers=HANDLERS)


def main() -> None:
    settings = ExchangeSettings()
    serve(build(settings), settings)
