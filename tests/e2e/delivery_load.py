"""Delivery reports under load for the e2e tests that break things under them: an agency
registered through the catalog's API, reporting on its own channel with the agency package
for as long as a test says, and the checks that every report reached the figures once.

The path is the production one: `DeliveryReporter` → the agency's channel → the catalog
(which records each report once) → `catalog.deliveries` → the metrics worker → the
all-time figure on `metrics.deliveries`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
from joserfc.jwk import ECKey
from panjereh_agency import DeliveryReporter

from infra.platform import LocalPlatform
from shared.events.catalog import DeliveryReported
from shared.kafka_access import KafkaAccess
from shared.principals import agency_principal
from shared.topics import Topic
from tests.database import fetch_rows
from tests.integration.exchange.helpers import eventually
from tests.integration.metrics.worker_process import wait_for_values
from tests.tokens import agency_bearer, new_issuer_key, publish_issuer_key

#: The agency whose systems keep the register of agencies (the catalog's default).
OPERATOR = "ito"


@dataclass(frozen=True)
class Tokens:
    """Identity-shaped tokens of a key published on `identity.issuer-keys` (the tests
    stand in for identity)."""

    issuer: str
    key: ECKey

    @classmethod
    async def published(cls, kafka_admin: KafkaAccess, issuer: str) -> Tokens:
        key, record = new_issuer_key(issuer, f"e2e-deliveries-{uuid.uuid4().hex[:8]}")
        await publish_issuer_key(kafka_admin, record, client_id="e2e-deliveries")
        return cls(issuer, key)

    def bearer(self, agency: str, scope: str) -> dict[str, str]:
        return agency_bearer(self.key, self.issuer, agency, scope, seconds=900)


def service_entry(service_id: str) -> dict[str, object]:
    return {
        "service_id": service_id,
        "title_fa": "گواهی آزمون پایداری",
        "title_en": "Durability test certificate",
        "description_fa": "خدمتی که آزمون خرابی کارگزار گزارش می‌دهد.",
        "description_en": "A service the broker failure test reports deliveries of.",
        "category": "tests",
        "audiences": ["citizens"],
        "channels": ["online"],
        "maturity": 4,
        "data_needs": [],
    }


async def register_agency_with_a_service(
    catalog: httpx.AsyncClient, tokens: Tokens, code: str
) -> str:
    """Register agency `code` (as the operator) and publish a service of its own (as the
    agency) through the catalog's API; the service's id."""
    operator = tokens.bearer(OPERATOR, "catalog:write")
    body = {"code": code, "name_fa": "دستگاه آزمون", "name_en": "Test agency"}

    async def registered() -> httpx.Response | None:
        # Until the catalog has read the key just published, tokens are refused (401).
        response = await catalog.post("/agencies", json=body, headers=operator)
        return response if response.status_code != 401 else None

    response = await eventually(registered, timeout=90)
    assert response.status_code == 201, response.text
    service_id = f"{code}.certificate"
    agency = tokens.bearer(code, "catalog:write")
    drafted = await catalog.post("/services", json=service_entry(service_id), headers=agency)
    assert drafted.status_code == 201, drafted.text
    published = await catalog.post(f"/services/{service_id}/publish", headers=agency)
    assert published.status_code == 200, published.text
    return service_id


@dataclass
class Reporting:
    """An agency's system reporting deliveries at a steady rate until `stop()`. A report
    the broker did not acknowledge is sent again, the same report, until it is: so every
    report in `reported` reached the broker, some perhaps twice (the catalog records a
    report once by its id)."""

    access: KafkaAccess
    agency: str
    service_id: str
    rate_per_second: float
    reported: list[uuid.UUID] = field(default_factory=list)
    #: When the broker acknowledged each report (time.monotonic()).
    acknowledged_at: list[float] = field(default_factory=list)
    resent: int = 0
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> list[uuid.UUID]:
        """Stop after the report in hand; every report acknowledged."""
        assert self._task is not None, "reporting never started"
        self._stopping.set()
        await asyncio.wait_for(self._task, 180)
        return self.reported

    async def _run(self) -> None:
        async with DeliveryReporter(self.access, self.agency) as reporter:
            while not self._stopping.is_set():
                report = self._next()
                while True:
                    try:
                        await reporter.report(report)
                        break
                    except Exception:  # not acknowledged: perhaps written, so the same again
                        self.resent += 1
                        await asyncio.sleep(0.5)
                self.reported.append(report.report_id)
                self.acknowledged_at.append(time.monotonic())
                await asyncio.sleep(1 / self.rate_per_second)

    def _next(self) -> DeliveryReported:
        now = datetime.now(UTC)
        return DeliveryReported(
            report_id=uuid.uuid4(),
            agency=self.agency,
            service_id=self.service_id,
            channel="online",
            province="IR-15",
            started_at=now - timedelta(minutes=2),
            finished_at=now - timedelta(minutes=1),
            outcome="completed",
        )


async def issued(platform: LocalPlatform, agency: str, timeout: float = 180) -> KafkaAccess:
    """The credentials the access manager issued a registered agency (at first start it
    provisions every reference agency at once)."""
    path = platform.credentials_file(agency_principal(agency))

    async def written() -> bool:
        return path.exists()

    await eventually(written, timeout=timeout)
    return KafkaAccess.read(path)


async def assert_each_report_counted_once(
    admin_database_url: str,
    kafka_admin: KafkaAccess,
    agency: str,
    reported: list[uuid.UUID],
    timeout: float = 180,
) -> None:
    """The catalog recorded every report exactly once, and the worker's all-time figure of
    the agency's deliveries is their number: nothing lost, nothing counted twice."""
    assert reported, "no delivery was reported"
    deadline = time.monotonic() + timeout

    async def recorded() -> list[str] | None:
        rows = await fetch_rows(
            admin_database_url,
            "SELECT report_id::text AS id FROM catalog.deliveries WHERE agency = $1",
            agency,
        )
        ids = [row["id"] for row in rows]
        return ids if len(ids) >= len(reported) else None

    ids = await eventually(recorded, timeout=timeout)
    assert sorted(ids) == sorted(str(report) for report in reported)
    key = f"deliveries.count|agency={agency}|all_time:all"
    figure = await wait_for_values(
        kafka_admin,
        Topic.METRICS_DELIVERIES.value,
        {key: float(len(reported))},
        timeout=max(deadline - time.monotonic(), 30.0),
    )
    assert figure == {key: float(len(reported))}
