"""The dashboard's data: latest windows in the headline, pivoted tables."""

from __future__ import annotations

from datetime import UTC, datetime

from services.metrics.domain.dashboard import build_dashboard
from services.metrics.domain.reference import load_reference
from services.metrics.domain.values import MetricValue
from services.metrics.domain.windows import window_from_label
from shared.events.metrics import Granularity

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _value(metric: str, label: str, value: float, **dimensions: str) -> MetricValue:
    granularity: Granularity = "all_time" if label == "all" else "day"
    window = window_from_label(granularity, label)
    return MetricValue(
        key=f"{metric}|{label}",
        metric=metric,
        dimensions=dimensions,
        granularity=granularity,
        window_start=window.start,
        window_end=window.end,
        window_label=label,
        value=value,
        unit="count",
        published_at=NOW,
    )


def test_the_headline_shows_the_latest_day_and_tables_pivot_by_agency_and_province() -> None:
    data = build_dashboard(
        [
            _value("exchange.transactions", "1403-01-01", 5),
            _value("exchange.transactions", "1403-01-02", 7),
            _value("exchange.transactions", "all", 12),
        ],
        {"transactions_per_day": [_value("exchange.transactions", "1403-01-01", 5)]},
        [
            _value("exchange.transactions", "all", 9, consumer="tax"),
            _value("exchange.refusals", "all", 2, provider="tax"),
            _value("identity.people_authenticated", "all", 40, province="IR-15"),
        ],
        load_reference(),
        NOW,
    )
    headline = {item["id"]: item for item in data["headline"]}
    assert headline["transactions"]["value"] == 12
    assert (
        headline["transactions_day"]["value"],
        headline["transactions_day"]["window_label"],
    ) == (7, "1403-01-02")
    assert headline["people_authenticated"]["value"] is None
    assert data["agencies"] == [{"agency": "tax", "requests_sent": 9, "refusals": 2}]
    lorestan = next(p for p in data["provinces"] if p["code"] == "IR-15")
    assert lorestan["people"] == 40
    assert lorestan["name_fa"] == "لرستان"
    assert len(data["provinces"]) == 31
    assert data["series"]["transactions_per_day"] == [{"label": "1403-01-01", "value": 5}]
    assert data["generated_at_jalali"].startswith("1404-10-11")
