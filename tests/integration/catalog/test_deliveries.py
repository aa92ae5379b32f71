"""Service deliveries on the real broker: valid reports reach `catalog.deliveries` exactly
once, each kind of bad report reaches the dead-letter topic with its reason, and ingestion
goes on; the HTTP ingestion checks the same rules and queues through the outbox."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest
from aiokafka import ConsumerRecord
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.catalog import use_cases
from services.catalog.domain import AgencyEntry, Editor, ServiceEntry
from services.catalog.storage import CatalogStorage
from shared.envelope import Envelope
from shared.events.catalog import DeliveryRecorded, DeliveryReported, delivery_event_id
from shared.kafka import new_producer, publish
from shared.registry import decode
from shared.topics import Topic, channel, dead_letter_of
from shared.tracing import configure_tracing
from shared.unit_of_work import transaction
from tests.integration.catalog.conftest import Catalog, unique_code
from tests.integration.kafka_helpers import header, read_all

pytestmark = pytest.mark.integration


def dead_letters(agency: str) -> str:
    """Where the catalog refuses an agency's delivery reports: its own channel's twin."""
    return dead_letter_of(channel(Topic.AGENCY_DELIVERIES, agency))


@dataclass(frozen=True)
class Register:
    """One test's own agencies and services."""

    agency: str
    other: str
    provincial: str

    @property
    def published(self) -> str:
        return f"{self.agency}.published"

    @property
    def retired(self) -> str:
        return f"{self.agency}.retired"

    @property
    def draft(self) -> str:
        return f"{self.agency}.draft"

    @property
    def provincial_service(self) -> str:
        return f"{self.provincial}.counter"


async def seed(catalog: Catalog) -> Register:
    ids = Register(agency=unique_code(), other=unique_code(), provincial=unique_code())
    editor = Editor("operator:tests", operator=True)
    async with transaction(catalog.runtime.pool, CatalogStorage) as work:
        for code, province in ((ids.agency, None), (ids.other, None), (ids.provincial, "IR-15")):
            agency = AgencyEntry(code=code, name_fa="دستگاه", name_en="Agency", province=province)
            await use_cases.register_agency(work, agency, editor)
        statuses: list[tuple[str, Literal["published", "retired"] | None]] = [
            (ids.published, "published"),
            (ids.retired, "retired"),
            (ids.draft, None),
            (ids.provincial_service, "published"),
        ]
        for service_id, status in statuses:
            entry = ServiceEntry(
                service_id=service_id,
                title_fa="خدمت",
                title_en="Service",
                description_fa="شرح",
                description_en="About",
                category="test",
                audiences=["citizens"],
                channels=["online", "in_person"],
                maturity=4,
            )
            await use_cases.draft_service(work, entry, editor)
            if status is not None:
                await use_cases.publish_service(work, service_id, editor)
            if status == "retired":
                await use_cases.retire_service(work, service_id, editor)
    for code in (ids.agency, ids.other, ids.provincial):
        await catalog.channel_of(code)
    return ids


def report(agency: str, service_id: str, **overrides: Any) -> DeliveryReported:
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "report_id": uuid.uuid4(),
        "agency": agency,
        "service_id": service_id,
        "channel": "online",
        "province": "IR-15",
        "started_at": now - timedelta(minutes=3),
        "finished_at": now - timedelta(minutes=1),
        "outcome": "completed",
        "citizen": "9f2c" + "0" * 60,
    }
    values.update(overrides)
    return DeliveryReported(**values)


def wrapped(payload: DeliveryReported) -> Envelope[DeliveryReported]:
    return Envelope.wrap(payload, source=payload.agency, subject=payload.service_id)


def tampered(envelope: Envelope[DeliveryReported], **payload: str) -> bytes:
    """The envelope's bytes with payload fields overwritten, bypassing validation."""
    document = json.loads(envelope.to_bytes())
    document["payload"].update(payload)
    return json.dumps(document).encode()


