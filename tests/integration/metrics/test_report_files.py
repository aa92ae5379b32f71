"""Report files on the real broker and database: a file kept is served at its path with
its media type, each revision stays reachable, and every revision (never the same
content twice) is announced on programme.reports through the outbox."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime

import httpx
import pytest
from aiokafka import ConsumerRecord

from services.metrics import documents
from services.metrics.bootstrap import build
from services.metrics.settings import MetricsSettings
from services.metrics.storage import ReportFilesStorage
from shared.events.programme import ReportPublished
from shared.kafka_access import KafkaAccess
from shared.registry import decode
from shared.runtime import Runtime
from shared.topics import Topic
from shared.unit_of_work import transaction
from tests.integration.kafka_helpers import read_all

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def service(
    credentials_file: Callable[[str], str], database_urls: Mapping[str, str]
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    settings = MetricsSettings(
        kafka_credentials_file=credentials_file("metrics"),
        database_url=database_urls["metrics"],
    ).model_copy(update={"load_reference_when_empty": False})
    app = build(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://metrics") as client:
            yield client, app.state.runtime


async def announced(observer: KafkaAccess, key: str, count: int) -> list[ReportPublished]:
    def mine(records: list[ConsumerRecord[bytes, bytes]]) -> list[bytes]:
        return [r.value for r in records if r.key == key.encode() and r.value is not None]

    records = await read_all(
        observer, Topic.PROGRAMME_REPORTS, until=lambda rs: len(mine(rs)) >= count
    )
    payloads = [decode(value, Topic.PROGRAMME_REPORTS).payload for value in mine(records)]
    assert all(isinstance(p, ReportPublished) for p in payloads)
    return payloads  # type: ignore[return-value]  # checked just above


async def test_a_kept_file_is_served_announced_and_revised_only_when_it_changes(
    service: tuple[httpx.AsyncClient, Runtime], kafka_admin: KafkaAccess
) -> None:
    client, runtime = service
    # A quarter no other test uses: reruns on the same database start from nothing.
    period = f"{random.randint(1300, 1399)}-Q{random.randint(1, 4)}"
    await runtime.pool.execute("DELETE FROM report_files WHERE period = $1", period)
    pdf = await documents.render_pdf(
        '<html lang="fa" dir="rtl"><body><h1>ارزیابی فصلی دستگاه‌ها</h1></body></html>'
    )
    now = datetime.now(UTC)
    for content in (pdf, pdf, pdf + b"\n% corrected"):
        async with transaction(runtime.pool, ReportFilesStorage) as work:
            await documents.keep_file(work, "agency-evaluation", period, None, "pdf", content, now)

    path = f"/api/reports/agency-evaluation/{period}.pdf"
    latest = await client.get(path)
    assert latest.status_code == 200
    assert latest.headers["content-type"] == "application/pdf"
    assert latest.headers["x-report-revision"] == "2"
    assert latest.content == pdf + b"\n% corrected"
    assert latest.headers["etag"] == f'"{documents.sha256_of(latest.content)}"'
    first = await client.get(path, params={"revision": 1})
    assert (first.status_code, first.content) == (200, pdf)

    records = await announced(kafka_admin, f"agency-evaluation|{period}||pdf", 2)
    assert [(r.revision, r.size, r.path) for r in records] == [
        (1, len(pdf), path),
        (2, len(pdf) + len(b"\n% corrected"), path),
    ]

    missing = await client.get(path, params={"revision": 3}, headers={"accept-language": "en"})
    assert missing.status_code == 404
    assert missing.json()["code"] == "report_file_not_found"
    assert set(missing.json()["messages"]) == {"fa", "en"}


async def test_a_malformed_report_address_is_refused_with_a_reason(
    service: tuple[httpx.AsyncClient, Runtime],
) -> None:
    client, _ = service
    for path in (
        "/api/reports/agency-evaluation/1405-Q3.docx",
        "/api/reports/league/1405-W36.pdf",
        "/api/reports/national-week/next-week.pdf",
        "/api/reports/province-week/1405-W36/IR 15.pdf",
    ):
        answer = await client.get(path)
        assert answer.status_code == 422, path
        assert answer.headers["content-type"] == "application/problem+json"
