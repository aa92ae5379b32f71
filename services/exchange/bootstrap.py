"""Wires the exchange service together: settings, HTTP routes, event handlers, the sweeper."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI

from services.exchange.handlers import HANDLERS, run_sweeper
from services.exchange.http import router
from services.exchange.settings import ExchangeSettings
from shared.kafka import EventConsumer
from shared.runtime import Runtime, create_app, dispatcher, serve
from shared.topics import Topic

# Transactions spend most of their time waiting on the database; more members of the
# service's consumer group, each on its own partitions, overlap those waits. The inbox
# is the same for all of them (same consumer name), so redeliveries stay harmless.
TRANSACTION_TOPICS = (Topic.EXCHANGE_REQUESTS, Topic.EXCHANGE_PROVIDER_RESPONSES)


def transaction_consumer(index: int) -> Callable[[Runtime], Coroutine[Any, Any, None]]:
    async def consume(runtime: Runtime) -> None:
        name = runtime.settings.service_name
        consumer = EventConsumer(
            group=name,
            topics=list(TRANSACTION_TOPICS),
            handler=dispatcher(runtime.pool, name, HANDLERS),
            bootstrap_servers=runtime.settings.kafka_bootstrap_servers,
        )
        await consumer.run()

    consume.__name__ = f"transaction_consumer_{index}"
    return consume


def build(settings: ExchangeSettings | None = None) -> FastAPI:
    settings = settings or ExchangeSettings()
    background: dict[str, Callable[[Runtime], Coroutine[Any, Any, None]]] = {
        "timeout-sweeper": run_sweeper
    }
    for index in range(settings.transaction_consumers):
        background[f"transaction-consumer-{index}"] = transaction_consumer(index)
    return create_app(
        settings,
        title="Panjereh exchange",
        routers=[router],
        handlers=HANDLERS,
        verifies_tokens=True,
        background=background,
    )


def main() -> None:
    settings = ExchangeSettings()
    serve(build(settings), settings)