async def deliveries_of(
    catalog: Catalog, report_ids: set[uuid.UUID], count: int
) -> list[ConsumerRecord[bytes, bytes]]:
    def mine(records: list[ConsumerRecord[bytes, bytes]]) -> list[ConsumerRecord[bytes, bytes]]:
        wanted = {str(delivery_event_id(r)) for r in report_ids}
        return [r for r in records if header(r, "event-id") in wanted]

    records = await read_all(
        catalog.observer,
        Topic.CATALOG_DELIVERIES,
        until=lambda rs: len(mine(rs)) >= count,
    )
    return mine(records)


async def dead_letters_of(
    catalog: Catalog, agencies: set[str], count: int
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every report refused on these agencies' dead-letter topics (this test's alone),
    read until there are `count`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while True:
        found: list[ConsumerRecord[bytes, bytes]] = []
        for agency in sorted(agencies):
            found += await read_all(catalog.observer, dead_letters(agency), timeout=5)
        if len(found) >= count or loop.time() > deadline:
            return found
        await asyncio.sleep(0.5)


@pytest.mark.timeout(120)
async def test_valid_deliveries_reach_the_clean_topic_once_and_bad_ones_the_dlq_with_reasons(
    catalog: Catalog,
) -> None:
    ids = await seed(catalog)
    first, second = report(ids.agency, ids.published), report(ids.agency, ids.published)
    first_envelope = wrapped(first)
    # The same report sent again by the agency's system, in a new envelope.
    resent = wrapped(first)
    bad = {
        "unknown_service": wrapped(report(ids.agency, f"{ids.agency}.nothing")),
        "service_retired": wrapped(report(ids.agency, ids.retired)),
        "service_not_published": wrapped(report(ids.agency, ids.draft)),
        "wrong_agency": wrapped(report(ids.other, ids.published)),
        "channel_not_offered": wrapped(report(ids.agency, ids.published, channel="pishkhan")),
        "outside_agency_scope": wrapped(
            report(ids.provincial, ids.provincial_service, province="IR-23")
        ),
        "future": wrapped(
            report(ids.agency, ids.published, finished_at=datetime.now(UTC) + timedelta(days=1))
        ),
    }
    earlier = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    raw = {
        "before_started": tampered(wrapped(report(ids.other, ids.published)), finished_at=earlier),
        "unknown_province": tampered(wrapped(report(ids.other, ids.published)), province="IR-99"),
    }
    producer = new_producer(catalog.observer, client_id="tests")
    await producer.start()
    try:
        await publish(producer, first_envelope)
        await publish(producer, first_envelope)  # a redelivery of the very same event
        for envelope in bad.values():
            await publish(producer, envelope)
        for value in raw.values():
            await producer.send_and_wait(
                channel(Topic.AGENCY_DELIVERIES, ids.other), value, key=ids.published.encode()
            )
        await publish(producer, resent)
        await publish(producer, wrapped(second))  # after every bad one: ingestion goes on
    finally:
        await producer.stop()

    recorded = await deliveries_of(catalog, {first.report_id, second.report_id}, 2)
    events: list[Envelope[Any]] = [decode(r.value, Topic.CATALOG_DELIVERIES) for r in recorded]
    assert sorted(str(e.payload.report_id) for e in events) == sorted(
        [str(first.report_id), str(second.report_id)]
    )
    assert all(isinstance(e.payload, DeliveryRecorded) for e in events)
    assert all(e.id == delivery_event_id(e.payload.report_id) for e in events)
    assert all(e.payload.maturity == 4 for e in events)
    assert all(r.key == ids.published.encode() for r in recorded)

    dead = await dead_letters_of(
        catalog, {ids.agency, ids.other, ids.provincial}, len(bad) + len(raw)
    )
    reasons = {header(r, "event-id"): header(r, "dlq-reason") or "" for r in dead}
    for code, envelope in bad.items():
        expected = "impossible_times" if code == "future" else code
        assert reasons[str(envelope.id)].startswith(expected), (code, reasons[str(envelope.id)])
    raw_reasons = sorted(
        header(r, "dlq-reason") or "" for r in dead if header(r, "event-id") is None
    )
    assert len(raw_reasons) == 2
    assert any("finished_at is before started_at" in reason for reason in raw_reasons)
    assert any("IR-99" in reason for reason in raw_reasons)
    assert all(header(r, "dlq-consumer") == "catalog" for r in dead)

    counted = await catalog.runtime.pool.fetchval(
        "SELECT count(*) FROM deliveries WHERE report_id = ANY($1::uuid[])",
        [first.report_id, second.report_id],
    )
    assert counted == 2


