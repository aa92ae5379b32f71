"""Handlers of the events the catalog service consumes, by event type.

Each handler is a plain function of (event, connection) that runs inside the transaction
the inbox opened for that event; `shared.runtime` consumes the topics these events travel
on and calls the handlers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.catalog import storage
from services.catalog.domain import check_delivery
from shared.db import Connection
from shared.envelope import Envelope
from shared.events.catalog import DeliveryRecorded, DeliveryReported, delivery_event_id
from shared.kafka import Rejected
from shared.outbox import enqueue
from shared.runtime import Handlers


async def record_delivery(envelope: Envelope[Any], connection: Connection) -> None:
    """Check a reported delivery against the register; pass it on once, or refuse it.

    Refused reports raise `Rejected` with the reason, so they reach
    `catalog.delivery-reports.dlq`. A valid report becomes a `DeliveryRecorded` on
    `catalog.deliveries` (through the outbox) whose envelope id is derived from the
    report id; a report id seen before is skipped, however it arrived.
    """
    report: DeliveryReported = envelope.payload
    view = await storage.service_view(connection, report.service_id)
    problem = check_delivery(report, view, datetime.now(UTC))
    if problem is not None:
        raise Rejected(str(problem))
    assert view is not None
    recorded = DeliveryRecorded(**report.model_dump(), maturity=view.maturity)  # type: ignore[arg-type]
    if not await storage.insert_delivery(connection, recorded):
        return
    await enqueue(
        connection,
        Envelope.wrap(
            recorded,
            source="catalog",
            subject=recorded.service_id,
            correlation_id=envelope.correlation_id,
            event_id=delivery_event_id(report.report_id),
        ),
    )


HANDLERS: Handlers = {DeliveryReported: [record_delivery]}
