"""The catalog as `panjereh up` runs it: its own process, the real broker and database.

In development the catalog loads its reference register at start when it is empty; an
agency then publishes a service that citizens find however they type, reports deliveries
over HTTP and Kafka, and the compacted topics alone rebuild the register.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey
from panjereh_agency import DeliveryReporter

from infra.platform import LocalPlatform
from services.catalog.reference import reference_agencies
from services.catalog.storage import CatalogReads
from shared.db import create_pool
from shared.events.catalog import DeliveryReported, delivery_event_id
from shared.registry import decode
from shared.topics import Topic, channel, dead_letter_of
from tests.e2e.delivery_load import issued
from tests.e2e.live.conftest import bearer
from tests.integration.kafka_helpers import header, read_all
from tests.slots import e2e_ports

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

PORTS = e2e_ports()


@pytest.fixture(scope="module")
async def client(platform: LocalPlatform) -> AsyncIterator[httpx.AsyncClient]:
    base = f"http://127.0.0.1:{PORTS.catalog}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        yield http


async def until(check: Any, timeout: float = 60) -> Any:
    """Poll an async check until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.5)


async def test_the_reference_register_is_loaded_at_start_in_development(
    client: httpx.AsyncClient,
) -> None:
    async def foreign_affairs() -> dict[str, Any] | None:
        response = await client.get("/agencies/foreign-affairs")
        return response.json() if response.status_code == 200 else None

    page = await until(foreign_affairs)
    assert page is not None, "the reference register was not loaded"
    assert page["connected_to_window"] is False
    found = await client.get("/services", params={"q": "كارنامه دانشآموز"})
    assert found.json()["results"][0]["service_id"] == "education.report-card"


async def test_an_agency_publishes_a_service_citizens_find_it_and_deliveries_flow(
    platform: LocalPlatform, client: httpx.AsyncClient, key: ECKey
) -> None:
    suffix = uuid.uuid4().hex[:8]
    service_id = f"education.final-exams-{suffix}"
    writer = bearer(key, "education", "catalog:write")
    body = {
        "service_id": service_id,
        "title_fa": f"مشاهده نتایج امتحانات نهایی دانش‌آموزان {suffix}",
        "title_en": f"Final exam results {suffix}",
        "description_fa": "دانش‌آموزان و والدین نتایج امتحانات نهایی را بدون مراجعه می‌بینند.",
        "description_en": "Pupils and parents see final exam results without a visit.",
        "category": "education",
        "audiences": ["citizens"],
        "channels": ["online"],
        "maturity": 5,
        "data_needs": [],
    }

    async def drafted() -> httpx.Response | None:
        # Until the catalog has read the key just published, tokens are refused (401).
        response = await client.post("/services", json=body, headers=writer)
        return response if response.status_code != 401 else None

    response = await until(drafted)
    assert response is not None
    assert response.status_code == 201, response.text
    published = await client.post(f"/services/{service_id}/publish", headers=writer)
    assert published.status_code == 200

    query = f"نتايج امتحانات دانشآموزان {suffix}"
    found = await client.get("/services", params={"q": query})
    assert found.json()["results"][0]["service_id"] == service_id

    reporter = bearer(key, "education", "catalog:deliveries")
    now = datetime.now(UTC)
    over_http = {
        "report_id": str(uuid.uuid4()),
        "agency": "education",
        "service_id": service_id,
        "channel": "online",
        "province": "IR-15",
        "started_at": (now - timedelta(minutes=2)).isoformat(),
        "finished_at": (now - timedelta(minutes=1)).isoformat(),
        "outcome": "completed",
    }
    assert (await client.post("/deliveries", json=over_http, headers=reporter)).status_code == 202
    over_kafka = DeliveryReported(
        report_id=uuid.uuid4(),
        agency="education",
        service_id=service_id,
        channel="online",
        province="IR-23",
        started_at=now - timedelta(minutes=3),
        finished_at=now - timedelta(minutes=2),
        outcome="completed",
    )
    # Tax reports a delivery of education's service, on its own channel.
    refused = over_kafka.model_copy(update={"report_id": uuid.uuid4(), "agency": "tax"})
    # Each agency's system, with the credentials the platform issued it.
    async with DeliveryReporter(await issued(platform, "education"), "education") as education:
        await education.report(over_kafka)
        await education.report(over_kafka)
    async with DeliveryReporter(await issued(platform, "tax"), "tax") as tax:
        await tax.report(refused)

    wanted = {
        str(delivery_event_id(uuid.UUID(over_http["report_id"]))),
        str(delivery_event_id(over_kafka.report_id)),
    }

    def mine(records: list[Any]) -> list[Any]:
        return [r for r in records if header(r, "event-id") in wanted]

    clean = await read_all(
        platform.kafka_admin, Topic.CATALOG_DELIVERIES, until=lambda rs: len(mine(rs)) >= 2
    )
    assert sorted(header(r, "event-id") or "" for r in mine(clean)) == sorted(wanted)

    def dead(records: list[Any]) -> list[Any]:
        return [r for r in records if str(refused.report_id).encode() in (r.value or b"")]

    dlq = await read_all(
        platform.kafka_admin,
        dead_letter_of(channel(Topic.AGENCY_DELIVERIES, "tax")),
        until=lambda rs: len(dead(rs)) >= 1,
    )
    [letter] = dead(dlq)
    assert (header(letter, "dlq-reason") or "").startswith("wrong_agency")


async def test_the_compacted_topics_alone_rebuild_the_register(platform: LocalPlatform) -> None:
    async def rebuilt_from(topic: Topic, want: dict[str, Any]) -> dict[str, Any]:
        """The topic's latest value by key, read until it equals `want` or 20 s have passed."""

        def latest(records: list[Any]) -> dict[str, Any]:
            return {r.key.decode(): decode(r.value, topic).payload for r in records}

        records = await read_all(
            platform.kafka_admin, topic, until=lambda rs: latest(rs) == want, timeout=20
        )
        return latest(records)

    pool = await create_pool(platform.database_url_for("catalog"), "catalog", max_size=1)
    try:

        async def drained() -> bool:
            pending: int = await pool.fetchval(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL"
            )
            return pending == 0

        # The platform is live (the traffic simulator registers services too): compare a
        # snapshot of the database with the topics, and take a new snapshot if the register
        # changed meanwhile, until both agree.
        for _ in range(5):
            assert await until(drained)
            async with pool.acquire() as connection:
                reads = CatalogReads(connection)
                services = {s.service_id: s for s in await reads.all_services()}
                agencies = {a.code: a for a in await reads.list_agencies()}
            rebuilt_services = await rebuilt_from(Topic.CATALOG_SERVICES, services)
            rebuilt_agencies = await rebuilt_from(Topic.CATALOG_AGENCIES, agencies)
            if rebuilt_services == services and rebuilt_agencies == agencies:
                break
    finally:
        await pool.close()

    assert len(agencies) == len(reference_agencies()) == 131
    assert rebuilt_services == services
    assert rebuilt_agencies == agencies
