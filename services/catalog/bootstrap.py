"""Wires the catalog service together: settings, HTTP routes and event handlers."""

from __future__ import annotations

from fastapi import FastAPI

from services.catalog.handlers import HANDLERS
from services.catalog.http import router
from services.catalog.settings import CatalogSettings
from shared.runtime import create_app, serve


def build(settings: CatalogSettings | None = None) -> FastAPI:
    settings = settings or CatalogSettings()
    return create_app(settings, title="Panjereh catalog", routers=[router], handlers=HANDLERS)


def main() -> None:
    settings = CatalogSettings()
    serve(build(settings), settings)
