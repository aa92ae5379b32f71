"""Figures of the national information exchange, from each finished transaction."""

from __future__ import annotations

from collections.abc import Iterable

from services.metrics.domain.figures import Cell, Counts, Figure, cells_in, dims
from services.metrics.domain.histogram import BOUNDS_MS, bucket_of, label, percentile
from services.metrics.domain.windows import Window, windows_of
from shared.events.exchange import TransactionRecorded
from shared.events.metrics import Granularity

TOTAL_WINDOWS: tuple[Granularity, ...] = ("minute", "hour", "day", "week", "quarter", "all_time")
BREAKDOWN_WINDOWS: tuple[Granularity, ...] = ("day", "all_time")

TRANSACTIONS = "exchange.transactions"
REFUSALS = "exchange.refusals"
DENIALS = "exchange.denials"
LATENCY_BUCKETS = "exchange.latency_bucket"
PERCENTILES = {
    "exchange.latency_p50": 0.50,
    "exchange.latency_p95": 0.95,
    "exchange.latency_p99": 0.99,
}


def latency_ms(transaction: TransactionRecorded) -> float:
    """End-to-end time of a transaction: the exchange's own plus the provider's."""
    return transaction.exchange_ms + (transaction.provider_ms or 0.0)


def increments(transaction: TransactionRecorded) -> list[Cell]:
    """The cells one transaction adds one to (its event time is `completed_at`)."""
    at = transaction.completed_at
    totals = windows_of(TOTAL_WINDOWS, at)
    breakdown = windows_of(BREAKDOWN_WINDOWS, at)
    parties = [
        dims(consumer=transaction.consumer),
        dims(data_service=transaction.data_service),
        dims(purpose=transaction.purpose),
    ]
    if transaction.provider is not None:
        parties.append(dims(provider=transaction.provider))
    cells = [
        *cells_in(TRANSACTIONS, totals, (), dims(outcome=transaction.outcome)),
        *cells_in(TRANSACTIONS, breakdown, *parties),
        *cells_in(LATENCY_BUCKETS, totals, dims(le=bucket_of(latency_ms(transaction)))),
    ]
    if transaction.outcome == "refused" and transaction.provider is not None:
        cells.extend(cells_in(REFUSALS, breakdown, (), dims(provider=transaction.provider)))
    if transaction.outcome == "denied":
        cells.extend(cells_in(DENIALS, breakdown, (), dims(consumer=transaction.consumer)))
    return cells


def figures(changed: Iterable[Cell], counts: Counts) -> list[Figure]:
    """What to publish after these cells changed: their counts and the percentiles."""
    out: list[Figure] = []
    latency_windows: set[Window] = set()
    for cell in changed:
        if cell.metric == LATENCY_BUCKETS:
            latency_windows.add(cell.window)
        else:
            out.append(Figure(cell, counts.value(cell), "count"))
    for window in sorted(latency_windows):
        histogram = {
            label(bound): counts.value(Cell(LATENCY_BUCKETS, dims(le=label(bound)), window))
            for bound in BOUNDS_MS
        }
        for metric, quantile in PERCENTILES.items():
            value = percentile(histogram, quantile)
            out.append(Figure(Cell(metric, (), window), round(value, 3), "milliseconds"))
    return out
