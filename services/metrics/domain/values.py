"""A figure as the service holds it: the latest value published for one record key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


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
