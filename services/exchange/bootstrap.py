"""Wires the exchange service together: settings, HTTP routes, event handlers, the sweeper."""

from __future__ import annotations

from fastapi import FastAPI

from services.exchange.handlers import HANDLERS, run_sweeper
from services.exchange.http import router
from services.exchange.settings import ExchangeSettings
from shared.runtime import create_app, serve


def build(settings: ExchangeSettings | None = None) -> FastAPI:
    settings = settings or ExchangeSettings()
    return create_app(
        settings,
        title="Panjereh exchange",
        routers=[router],
        handlers=HANDLERS,
        verifies_tokens=True,
        background={"timeout-sweeper": run_sweeper},
    )


def main() -> None:
    settings = ExchangeSettings()
    serve(build(settings), settings)
