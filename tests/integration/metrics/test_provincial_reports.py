"""The provincial directorates' weekly reports on the real broker and database: a
directorate's report lands in the tables, on programme.provincial-reports and its figures
on programme.observations; a refused one leaves nothing in either; another province's
directorate is refused; the week's overview lists who is missing.

The metrics service runs in-process as its own principal and database role; tokens are
minted with a key of the tests' own, published on `identity.issuer-keys` as identity
would. Each test reports for a week long past (so every report is late, and accepted) and
a province of its own, and first clears that province's reports, so that reruns on the
same database judge each report against nothing but the test's own.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import ConsumerRecord

from services.metrics import programme_reference
from services.metrics.domain.provincial_reports import MESSAGES, sample_weeks
from shared.envelope import Envelope
from shared.kafka_access import KafkaAccess
from shared.registry import decode
from shared.runtime import Runtime
from shared.topics import Topic
from tests.integration.kafka_helpers import read_all
from tests.integration.metrics.in_process import Signer, metrics_in_process

pytestmark = pytest.mark.integration

REPORT_SCOPE = "programme:report"


@dataclass
class Metrics:
    client: httpx.AsyncClient
    runtime: Runtime
    signer: Signer
    observer: KafkaAccess

    def headers(self, agency: str, scope: str = REPORT_SCOPE) -> dict[str, str]:
        return self.signer.headers(scope, agency=agency, subject=f"{agency}.reports")


@pytest.fixture(scope="module")
async def metrics(
    credentials_file: Callable[[str], str],
    kafka_admin: KafkaAccess,
    database_urls: Mapping[str, str],
) -> AsyncIterator[Metrics]:
    async with metrics_in_process(
        "metrics-provincial-report-tests", credentials_file, kafka_admin, database_urls
    ) as service:
        yield Metrics(service.client, service.runtime, service.signer, kafka_admin)


def past_week() -> str:
    """A week long past, different on every call in practice."""
    return f"{random.randint(1330, 1399)}-W{random.randint(1, 50):02d}"


async def cleared(metrics: Metrics, province: str) -> str:
    """The province, its reports cleared, and its directorate's agency code."""
    await metrics.runtime.pool.execute(
        "DELETE FROM provincial_reports WHERE province = $1", province
    )
    return f"ict-{province.lower()}"


async def on_topic(metrics: Metrics, topic: Topic, key: str, count: int = 1) -> list[Envelope[Any]]:
    """The records published under `key`, once there are `count` of them."""

    def mine(records: list[ConsumerRecord[bytes, bytes]]) -> list[bytes]:
        return [r.value for r in records if r.key == key.encode() and r.value is not None]

    records = await read_all(metrics.observer, topic, until=lambda rs: len(mine(rs)) >= count)
    return [decode(value, topic) for value in mine(records)]


async def outbox_rows(metrics: Metrics, key: str) -> int:
    count: int = await metrics.runtime.pool.fetchval(
        "SELECT count(*) FROM outbox WHERE key = $1", key.encode()
    )
    return count


LORESTAN_FIGURES = {
    "villages_connected": 1245,
    "mobile_coverage_share": 98,
    "coverage_4g_share": 76,
    "villages_covered_share": 91,
    "villages_fixed_line_share": 82,
}


