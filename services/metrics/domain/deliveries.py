"""Figures of service deliveries: by channel, agency, service and province; take-up."""

from __future__ import annotations

from collections.abc import Iterable

from services.metrics.domain.figures import Cell, Counts, Dimensions, Figure, cells_in, dims, ratio
from services.metrics.domain.reference import Reference
from services.metrics.domain.windows import windows_of
from shared.events.catalog import DeliveryRecorded
from shared.events.metrics import Granularity

TOTAL_WINDOWS: tuple[Granularity, ...] = ("hour", "day", "week", "quarter", "year", "all_time")
BREAKDOWN_WINDOWS: tuple[Granularity, ...] = ("day", "all_time")

DELIVERIES = "deliveries.count"
DIGITAL_SHARE = "deliveries.digital_share"
COMPLETION_RATE = "deliveries.completion_rate"
IN_PERSON_VS_BASELINE = "deliveries.in_person_vs_baseline"
# The scopes whose online share and completion rate are published.
_SCOPES = ("agency", "province")


def increments(delivery: DeliveryRecorded) -> list[Cell]:
    """The cells one delivery adds one to (its event time is `finished_at`)."""
    at = delivery.finished_at
    totals = windows_of(TOTAL_WINDOWS, at)
    breakdown = windows_of(BREAKDOWN_WINDOWS, at)
    return [
        *cells_in(
            DELIVERIES, totals, (), dims(channel=delivery.channel), dims(outcome=delivery.outcome)
        ),
        *cells_in(
            DELIVERIES,
            breakdown,
            dims(agency=delivery.agency),
            dims(service=delivery.service_id),
            dims(province=delivery.province),
            dims(province=delivery.province, channel=delivery.channel),
            dims(agency=delivery.agency, channel=delivery.channel),
            dims(agency=delivery.agency, outcome=delivery.outcome),
        ),
    ]


def _scope(dimensions: Dimensions) -> Dimensions | None:
    """The scope (national, an agency, a province) whose rates a changed cell affects."""
    values = dict(dimensions)
    for name in _SCOPES:
        if name in values:
            return dims(**{name: values[name]})
    if set(values) <= {"channel", "outcome"}:
        return ()
    return None


def figures(changed: Iterable[Cell], counts: Counts, reference: Reference) -> list[Figure]:
    """What to publish after these cells changed: counts, take-up, completion, visits."""
    out: list[Figure] = []
    scopes: set[Cell] = set()
    for cell in changed:
        out.append(Figure(cell, counts.value(cell), "count"))
        scope = _scope(cell.dimensions)
        if scope is not None:
            scopes.add(Cell(DELIVERIES, scope, cell.window))
    for total_cell in sorted(scopes):
        total = counts.value(total_cell)
        scope = total_cell.dimensions
        online = counts.value(
            total_cell.with_metric(DELIVERIES, dims(**dict(scope), channel="online"))
        )
        out.append(Figure(total_cell.with_metric(DIGITAL_SHARE), ratio(online, total), "ratio"))
        if scope == () or scope[0][0] == "agency":
            completed = counts.value(
                total_cell.with_metric(DELIVERIES, dims(**dict(scope), outcome="completed"))
            )
            out.append(
                Figure(total_cell.with_metric(COMPLETION_RATE), ratio(completed, total), "ratio")
            )
        if scope == () and total_cell.window.granularity == "day":
            in_person = counts.value(total_cell.with_metric(DELIVERIES, dims(channel="in_person")))
            out.append(
                Figure(
                    total_cell.with_metric(IN_PERSON_VS_BASELINE),
                    ratio(in_person, reference.in_person_visits_per_day),
                    "ratio",
                )
            )
    return out
