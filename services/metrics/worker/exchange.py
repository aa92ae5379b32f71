"""Exchange figures: every finished transaction on `exchange.transactions`."""

from __future__ import annotations

from datetime import datetime

import faust

from services.metrics.domain import exchange
from services.metrics.domain.figures import Figure
from services.metrics.worker.app import app, decoded, partitions_of, source_topic
from services.metrics.worker.counters import BATCH_SIZE, BATCH_WITHIN_SECONDS, Counters
from services.metrics.worker.publisher import Source, register
from shared.events.exchange import TransactionRecorded
from shared.events.metrics import ExchangeMetricUpdated
from shared.topics import Topic

transactions = source_topic(Topic.EXCHANGE_TRANSACTIONS)
counters = Counters("exchange-counters", partitions_of(Topic.EXCHANGE_TRANSACTIONS))


@app.agent(transactions)
async def count_transactions(stream: faust.StreamT[bytes]) -> None:
    async for batch in stream.take_events(BATCH_SIZE, BATCH_WITHIN_SECONDS):  # type: ignore[attr-defined]
        for event in batch:
            envelope = await decoded(event)
            if envelope is None or not isinstance(envelope.payload, TransactionRecorded):
                continue
            for cell in exchange.increments(envelope.payload):
                counters.stage(cell, event)
        counters.write_staged()


def figures(now: datetime) -> list[Figure]:
    return exchange.figures(counters.take_changed(), counters)


register(Source("exchange", ExchangeMetricUpdated, figures, counters.mark_all_changed))