async def test_a_directorates_report_lands_in_the_tables_and_on_the_topics(
    metrics: Metrics,
) -> None:
    province, week = "IR-15", past_week()
    directorate = await cleared(metrics, province)
    body = {"figures": LORESTAN_FIGURES, "projects": {"lorestan-small-villages": 35}}
    put = await metrics.client.put(
        f"/api/provinces/{province}/reports/{week}", json=body, headers=metrics.headers(directorate)
    )
    assert put.status_code == 200, put.text
    answer = put.json()
    assert answer["outcome"] == "created"
    assert (answer["report"]["revision"], answer["report"]["late"]) == (1, True)
    assert len(answer["observations"]) == len(LORESTAN_FIGURES)

    row = await metrics.runtime.pool.fetchrow(
        "SELECT revision, late, submitted_by, figures, projects FROM provincial_reports"
        " WHERE province = $1 AND week = $2",
        province,
        week,
    )
    assert row is not None
    assert (row["revision"], row["late"], row["submitted_by"]) == (1, True, directorate)
    assert row["figures"] == LORESTAN_FIGURES
    assert row["projects"] == {"lorestan-small-villages": 35}

    (report,) = await on_topic(metrics, Topic.PROGRAMME_PROVINCIAL_REPORTS, f"{province}|{week}")
    assert report.source == "metrics"
    assert (report.payload.province, report.payload.week) == (province, week)
    assert report.payload.figures == LORESTAN_FIGURES
    observed = answer["observations"][0]
    key = f"{observed['indicator']}|province:{province}|{observed['observed_on']}"
    (figure,) = await on_topic(metrics, Topic.PROGRAMME_OBSERVATIONS, key)
    assert (figure.payload.reported_by, figure.payload.value) == (
        directorate,
        LORESTAN_FIGURES[observed["indicator"]],
    )
    assert figure.payload.citation == f"weekly report {province} {week}"

    # A correction: the next revision, the earlier kept; the same report again: nothing.
    corrected = await metrics.client.put(
        f"/api/provinces/{province}/reports/{week}",
        json={**body, "figures": {**LORESTAN_FIGURES, "coverage_4g_share": 77}},
        headers=metrics.headers(directorate),
    )
    assert corrected.json()["outcome"] == "corrected"
    again = await metrics.client.put(
        f"/api/provinces/{province}/reports/{week}",
        json={**body, "figures": {**LORESTAN_FIGURES, "coverage_4g_share": 77}},
        headers=metrics.headers(directorate),
    )
    assert again.json()["outcome"] == "unchanged"
    history = (await metrics.client.get(f"/api/provinces/{province}/reports")).json()
    (mine,) = [w for w in history["reports"] if w["week"] == week]
    assert [r["revision"] for r in mine["revisions"]] == [1, 2]
    assert mine["figures"]["coverage_4g_share"] == 77
    assert "lorestan-small-villages" in {p["code"] for p in history["projects"]}
    assert await outbox_rows(metrics, f"{province}|{week}") == 2


async def test_a_refused_report_stores_and_publishes_nothing(metrics: Metrics) -> None:
    province, week = "IR-20", past_week()
    directorate = await cleared(metrics, province)
    refused = await metrics.client.put(
        f"/api/provinces/{province}/reports/{week}",
        json={"figures": {"coverage_4g_share": 120, "rural_ict_offices": -2, "tea": 1}},
        headers={**metrics.headers(directorate), "accept-language": "en"},
    )
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["code"] == "report_refused"
    assert problem["title"] == problem["messages"]["en"]
    assert {(e["code"], e["field"]) for e in problem["errors"]} == {
        ("share_out_of_range", "coverage_4g_share"),
        ("count_invalid", "rural_ict_offices"),
        ("unknown_figure", "tea"),
    }
    for error in problem["errors"]:
        assert (error["fa"], error["en"]) == (
            MESSAGES[error["code"]]["fa"],
            MESSAGES[error["code"]]["en"],
        )

    pool = metrics.runtime.pool
    assert (
        await pool.fetchval("SELECT count(*) FROM provincial_reports WHERE province = $1", province)
        == 0
    )
    assert await outbox_rows(metrics, f"{province}|{week}") == 0
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM programme_observations WHERE scope_code = $1"
            " AND record->>'citation' = $2",
            province,
            f"weekly report {province} {week}",
        )
        == 0
    )


async def test_only_the_provinces_own_directorate_may_report(metrics: Metrics) -> None:
    province, week = "IR-21", past_week()
    await cleared(metrics, province)
    body = {"figures": {"coverage_4g_share": 60}}
    other = await metrics.client.put(
        f"/api/provinces/{province}/reports/{week}", json=body, headers=metrics.headers("ict-ir-22")
    )
    assert other.status_code == 403
    assert other.json()["code"] == "not_provinces_directorate"
    assert set(other.json()["messages"]) == {"fa", "en"}
    no_scope = await metrics.client.put(
        f"/api/provinces/{province}/reports/{week}",
        json=body,
        headers=metrics.headers("ict-ir-21", scope="metrics:read"),
    )
    assert no_scope.status_code == 403
    assert no_scope.json()["code"] == "forbidden"
    anonymous = await metrics.client.put(f"/api/provinces/{province}/reports/{week}", json=body)
    assert anonymous.status_code == 401
    assert (
        await metrics.runtime.pool.fetchval(
            "SELECT count(*) FROM provincial_reports WHERE province = $1", province
        )
        == 0
    )
    assert await outbox_rows(metrics, f"{province}|{week}") == 0


