"""A figure as the service holds it: the latest value published for one record key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.events.metrics import _MetricValue


@dataclass(frozen=True)
class MetricValue:
    """One figure as the projection holds it."""

    key: str
    metric: str
    dimensions: dict[str, str]
    granularity: str
    window_start: datetime | None
    window_end: datetime | None
    window_label: str
    value: float
    unit: str
    published_at: datetime

    @classmethod
    def published(cls, figure: _MetricValue, at: datetime) -> MetricValue:
        """The value a figure event carries, as published at `at`."""
        return cls(
            key=figure.record_key(),
            metric=figure.metric,
            dimensions=dict(figure.dimensions),
            granularity=figure.granularity,
            window_start=figure.window_start,
            window_end=figure.window_end,
            window_label=figure.window_label,
            value=figure.value,
            unit=figure.unit,
            published_at=at,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "metric": self.metric,
            "dimensions": self.dimensions,
            "granularity": self.granularity,
            "window_start": self.window_start.isoformat() if self.window_start else None,
            "window_end": self.window_end.isoformat() if self.window_end else None,
            "window_label": self.window_label,
            "value": self.value,
            "unit": self.unit,
            "published_at": self.published_at.isoformat(),
        }
