"""Wires the exchange service together: settings, HTTP routes, event handlers, the sweeper."""

from __future__ import annotations

from dataclasses import replace

from fastapi import FastAPI

from services.exchange import storage
from services.exchange.handlers import (
    BATCHES,
    HANDLERS,
    TRANSACTION_TOPICS,
    run_sweeper,
)
from services.exchange.http import router
from services.exchange.settings import ExchangeSettings
from shared.runtime import create_app, serve
from shared.sealing import Sealer

__all__ = ["TRANSACTION_TOPICS", "build", "main"]


def build(settings: ExchangeSettings | None = None) -> FastAPI:
    settings = settings or ExchangeSettings()
    storage.seal_signing_keys_with(Sealer(settings.data_key_bytes))
    # Several members of the consumer group take requests and answers, so their waits on
    # the database overlap; how many is a setting.
    batches = {
        name: replace(batch, members=settings.transaction_consumers)
        for name, batch in BATCHES.items()
    }
    return create_app(
        settings,
        title="Panjereh exchange",
        routers=[router],
        handlers=HANDLERS,
        batches=batches,
        verifies_tokens=True,
        background={"timeout-sweeper": run_sweeper},
    )


def main() -> None:
    settings = ExchangeSettings()
    serve(build(settings), settings)