def body(payload: DeliveryReported) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(payload.model_dump_json())
    return document


async def test_http_ingestion_checks_synchronously_and_queues_valid_reports_once(
    catalog: Catalog,
) -> None:
    ids = await seed(catalog)
    reporter = catalog.signer.headers(ids.agency, "catalog:deliveries")
    valid = report(ids.agency, ids.published)
    accepted = await catalog.client.post("/deliveries", json=body(valid), headers=reporter)
    assert accepted.status_code == 202, accepted.text
    again = await catalog.client.post("/deliveries", json=body(valid), headers=reporter)
    assert again.status_code == 202

    retired = await catalog.client.post(
        "/deliveries", json=body(report(ids.agency, ids.retired)), headers=reporter
    )
    assert retired.status_code == 422
    assert retired.json()["code"] == "service_retired"
    assert retired.json()["messages"]["fa"]
    backwards = body(report(ids.agency, ids.published))
    backwards["finished_at"] = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    refused = await catalog.client.post("/deliveries", json=backwards, headers=reporter)
    assert refused.status_code == 422
    assert refused.json()["code"] == "impossible_times"
    foreign = await catalog.client.post(
        "/deliveries", json=body(report(ids.other, ids.published)), headers=reporter
    )
    assert foreign.status_code == 403
    unscoped = await catalog.client.post(
        "/deliveries",
        json=body(valid),
        headers=catalog.signer.headers(ids.agency, "catalog:write"),
    )
    assert unscoped.status_code == 403

    batch_valid = [report(ids.agency, ids.published) for _ in range(2)]
    batch = [body(r) for r in batch_valid] + [body(report(ids.agency, f"{ids.agency}.none"))]
    answered = await catalog.client.post(
        "/deliveries/batch", json={"reports": batch}, headers=reporter
    )
    assert answered.status_code == 202, answered.text
    assert answered.json()["accepted"] == [str(r.report_id) for r in batch_valid]
    [refusal] = answered.json()["refused"]
    assert (refusal["index"], refusal["code"]) == (2, "unknown_service")
    all_bad = await catalog.client.post(
        "/deliveries/batch", json={"reports": batch[2:]}, headers=reporter
    )
    assert all_bad.status_code == 422
    assert all_bad.json()["errors"][0]["code"] == "unknown_service"

    wanted = {valid.report_id, *(r.report_id for r in batch_valid)}
    recorded = await deliveries_of(catalog, wanted, 3)
    assert sorted(header(r, "event-id") or "" for r in recorded) == sorted(
        str(delivery_event_id(report_id)) for report_id in wanted
    )


async def test_a_recorded_delivery_continues_the_trace_of_its_report(catalog: Catalog) -> None:
    # Spans recorded (a trace is only propagated once something exports), kept nowhere.
    processor = SimpleSpanProcessor(InMemorySpanExporter())
    configure_tracing("tests", processors=[processor])
    ids = await seed(catalog)
    reported = report(ids.agency, ids.published)
    producer = new_producer(catalog.observer, client_id="tests")
    await producer.start()
    try:
        with trace.get_tracer("tests").start_as_current_span("agency system") as span:
            await publish(producer, wrapped(reported))
    finally:
        await producer.stop()
        processor.shutdown()
    trace_id = format(span.get_span_context().trace_id, "032x")
    [recorded] = await deliveries_of(catalog, {reported.report_id}, 1)
    assert (header(recorded, "traceparent") or "").split("-")[1] == trace_id
