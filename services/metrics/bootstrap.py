"""Wires the metrics service together: settings, HTTP routes and event handlers."""

from __future__ import annotations

from fastapi import FastAPI

from services.metrics.handlers import HANDLERS
from services.metrics.http import router
from services.metrics.settings import MetricsSettings
from shared.runtime import create_app, serve


def build(settings: MetricsSettings | None = None) -> FastAPI:
    settings = settings or MetricsSettings()
    return create_app(settings, title="Panjereh metrics", routers=[router], handlers=HANDLERS)


def main() -> None:
    settings = MetricsSettings()
    serve(build(settings), settings)
