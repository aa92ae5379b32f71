"""Delivery figures: every delivery the catalog recorded, each report counted once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import faust

from services.metrics.domain import deliveries
from services.metrics.domain.figures import Figure
from services.metrics.domain.reference import load_reference
from services.metrics.worker.app import (
    Follower,
    app,
    decoded,
    partitions_of,
    settings,
    source_topic,
)
from services.metrics.worker.batches import BATCH_SIZE, BATCH_WITHIN_SECONDS, whole_batch_or_none
from services.metrics.worker.counters import Counters, FirstSeen
from services.metrics.worker.publisher import Source, register
from shared.events.catalog import DeliveryRecorded
from shared.events.metrics import DeliveryMetricUpdated
from shared.topics import Topic

reference = load_reference()
deliveries_topic = source_topic(Topic.CATALOG_DELIVERIES)
counters = Counters("delivery-counters", partitions_of(Topic.CATALOG_DELIVERIES))
# The catalog derives a delivery's event id from the agency's report id, so a report
# that reached it twice arrives here twice with one id: it counts once.
seen = FirstSeen(
    "delivery-events", partitions_of(Topic.CATALOG_DELIVERIES), forget_after=settings.dedup_horizon
)
#: Others counting each delivery (once, as here), then told the batch is in.
followers: list[Follower] = []
after_batch: list[Callable[[], None]] = []


@app.agent(deliveries_topic)
async def count_deliveries(stream: faust.StreamT[bytes]) -> None:
    async for batch in stream.take_events(BATCH_SIZE, BATCH_WITHIN_SECONDS):  # type: ignore[attr-defined]
        with whole_batch_or_none():
            for event in batch:
                envelope = await decoded(event)
                if envelope is None or not isinstance(envelope.payload, DeliveryRecorded):
                    continue
                if not seen.is_first(str(envelope.id), event):
                    continue
                for cell in deliveries.increments(envelope.payload):
                    counters.stage(cell, event)
                for follow in followers:
                    follow(envelope, event)
            counters.write_staged()
            for done in after_batch:
                done()


def figures(now: datetime) -> list[Figure]:
    merged = counters.merged
    return deliveries.figures(merged.take_changed(), merged, reference)


register(Source("deliveries", DeliveryMetricUpdated, figures, counters.merged.mark_all_changed))
