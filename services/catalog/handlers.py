"""The events the catalog consumes, each handed to its use case.

Delivery reports come in volume (3 million a day, ten times that rate at the peak hour),
so they are consumed a poll at a time (`BATCHES`): the runtime opens one transaction per
poll, `record_deliveries` looks the register up once and inserts once, and the refused
reports go to their channel's dead-letter topic with the reason. A redelivered poll
changes nothing: recorded reports are deduplicated by report id.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.context import Context

from services.catalog import use_cases
from services.catalog.storage import CatalogStorage
from shared.db import Connection
from shared.envelope import Envelope
from shared.runtime import BatchHandling, Handlers
from shared.topics import Topic


async def record_deliveries(
    envelopes: Sequence[Envelope[Any]], connection: Connection, parents: Sequence[Context]
) -> Mapping[uuid.UUID, str]:
    """A poll of delivery reports recorded; the refused ones by envelope id, with why."""
    # Each recorded delivery continues the trace of the report that caused it.
    by_report = {e.id: parent for e, parent in zip(envelopes, parents, strict=True)}
    refused = await use_cases.record_deliveries(
        CatalogStorage(connection), envelopes, parents=by_report
    )
    return {envelope.id: str(problem) for envelope, problem in refused}


HANDLERS: Handlers = {}

BATCHES: Mapping[str, BatchHandling] = {
    "deliveries": BatchHandling(
        topics=[Topic.AGENCY_DELIVERIES], apply=record_deliveries, max_records=1000
    )
}
