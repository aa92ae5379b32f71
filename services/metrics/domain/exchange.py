"""Figures of the national information exchange, from each finished transaction."""

from __future__ import annotations

from collections.abc import Iterable

from services.metrics.domain.figures import Cell, Counts, Figure, cells_in, dims
from services.metrics.domain.histogram import BOUNDS_MS, bucket_of, label, percentile
from services.metrics.domain.windows import Window, windows_of
from shared.events.exchange import TransactionRecorded
from shared.events.metrics import Granularity

TOTAL_WINDOWS: tuple[Granularity, ...] = (
    "minute",
    "hour",
    "day",
    "week",
    "quarter",
    "year",
    "all_time",
)
BREAKDOWN_WINDOWS: tuple[Granularity, ...] = ("day", "all_time")
#: The periods an agency's use is counted in (the quarter is the evaluation's period).
USE_WINDOWS: tuple[Granularity, ...] = ("quarter", "year", "all_time")

TRANSACTIONS = "exchange.transactions"
REFUSALS = "exchange.refusals"
DENIALS = "exchange.denials"
LATENCY_BUCKETS = "exchange.latency_bucket"
#: Transactions an agency took part in, as consumer or provider (once if both).
AGENCY_TRANSACTIONS = "exchange.agency_transactions"
#: Agencies that used the exchange in a window: connected by use, not by a date.
AGENCIES_USING = "exchange.agencies_using"
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
    parties_of = {transaction.consumer, transaction.provider} - {None}
    cells.extend(
        cells_in(
            AGENCY_TRANSACTIONS,
            windows_of(USE_WINDOWS, at),
            *(dims(agency=str(agency)) for agency in sorted(parties_of, key=str)),
        )
    )
    if transaction.outcome == "refused" and transaction.provider is not None:
        cells.extend(cells_in(REFUSALS, breakdown, (), dims(provider=transaction.provider)))
    if transaction.outcome == "denied":
        cells.extend(cells_in(DENIALS, breakdown, (), dims(consumer=transaction.consumer)))
    return cells


def figures(changed: Iterable[Cell], counts: Counts, users: dict[Window, set[str]]) -> list[Figure]:
    """What to publish after these cells changed: their counts, the percentiles, and how
    many agencies used the exchange in each window touched.

    `users` is each window's agencies that used the exchange so far; it grows with the
    changed cells (counters only grow, so a changed cell is a used one). After a recovery
    every cell is changed once, which rebuilds it whole.
    """
    out: list[Figure] = []
    latency_windows: set[Window] = set()
    used_windows: set[Window] = set()
    for cell in changed:
        if cell.metric == LATENCY_BUCKETS:
            latency_windows.add(cell.window)
            continue
        out.append(Figure(cell, counts.value(cell), "count"))
        if cell.metric == AGENCY_TRANSACTIONS:
            users.setdefault(cell.window, set()).add(dict(cell.dimensions)["agency"])
            used_windows.add(cell.window)
    for window in sorted(used_windows):
        out.append(Figure(Cell(AGENCIES_USING, (), window), len(users[window]), "count"))
    for window in sorted(latency_windows):
        histogram = {
            label(bound): counts.value(Cell(LATENCY_BUCKETS, dims(le=label(bound)), window))
            for bound in BOUNDS_MS
        }
        for metric, quantile in PERCENTILES.items():
            value = percentile(histogram, quantile)
            out.append(Figure(Cell(metric, (), window), round(value, 3), "milliseconds"))
    return out
