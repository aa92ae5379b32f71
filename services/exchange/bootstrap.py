"""Wires the exchange service together: settings, HTTP routes, event handlers, the sweeper."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from fastapi import FastAPI
from opentelemetry import context as otel_context

from services.exchange import storage
from services.exchange.handlers import HANDLERS, PROJECTION_HANDLERS, handle_batch, run_sweeper
from services.exchange.http import router
from services.exchange.settings import ExchangeSettings
from shared.envelope import Envelope
from shared.kafka import EventConsumer
from shared.runtime import Runtime, create_app, dispatcher, serve
from shared.sealing import Sealer
from shared.topics import Topic

# Requests and answers go to members of the service's consumer group of their own, which
# take each poll in one database transaction; several members overlap their waits. The
# inbox is the same for all (same consumer name), so redeliveries stay harmless. The
# runtime's own consumer keeps the projections (agencies, keys).
TRANSACTION_TOPICS = (Topic.AGENCY_REQUESTS, Topic.AGENCY_ANSWERS)


def transaction_consumer(index: int) -> Callable[[Runtime], Coroutine[Any, Any, None]]:
    async def consume(runtime: Runtime) -> None:
        name = runtime.settings.service_name

        async def take_poll(
            envelopes: Sequence[Envelope[Any]], _: Sequence[otel_context.Context]
        ) -> Mapping[uuid.UUID, str]:
            # Refusals surface from the per-event handlers, which the consumer falls
            # back to when a batch raises; a batch that commits refused nothing.
            await handle_batch(runtime.pool, name, envelopes)
            return {}

        consumer = EventConsumer(
            group=name,
            topics=list(TRANSACTION_TOPICS),
            batch=take_poll,
            handler=dispatcher(runtime.pool, name, HANDLERS),
            kafka=runtime.settings.kafka,
            max_records=200,
        )
        await consumer.run()

    consume.__name__ = f"transaction_consumer_{index}"
    return consume


def build(settings: ExchangeSettings | None = None) -> FastAPI:
    settings = settings or ExchangeSettings()
    storage.seal_signing_keys_with(Sealer(settings.data_key_bytes))
    background: dict[str, Callable[[Runtime], Coroutine[Any, Any, None]]] = {
        "timeout-sweeper": run_sweeper
    }
    for index in range(settings.transaction_consumers):
        background[f"transaction-consumer-{index}"] = transaction_consumer(index)
    return create_app(
        settings,
        title="Panjereh exchange",
        routers=[router],
        handlers=PROJECTION_HANDLERS,
        verifies_tokens=True,
        background=background,
    )


def main() -> None:
    settings = ExchangeSettings()
    serve(build(settings), settings)
