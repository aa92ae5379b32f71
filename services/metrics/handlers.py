"""Handlers of the events the metrics service consumes, by event type.

Each handler is a plain function of (event, connection) that runs inside the transaction
the inbox opened for that event; `shared.runtime` consumes the topics these events travel
on and calls the handlers. A handler turns the event into a use case's arguments and
calls it with the unit of work of that transaction. The service projects every figure
the worker publishes, each target's progress, and each agency's quarterly scorecard.
"""

from __future__ import annotations

from typing import Any

from services.metrics.domain.values import MetricValue
from services.metrics.storage import EvaluationsStorage, MetricsStorage, ProgrammeStorage
from services.metrics.use_cases import project_figure
from services.metrics.use_cases.evaluations import project_evaluation
from services.metrics.use_cases.programme import project_progress
from shared.envelope import Envelope
from shared.events.metrics import (
    AdoptionMetricUpdated,
    AgencyEvaluated,
    DeliveryMetricUpdated,
    ExchangeMetricUpdated,
    IdentityMetricUpdated,
    TargetProgressUpdated,
    _MetricValue,
)
from shared.runtime import Handlers


async def on_figure_published(envelope: Envelope[_MetricValue], connection: Any) -> None:
    """Keep the figure's latest value (by the time the worker published it)."""
    figure = envelope.payload
    await project_figure(
        MetricsStorage(connection),
        type(figure).topic.value,
        MetricValue.published(figure, envelope.occurred_at),
    )


async def on_progress_published(envelope: Envelope[TargetProgressUpdated], connection: Any) -> None:
    """Keep the target's latest progress (by the time the worker published it)."""
    await project_progress(ProgrammeStorage(connection), envelope.payload, envelope.occurred_at)


async def on_evaluation_published(envelope: Envelope[AgencyEvaluated], connection: Any) -> None:
    """Keep the agency's latest scorecard for the quarter (by when the worker published it)."""
    await project_evaluation(EvaluationsStorage(connection), envelope.payload, envelope.occurred_at)


HANDLERS: Handlers = {
    ExchangeMetricUpdated: [on_figure_published],
    IdentityMetricUpdated: [on_figure_published],
    AdoptionMetricUpdated: [on_figure_published],
    DeliveryMetricUpdated: [on_figure_published],
    TargetProgressUpdated: [on_progress_published],
    AgencyEvaluated: [on_evaluation_published],
}
