"""Handlers of the events the metrics service consumes, by event type.

Each handler is a plain function of (event, connection) that runs inside the transaction
the inbox opened for that event; `shared.runtime` consumes the topics these events travel
on and calls the handlers. The service projects every figure the worker publishes.
"""

from __future__ import annotations

from typing import Any

from services.metrics import storage
from shared.envelope import Envelope
from shared.events.metrics import (
    AdoptionMetricUpdated,
    DeliveryMetricUpdated,
    ExchangeMetricUpdated,
    IdentityMetricUpdated,
    _MetricValue,
)
from shared.runtime import Handlers


async def project_figure(envelope: Envelope[_MetricValue], connection: Any) -> None:
    """Keep the figure's latest value (by the time the worker published it)."""
    figure = envelope.payload
    await storage.upsert(
        connection,
        type(figure).topic.value,
        storage.MetricValue(
            key=figure.record_key(),
            metric=figure.metric,
            dimensions=dict(figure.dimensions),
            granularity=figure.granularity,
            window_start=figure.window_start,
            window_end=figure.window_end,
            window_label=figure.window_label,
            value=figure.value,
            unit=figure.unit,
            published_at=envelope.occurred_at,
        ),
    )


HANDLERS: Handlers = {
    ExchangeMetricUpdated: [project_figure],
    IdentityMetricUpdated: [project_figure],
    AdoptionMetricUpdated: [project_figure],
    DeliveryMetricUpdated: [project_figure],
}
