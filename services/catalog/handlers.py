"""Handlers of the events the catalog service consumes, by event type.

Each handler is a plain function of (events, connection) that runs inside the transaction
its consumer opened; it never publishes directly and never commits.

Delivery reports come in volume (3 million a day, ten times that rate at the peak hour),
so they are handled a batch at a time (`services.catalog.ingest` consumes them):
one transaction, one lookup of the register and one insert per batch.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from opentelemetry.context import Context

from services.catalog import storage
from services.catalog.domain import DeliveryProblem, check_delivery
from shared.db import Connection
from shared.envelope import Envelope
from shared.events.catalog import DeliveryRecorded, DeliveryReported, delivery_event_id
from shared.outbox import enqueue_many
from shared.runtime import Handlers

Refusal = tuple[Envelope[DeliveryReported], DeliveryProblem]


async def record_deliveries(
    envelopes: Sequence[Envelope[Any]],
    connection: Connection,
    now: datetime | None = None,
    parents: Mapping[uuid.UUID, Context] | None = None,
) -> list[Refusal]:
    """Check reported deliveries against the register; pass each report on once.

    Returns the refused reports with their problem (the consumer dead-letters them to
    `catalog.delivery-reports.dlq`). Each valid report becomes a `DeliveryRecorded` on
    `catalog.deliveries` (through the outbox) whose envelope id is derived from the report
    id; a report id seen before (in this batch, or ever) is skipped, however it arrived.
    `parents` (by report envelope id) carry each report's trace on to its recorded event.
    """
    moment = now or datetime.now(UTC)
    reports: list[Envelope[DeliveryReported]] = [
        e for e in envelopes if isinstance(e.payload, DeliveryReported)
    ]
    views = await storage.service_views(connection, sorted({e.payload.service_id for e in reports}))
    refused: list[Refusal] = []
    valid: dict[uuid.UUID, tuple[Envelope[DeliveryReported], DeliveryRecorded]] = {}
    for envelope in reports:
        report = envelope.payload
        view = views.get(report.service_id)
        problem = check_delivery(report, view, moment)
        if problem is not None:
            refused.append((envelope, problem))
        elif view is not None and report.report_id not in valid:
            recorded = DeliveryRecorded(**report.model_dump(), maturity=view.maturity)
            valid[report.report_id] = (envelope, recorded)
    new = await storage.insert_deliveries(connection, [r for _, r in valid.values()])
    fresh = [
        (envelope, recorded) for envelope, recorded in valid.values() if recorded.report_id in new
    ]
    await enqueue_many(
        connection,
        [
            Envelope.wrap(
                recorded,
                source="catalog",
                subject=recorded.service_id,
                correlation_id=envelope.correlation_id,
                event_id=delivery_event_id(recorded.report_id),
            )
            for envelope, recorded in fresh
        ],
        [(parents or {}).get(envelope.id) for envelope, _ in fresh],
    )
    return refused


# Delivery reports are consumed by `services.catalog.ingest`, in batches, not through here.
HANDLERS: Handlers = {}