async def test_the_weeks_overview_lists_the_missing_provinces(metrics: Metrics) -> None:
    week = past_week()
    for province in ("IR-23", "IR-24"):
        await cleared(metrics, province)
    await metrics.runtime.pool.execute("DELETE FROM provincial_reports WHERE week = $1", week)
    put = await metrics.client.put(
        f"/api/provinces/IR-23/reports/{week}",
        json={"figures": {"mobile_coverage_share": 95}},
        headers=metrics.headers("ict-ir-23"),
    )
    assert put.status_code == 200, put.text

    overview = await metrics.client.get(f"/api/provinces/reports/{week}")
    assert overview.status_code == 200
    body = overview.json()
    assert body["ended"] is True
    assert body["summary"]["reported"] == 1
    assert body["summary"]["late"] == ["IR-23"]
    assert len(body["summary"]["missing"]) == 30
    assert "IR-24" in body["summary"]["missing"]
    by_code = {p["province"]: p for p in body["provinces"]}
    assert by_code["IR-23"]["figures"]["mobile_coverage_share"]["value"] == 95
    assert by_code["IR-24"]["status"] == "missing"

    malformed = await metrics.client.get("/api/provinces/reports/next-week")
    assert malformed.status_code == 422
    assert malformed.json()["errors"][0]["code"] == "week_malformed"


async def test_the_report_form_is_served_with_identitys_token_endpoint(metrics: Metrics) -> None:
    page = await metrics.client.get("/provinces/report", params={"lang": "en"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "connect-src 'self' http://127.0.0.1:8001" in policy
    assert '"token_endpoint": "http://127.0.0.1:8001/oauth/token"' in page.text
    script = await metrics.client.get("/static/report.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")


async def test_lorestans_sample_report_loads_once_as_its_directorate(metrics: Metrics) -> None:
    pool = metrics.runtime.pool
    await cleared(metrics, "IR-15")
    now = datetime.now(UTC)
    assert await programme_reference.load_sample_reports(pool, now) == ["IR-15"]
    assert await programme_reference.load_sample_reports(pool, now) == []
    rows = await pool.fetch(
        "SELECT week, revision, submitted_by, figures FROM provincial_reports"
        " WHERE province = 'IR-15'"
    )
    assert [(r["week"], r["revision"], r["submitted_by"]) for r in rows] == [
        (sample_weeks(now)[0], 1, "ict-ir-15")
    ]
    assert rows[0]["figures"] == LORESTAN_FIGURES


async def test_a_fall_against_the_provinces_latest_earlier_week_needs_a_reason(
    metrics: Metrics,
) -> None:
    province = "IR-25"
    directorate = await cleared(metrics, province)
    year, number = random.randint(1330, 1399), random.randint(2, 40)
    before, week, later = (f"{year}-W{n:02d}" for n in (number - 1, number + 1, number + 3))
    headers = metrics.headers(directorate)

    async def put(on: str, body: dict[str, Any]) -> httpx.Response:
        return await metrics.client.put(
            f"/api/provinces/{province}/reports/{on}", json=body, headers=headers
        )

    first = await put(before, {"figures": {"coverage_4g_share": 80, "rural_ict_offices": 120}})
    assert first.status_code == 200, first.text
    # A later week already reported does not count: only weeks before are compared.
    assert (await put(later, {"figures": {"coverage_4g_share": 90}})).status_code == 200
    fallen = await put(week, {"figures": {"coverage_4g_share": 70, "rural_ict_offices": 121}})
    assert fallen.status_code == 422
    assert [(e["code"], e["field"]) for e in fallen.json()["errors"]] == [
        ("fall_needs_reason", "coverage_4g_share")
    ]
    explained = await put(
        week,
        {
            "figures": {"coverage_4g_share": 70, "rural_ict_offices": 121},
            "reasons": {"coverage_4g_share": "سیل دو دکل را از کار انداخت"},
        },
    )
    assert explained.status_code == 200, explained.text
    overview = (await metrics.client.get(f"/api/provinces/reports/{week}")).json()
    (mine,) = [p for p in overview["provinces"] if p["province"] == province]
    assert mine["previous_week"] == before
    assert mine["figures"]["coverage_4g_share"] == {"value": 70, "previous": 80, "change": -10}
    assert mine["reasons"] == {"coverage_4g_share": "سیل دو دکل را از کار انداخت"}
