"""What the analysts' dashboard shows, assembled from the projected figures (pure).

Headline figures are all-time values, or the latest window present for daily ones (so a
dashboard over past data still shows its last day); tables pivot per-agency and
per-province figures into rows; series are oldest first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from services.metrics.domain.reference import Reference
from services.metrics.domain.values import MetricValue
from services.metrics.domain.windows import jalali_date_text
from shared.reference.provinces import PROVINCES

# (id, metric, granularity): what the headline shows, in order.
HEADLINE: tuple[tuple[str, str, str], ...] = (
    ("people_authenticated", "identity.people_authenticated", "all_time"),
    ("adult_share", "identity.adult_population_share", "all_time"),
    ("transactions", "exchange.transactions", "all_time"),
    ("transactions_day", "exchange.transactions", "day"),
    ("latency_p95_day", "exchange.latency_p95", "day"),
    ("electronic_share", "adoption.electronic_share", "all_time"),
    ("smart_share", "adoption.smart_share", "all_time"),
    ("agencies_window_share", "adoption.agencies_window_share", "all_time"),
    ("agencies_exchange_share", "adoption.agencies_exchange_share", "all_time"),
    ("signins_day", "identity.signins", "day"),
    ("digital_share_day", "deliveries.digital_share", "day"),
    ("in_person_vs_baseline_day", "deliveries.in_person_vs_baseline", "day"),
)

# (id, metric, granularity, how many windows)
SERIES: tuple[tuple[str, str, str, int], ...] = (
    ("transactions_per_minute", "exchange.transactions", "minute", 60),
    ("transactions_per_day", "exchange.transactions", "day", 30),
    ("signins_per_day", "identity.signins", "day", 30),
    ("deliveries_per_day", "deliveries.count", "day", 30),
)

# (column, metric, dimension) of the agencies' table.
AGENCY_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("requests_sent", "exchange.transactions", "consumer"),
    ("requests_answered_for", "exchange.transactions", "provider"),
    ("refusals", "exchange.refusals", "provider"),
    ("denials", "exchange.denials", "consumer"),
    ("services", "adoption.services", "agency"),
    ("electronic_share", "adoption.electronic_share", "agency"),
    ("smart_share", "adoption.smart_share", "agency"),
    ("deliveries", "deliveries.count", "agency"),
    ("digital_share", "deliveries.digital_share", "agency"),
)

PROVINCE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("people", "identity.people_authenticated", "province"),
    ("adults", "identity.adults_authenticated", "province"),
    ("adult_share", "identity.adult_population_share", "province"),
    ("deliveries", "deliveries.count", "province"),
    ("digital_share", "deliveries.digital_share", "province"),
)

TABLE_METRICS = sorted({m for _, m, _ in AGENCY_COLUMNS + PROVINCE_COLUMNS})


def _headline(latest: Mapping[tuple[str, str], MetricValue]) -> list[dict[str, Any]]:
    items = []
    for ident, metric, granularity in HEADLINE:
        figure = latest.get((metric, granularity))
        items.append(
            {
                "id": ident,
                "metric": metric,
                "value": figure.value if figure else None,
                "unit": figure.unit if figure else None,
                "window_label": figure.window_label if figure else None,
            }
        )
    return items


def _pivot(
    figures: Iterable[MetricValue], columns: tuple[tuple[str, str, str], ...]
) -> dict[str, dict[str, float]]:
    wanted = {(metric, dimension): column for column, metric, dimension in columns}
    rows: dict[str, dict[str, float]] = {}
    for figure in figures:
        if len(figure.dimensions) != 1 or figure.granularity != "all_time":
            continue
        ((dimension, subject),) = figure.dimensions.items()
        column = wanted.get((figure.metric, dimension))
        if column is not None:
            rows.setdefault(subject, {})[column] = figure.value
    return rows


def build_dashboard(
    headline: Iterable[MetricValue],
    series: Mapping[str, list[MetricValue]],
    breakdowns: Iterable[MetricValue],
    reference: Reference,
    now: datetime,
) -> dict[str, Any]:
    """The dashboard's data: headline, series, agency and province tables, provenance.

    `headline` holds the dimensionless figures of the headline metrics (any windows; the
    latest window per metric and granularity is shown); `breakdowns` the all-time figures
    with one dimension.
    """
    latest: dict[tuple[str, str], MetricValue] = {}
    for figure in headline:
        if figure.dimensions:
            continue
        key = (figure.metric, figure.granularity)
        known = latest.get(key)
        if known is None or (figure.window_start or now) > (known.window_start or now):
            latest[key] = figure
    breakdown_list = list(breakdowns)
    agencies = _pivot(breakdown_list, AGENCY_COLUMNS)
    provinces = _pivot(breakdown_list, PROVINCE_COLUMNS)
    return {
        "generated_at": now.isoformat(),
        "generated_at_jalali": jalali_date_text(now),
        "headline": _headline(latest),
        "series": {
            ident: [{"label": f.window_label, "value": f.value} for f in series.get(ident, [])]
            for ident, _, _, _ in SERIES
        },
        "agencies": [{"agency": code, **values} for code, values in sorted(agencies.items())],
        "provinces": [
            {
                "code": p.code,
                "name_fa": p.name_fa,
                "name_en": p.name_en,
                "adult_population": reference.adults_by_province.get(p.code, 0),
                **provinces.get(p.code, {}),
            }
            for p in PROVINCES
        ],
        "reference": {"version": reference.version, "source": reference.source},
    }
