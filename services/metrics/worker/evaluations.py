"""The quarterly evaluation of agencies: each agency's scorecard per Jalali quarter.

The worker counts, per agency and quarter, what the evaluation's measures need from the
exchange's transactions and the catalog's deliveries (exactly once each, as every counter
of the worker: `counters.py`; a delivery reported twice has one event id and counts once,
through the deliveries module's record of ids seen), and keeps the catalog's register of
services (every revision, with when it was recorded, so a quarter is judged on the
register as it stood at its end) and agencies. The weights are the register's
`evaluation_weight`s of the measures' indicators, from the programme module's table.
It has no agent of its own: the agents of those topics (exchange, deliveries, adoption)
hand it each event in the same pass, so each record is decoded, and dead-lettered if it
must be, once.

When an input changed (at most every `EVALUATION_INTERVAL` seconds), and every
`RECHECK_INTERVAL` seconds (a quarter closes with the clock), it evaluates every quarter
(`domain/evaluations.py`) and publishes each agency's record that changed on
`metrics.evaluations`, keyed `agency|quarter`. The records are computed from state, so a
redelivered event, or publishing again, changes nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from services.metrics.domain import evaluations
from services.metrics.worker import adoption, deliveries, exchange, mirror, programme
from services.metrics.worker.app import app, partitions_of, table, tables_recovered
from services.metrics.worker.counters import Counters
from services.metrics.worker.publisher import Publication
from shared.envelope import Envelope
from shared.events.metrics import AgencyEvaluated
from shared.events.programme import IndicatorRecorded
from shared.logging import get_logger
from shared.topics import Topic

log = get_logger(__name__)

#: Seconds between evaluations while inputs change (each evaluates every quarter).
EVALUATION_INTERVAL = 2.0
#: Seconds between evaluations when nothing changed (a quarter closes with the clock).
RECHECK_INTERVAL = 60.0

exchange_counts = Counters(
    "evaluation-exchange-counters", partitions_of(Topic.EXCHANGE_TRANSACTIONS)
)
delivery_counts = Counters("evaluation-delivery-counters", partitions_of(Topic.CATALOG_DELIVERIES))
# Every revision of each service, as [recorded_at, revision, agency, maturity, published].
services = table(
    "evaluation-services", default=None, partitions=partitions_of(Topic.CATALOG_SERVICES)
)
# Each agency's entry (`evaluations.AgencyEntry` as JSON).
agencies = table(
    "evaluation-agencies", default=None, partitions=partitions_of(Topic.CATALOG_AGENCIES)
)
merged_services = mirror.merged_rows(services)
merged_agencies = mirror.merged_rows(agencies)


class _State:
    changed = True
    weights: dict[str, evaluations.Weighting] = {}  # noqa: RUF012


_state = _State()
_publication = Publication(Topic.METRICS_EVALUATIONS, "agency evaluations")


def _count_transaction(envelope: Envelope[Any], event: Any) -> None:
    for cell in evaluations.transaction_increments(envelope.payload):
        exchange_counts.stage(cell, event)


def _count_delivery(envelope: Envelope[Any], event: Any) -> None:
    # Called for a delivery's first record only: a report that reached the catalog twice
    # has one event id, and counts once here too.
    for cell in evaluations.delivery_increments(envelope.payload, envelope.occurred_at):
        delivery_counts.stage(cell, event)


def _exchange_batch_done() -> None:
    exchange_counts.write_staged()


def _delivery_batch_done() -> None:
    delivery_counts.write_staged()


def _follow_service(envelope: Envelope[Any], event: Any) -> None:
    service = envelope.payload
    history = _versions(services.get(service.service_id))
    version = evaluations.ServiceVersion.of(service, envelope.occurred_at)
    kept = evaluations.with_version(history, version)
    if kept is not history:
        stored = [_stored_version(v) for v in kept]
        mirror.keep(services, service.service_id, stored)


def _follow_agency(envelope: Envelope[Any], event: Any) -> None:
    agency = envelope.payload
    entry = evaluations.next_entry(_entry(agencies.get(agency.code)), agency, envelope.occurred_at)
    if entry is not None:
        stored = _stored_entry(entry)
        mirror.keep(agencies, agency.code, stored)


# Counted in the same pass as the figures: the source topics' agents call these.
exchange.followers.append(_count_transaction)
exchange.after_batch.append(_exchange_batch_done)
deliveries.followers.append(_count_delivery)
deliveries.after_batch.append(_delivery_batch_done)
adoption.service_followers.append(_follow_service)
adoption.agency_followers.append(_follow_agency)


def _stored_version(version: evaluations.ServiceVersion) -> list[Any]:
    return [
        version.recorded_at.isoformat(),
        version.revision,
        version.agency,
        version.maturity,
        version.published,
    ]


def _versions(stored: list[Any] | None) -> list[evaluations.ServiceVersion]:
    return [
        evaluations.ServiceVersion(
            datetime.fromisoformat(at), int(revision), str(agency), int(maturity), bool(published)
        )
        for at, revision, agency, maturity, published in stored or []
    ]


def _stored_entry(entry: evaluations.AgencyEntry) -> dict[str, Any]:
    return {
        "code": entry.code,
        "name_fa": entry.name_fa,
        "name_en": entry.name_en,
        "national": entry.national,
        "window_since": entry.window_since.isoformat() if entry.window_since else None,
        "entered": entry.entered.isoformat(),
        "left": entry.left.isoformat() if entry.left else None,
        "revision": entry.revision,
    }


def _entry(stored: dict[str, Any] | None) -> evaluations.AgencyEntry | None:
    if stored is None:
        return None
    return evaluations.AgencyEntry(
        code=stored["code"],
        name_fa=stored["name_fa"],
        name_en=stored["name_en"],
        national=bool(stored["national"]),
        window_since=date.fromisoformat(stored["window_since"]) if stored["window_since"] else None,
        entered=datetime.fromisoformat(stored["entered"]),
        left=datetime.fromisoformat(stored["left"]) if stored["left"] else None,
        revision=int(stored["revision"]),
    )


def weighting() -> dict[str, evaluations.Weighting]:
    """The register's weight and names of each measure's indicator (those it has)."""
    out = {}
    for code in evaluations.INDICATORS:
        stored = programme.indicators.get(code)
        if stored is not None:
            indicator = IndicatorRecorded.model_validate(stored)
            out[code] = evaluations.Weighting(
                indicator.evaluation_weight, indicator.name_fa, indicator.name_en
            )
    return out


def evaluate(now: datetime) -> list[AgencyEvaluated]:
    """Every evaluated agency's record in every quarter, as the tables stand."""
    # Both counter tables as one (their metrics do not overlap), read once: an evaluation
    # asks for every agency's every measure in every quarter.
    counts = exchange_counts.merged.snapshot() + delivery_counts.merged.snapshot()
    counted = [
        cell
        for metric in (
            evaluations.CONSUMER_REQUESTS,
            evaluations.PROVIDER_REQUESTS,
            evaluations.DELIVERIES,
        )
        for cell in counts.cells(metric)
    ]
    roster = [entry for entry in map(_entry, merged_agencies.values()) if entry is not None]
    histories = [_versions(stored) for stored in merged_services.values()]
    return evaluations.evaluate(counted, counts, roster, histories, weighting(), now)


async def publish_evaluations(now: datetime | None = None) -> int:
    """Publish each agency's record that changed since it was last published (from the
    merged copy: only the worker holding it has any)."""
    if not tables_recovered() or not mirror.views_current():
        return 0
    _state.changed = False
    return await _publication.publish_computed(
        lambda: ((payload.record_key(), payload) for payload in evaluate(now or datetime.now(UTC)))
    )


@app.timer(EVALUATION_INTERVAL)  # type: ignore[untyped-decorator]
async def _publish_when_changed() -> None:
    # The register's weights are read from the programme module's table: a change of them
    # (an operator's new weight) is seen here.
    weights = weighting()
    # Every view asked, so none keeps a change for later.
    touched = [
        view.take_touched()
        for view in (
            exchange_counts.merged,
            delivery_counts.merged,
            merged_services,
            merged_agencies,
        )
    ]
    if _state.changed or any(touched) or weights != _state.weights:
        _state.weights = weights
        await publish_evaluations()


@app.timer(RECHECK_INTERVAL)  # type: ignore[untyped-decorator]
async def _publish_on_interval() -> None:
    await publish_evaluations()
