"""The consumer of `catalog.delivery-reports`, in batches.

Deliveries arrive at volume, so the consumer hands each poll to `record_deliveries` in
one transaction (one register lookup, one insert) instead of one transaction per report;
the platform consumer (`shared.kafka.EventConsumer` with a batch handler) keeps its
guarantees: offsets committed only after the batch's transaction committed and its
refusals are safe on `catalog.delivery-reports.dlq` with the reason; undecodable records
dead-lettered; infrastructure failures retried. A redelivered batch changes nothing:
recorded reports are deduplicated by report id.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context

from services.catalog.handlers import record_deliveries
from shared.db import Pool
from shared.envelope import Envelope
from shared.kafka import EventConsumer, Rejected
from shared.kafka_access import KafkaAccess
from shared.runtime import Runtime
from shared.topics import Topic

GROUP = "catalog"


def delivery_consumer(pool: Pool, kafka: KafkaAccess) -> EventConsumer:
    """The consumer of delivery reports, in the `catalog` group."""

    async def record_batch(
        envelopes: Sequence[Envelope[Any]], parents: Sequence[otel_context.Context]
    ) -> Mapping[uuid.UUID, str]:
        # Each recorded delivery continues the trace of the report that caused it.
        by_report = {e.id: parent for e, parent in zip(envelopes, parents, strict=True)}
        async with pool.acquire() as connection, connection.transaction():
            refused = await record_deliveries(envelopes, connection, parents=by_report)
        return {envelope.id: str(problem) for envelope, problem in refused}

    async def record_one(envelope: Envelope[Any]) -> None:
        refused = await record_batch([envelope], [otel_context.get_current()])
        if refused:
            raise Rejected(refused[envelope.id])

    return EventConsumer(
        group=GROUP,
        topics=[Topic.AGENCY_DELIVERIES],
        handler=record_one,
        batch=record_batch,
        kafka=kafka,
        max_records=1000,
    )


async def ingest_deliveries(runtime: Runtime) -> None:
    """The runtime's background task: consume delivery reports until cancelled."""
    await delivery_consumer(runtime.pool, runtime.settings.kafka).run()
