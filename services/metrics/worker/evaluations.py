"""The quarterly evaluation of agencies: each agency's scorecard per Jalali quarter.

The worker counts, per agency and quarter, what the evaluation's measures need from the
exchange's transactions and the catalog's deliveries (exactly once each, as every counter
of the worker: `counters.py`; a delivery reported twice has one event id and counts once,
through the deliveries module's record of ids seen), and keeps the catalog's register of
services (every revision, with when it was recorded, so a quarter is judged on the
register as it stood at its end) and agencies. The weights are the register's
`evaluation_weight`s of the measures' indicators, from the programme module's table.

When an input changed (at most every `EVALUATION_INTERVAL` seconds), and every
`RECHECK_INTERVAL` seconds (a quarter closes with the clock), it evaluates every quarter
(`domain/evaluations.py`) and publishes each agency's record that changed on
`metrics.evaluations`, keyed `agency|quarter`. The records are computed from state, so a
redelivered event, or publishing again, changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

import faust

from services.metrics.domain import evaluations
from services.metrics.domain.figures import Cell
from services.metrics.worker import deliveries, programme
from services.metrics.worker.app import app, decoded, partitions_of, source_topic
from services.metrics.worker.counters import BATCH_SIZE, BATCH_WITHIN_SECONDS, Counters
from services.metrics.worker.exchange import transactions
from shared.envelope import Envelope
from shared.events.catalog import AgencyRecorded, DeliveryRecorded, ServiceRecorded
from shared.events.exchange import TransactionRecorded
from shared.events.metrics import AgencyEvaluated
from shared.events.programme import IndicatorRecorded
from shared.kafka import event_headers
from shared.logging import get_logger
from shared.topics import Topic

log = get_logger(__name__)

#: Seconds between evaluations while inputs change (each evaluates every quarter).
EVALUATION_INTERVAL = 2.0
#: Seconds between evaluations when nothing changed (a quarter closes with the clock).
RECHECK_INTERVAL = 60.0

services_topic = source_topic(Topic.CATALOG_SERVICES)
agencies_topic = source_topic(Topic.CATALOG_AGENCIES)

exchange_counts = Counters(
    "evaluation-exchange-counters", partitions_of(Topic.EXCHANGE_TRANSACTIONS)
)
delivery_counts = Counters("evaluation-delivery-counters", partitions_of(Topic.CATALOG_DELIVERIES))
# Every revision of each service, as [recorded_at, revision, agency, maturity, published].
services = app.Table(
    "evaluation-services", default=None, partitions=partitions_of(Topic.CATALOG_SERVICES)
)
# Each agency's entry (`evaluations.AgencyEntry` as JSON).
agencies = app.Table(
    "evaluation-agencies", default=None, partitions=partitions_of(Topic.CATALOG_AGENCIES)
)


class _State:
    changed = True
    published: dict[str, str] = {}  # noqa: RUF012  (module state, one worker)
    recovered_generation: object | None = None
    weights: dict[str, evaluations.Weighting] = {}  # noqa: RUF012


_state = _State()


@app.agent(transactions)
async def count_transactions(stream: faust.StreamT[bytes]) -> None:
    async for batch in stream.take_events(BATCH_SIZE, BATCH_WITHIN_SECONDS):  # type: ignore[attr-defined]
        for event in batch:
            envelope = await decoded(event)
            if envelope is None or not isinstance(envelope.payload, TransactionRecorded):
                continue
            for cell in evaluations.transaction_increments(envelope.payload):
                exchange_counts.stage(cell, event)
        exchange_counts.write_staged()
        _state.changed = True


@app.agent(deliveries.deliveries_topic)
async def count_deliveries(stream: faust.StreamT[bytes]) -> None:
    async for batch in stream.take_events(BATCH_SIZE, BATCH_WITHIN_SECONDS):  # type: ignore[attr-defined]
        for event in batch:
            envelope = await decoded(event)
            if envelope is None or not isinstance(envelope.payload, DeliveryRecorded):
                continue
            # The same record of ids the deliveries module keeps: a report that reached the
            # catalog twice has one event id, and counts once here too.
            if not deliveries.seen.is_first(str(envelope.id), event):
                continue
            cells = evaluations.delivery_increments(envelope.payload, envelope.occurred_at)
            for cell in cells:
                delivery_counts.stage(cell, event)
        delivery_counts.write_staged()
        _state.changed = True


@app.agent(services_topic)
async def follow_services(stream: faust.StreamT[bytes]) -> None:
    async for event in stream.events():
        envelope = await decoded(event)
        if envelope is None or not isinstance(envelope.payload, ServiceRecorded):
            continue
        service = envelope.payload
        history = _versions(services.get(service.service_id))
        version = evaluations.ServiceVersion.of(service, envelope.occurred_at)
        kept = evaluations.with_version(history, version)
        if kept is not history:
            services[service.service_id] = [_stored_version(v) for v in kept]
            _state.changed = True


@app.agent(agencies_topic)
async def follow_agencies(stream: faust.StreamT[bytes]) -> None:
    async for event in stream.events():
        envelope = await decoded(event)
        if envelope is None or not isinstance(envelope.payload, AgencyRecorded):
            continue
        agency = envelope.payload
        entry = evaluations.next_entry(
            _entry(agencies.get(agency.code)), agency, envelope.occurred_at
        )
        if entry is not None:
            agencies[agency.code] = _stored_entry(entry)
            _state.changed = True


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


class _Counts:
    """Both counter tables, read as one (their metrics do not overlap)."""

    def value(self, cell: Cell) -> float:
        return exchange_counts.value(cell) + delivery_counts.value(cell)

    def cells(self, metric: str) -> Iterable[Cell]:
        return [*exchange_counts.cells(metric), *delivery_counts.cells(metric)]


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
    counts = _Counts()
    counted = [
        cell
        for metric in (
            evaluations.CONSUMER_REQUESTS,
            evaluations.PROVIDER_REQUESTS,
            evaluations.DELIVERIES,
        )
        for cell in counts.cells(metric)
    ]
    roster = [entry for entry in map(_entry, list(agencies.values())) if entry is not None]
    histories = [_versions(stored) for stored in list(services.values())]
    return evaluations.evaluate(counted, counts, roster, histories, weighting(), now)


async def publish_evaluations(now: datetime | None = None) -> int:
    """Publish each agency's record that changed since it was last published."""
    recovery = getattr(app.tables, "recovery")  # noqa: B009  (not in Faust's type stubs)
    if app.in_recovery or not recovery.completed.is_set():
        return 0
    generation = app.consumer_generation_id
    if _state.recovered_generation != generation:
        # After a (re)start or rebalance the last publication may have been cut short.
        _state.recovered_generation = generation
        _state.published.clear()
    _state.changed = False
    sent = 0
    for payload in evaluate(now or datetime.now(UTC)):
        key = payload.record_key()
        text = payload.model_dump_json()
        if _state.published.get(key) == text:
            continue
        envelope = Envelope.wrap(payload, source="metrics-worker", subject=key)
        await app.producer.send(
            Topic.METRICS_EVALUATIONS.value,
            envelope.key(),
            envelope.to_bytes(),
            partition=None,
            timestamp=None,
            headers=event_headers(envelope),
        )
        _state.published[key] = text
        sent += 1
    if sent:
        await app.producer.flush()
        log.info("agency evaluations published", records=sent)
    return sent


@app.timer(EVALUATION_INTERVAL)  # type: ignore[untyped-decorator]
async def _publish_when_changed() -> None:
    # The register's weights are read from the programme module's table: a change of them
    # (an operator's new weight) is seen here.
    weights = weighting()
    if _state.changed or weights != _state.weights:
        _state.weights = weights
        await publish_evaluations()


@app.timer(RECHECK_INTERVAL)  # type: ignore[untyped-decorator]
async def _publish_on_interval() -> None:
    await publish_evaluations()
