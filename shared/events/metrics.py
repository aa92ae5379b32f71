"""Events of the metrics worker: the programme's figures, one record per metric value.

Each metrics topic is compacted by key `<metric>|<dimensions>|<window>`, so its latest
record per key is the current value; analysts consume them with any Kafka client.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, ConfigDict, Field

from shared.envelope import Event
from shared.registry import event
from shared.topics import Topic

Granularity = Literal["minute", "hour", "day", "week", "quarter", "year", "all_time"]

_EXAMPLE: dict[str, Any] = {
    "metric": "exchange.transactions",
    "dimensions": {"outcome": "answered"},
    "granularity": "day",
    "window_start": "2024-03-19T20:30:00Z",
    "window_end": "2024-03-20T20:30:00Z",
    "window_label": "1403-01-01",
    "value": 1234567.0,
    "unit": "count",
}


class _MetricValue(Event):
    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    metric: str = Field(pattern=r"^[a-z][a-z0-9_.]*$")
    dimensions: dict[str, str] = Field(description="e.g. {'province': 'IR-15'}; {} for totals.")
    granularity: Granularity
    window_start: AwareDatetime | None = Field(description="None for all-time values.")
    window_end: AwareDatetime | None
    window_label: str = Field(description="The window in the Jalali calendar, e.g. 1403-Q1.")
    value: float
    unit: Literal["count", "ratio", "milliseconds", "people"]

    def record_key(self) -> str:
        dimensions = ",".join(f"{k}={v}" for k, v in sorted(self.dimensions.items()))
        return f"{self.metric}|{dimensions}|{self.granularity}:{self.window_label}"


@event
class ExchangeMetricUpdated(_MetricValue):
    """A figure about the information exchange changed."""

    event_type = "ExchangeMetricUpdated"
    schema_version = 1
    topic = Topic.METRICS_EXCHANGE


@event
class IdentityMetricUpdated(_MetricValue):
    """A figure about sign-ins and people authenticated changed."""

    event_type = "IdentityMetricUpdated"
    schema_version = 1
    topic = Topic.METRICS_IDENTITY


@event
class AdoptionMetricUpdated(_MetricValue):
    """A figure about the window's services and agencies changed."""

    event_type = "AdoptionMetricUpdated"
    schema_version = 1
    topic = Topic.METRICS_ADOPTION


@event
class DeliveryMetricUpdated(_MetricValue):
    """A figure about service deliveries changed."""

    event_type = "DeliveryMetricUpdated"
    schema_version = 1
    topic = Topic.METRICS_DELIVERIES
