"""The programme register on the real broker and database: operators' writes land in the
tables and on the programme topics, refusals leave nothing behind, corrections keep their
history, the reference loads once, and each target's progress on metrics.programme is
served by the API.

The metrics service runs in-process as its own principal and database role; tokens are
minted with a key of the tests' own, published on `identity.issuer-keys` as identity
would, so the service verifies them exactly as in production.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiokafka import ConsumerRecord

from services.metrics import programme_reference
from shared.envelope import Envelope
from shared.events.metrics import ProgressPoint, TargetProgressUpdated
from shared.kafka import new_producer, publish
from shared.kafka_access import KafkaAccess
from shared.registry import decode
from shared.runtime import Runtime
from shared.topics import Topic
from tests.integration.kafka_helpers import read_all
from tests.integration.metrics.in_process import Signer, metrics_in_process

pytestmark = pytest.mark.integration

ADMIN_SCOPE = "programme:admin"


@dataclass
class Metrics:
    client: httpx.AsyncClient
    runtime: Runtime
    signer: Signer
    observer: KafkaAccess

    @property
    def operator(self) -> dict[str, str]:
        return self.signer.headers(ADMIN_SCOPE)


@pytest.fixture(scope="module")
async def metrics(
    credentials_file: Callable[[str], str],
    kafka_admin: KafkaAccess,
    database_urls: Mapping[str, str],
) -> AsyncIterator[Metrics]:
    async with metrics_in_process(
        "metrics-programme-tests", credentials_file, kafka_admin, database_urls
    ) as service:
        yield Metrics(service.client, service.runtime, service.signer, kafka_admin)


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def indicator_body(**changes: Any) -> dict[str, Any]:
    return {
        "name_fa": "پیشرفت شبکه ملی اطلاعات",
        "name_en": "National Information Network progress",
        "definition_fa": "درصد پیشرفت پروژه شبکه ملی اطلاعات",
        "definition_en": "Completion of the network, in percent",
        "unit": "percent",
        "direction": "increase",
        "source": "reported",
    } | changes


def target_body(indicator: str, **changes: Any) -> dict[str, Any]:
    return {
        "indicator": indicator,
        "scope": "province",
        "scope_code": "IR-15",
        "baseline_value": 91,
        "baseline_date": "1401-01-01",
        "target_value": 100,
        "deadline": "1407-12-29",
        "basis_fa": "برنامه هفتم توسعه",
        "basis_en": "7th development plan",
        "citation": "A3",
    } | changes


def figure_body(indicator: str, value: float, **changes: Any) -> dict[str, Any]:
    return {
        "indicator": indicator,
        "scope": "national",
        "observed_on": "1403-04-03",
        "value": value,
        "source_fa": "گزارش وزیر به مجلس",
        "source_en": "The minister's report to parliament",
        "citation": "A2",
    } | changes


async def put_indicator(metrics: Metrics, code: str, **changes: Any) -> httpx.Response:
    return await metrics.client.put(
        f"/api/programme/indicators/{code}",
        json=indicator_body(**changes),
        headers=metrics.operator,
    )


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


# -- writes --------------------------------------------------------------------------------


async def test_an_operators_writes_land_in_the_tables_and_their_events_on_the_topics(
    metrics: Metrics,
) -> None:
    code, target_id = unique("network"), f"lorestan.{uuid.uuid4().hex[:10]}"
    created = await put_indicator(metrics, code)
    assert created.status_code == 200, created.text
    assert created.json()["outcome"] == "created"
    target = await metrics.client.put(
        f"/api/programme/targets/{target_id}",
        json=target_body(code),
        headers=metrics.operator,
    )
    assert target.status_code == 200, target.text
    assert target.json()["target"]["revision"] == 1

    pool = metrics.runtime.pool
    rows = await pool.fetch(
        "SELECT revision, changed_by FROM programme_indicators WHERE code = $1", code
    )
    assert [(r["revision"], r["changed_by"]) for r in rows] == [(1, "operator:ito:console")]
    assert (
        await pool.fetchval(
            "SELECT indicator FROM programme_targets WHERE target_id = $1", target_id
        )
        == code
    )

    (indicator,) = await on_topic(metrics, Topic.PROGRAMME_INDICATORS, code)
    assert indicator.source == "metrics"
    assert (indicator.payload.code, indicator.payload.revision) == (code, 1)
    assert indicator.payload.changed_by == "operator:ito:console"
    (announced,) = await on_topic(metrics, Topic.PROGRAMME_TARGETS, target_id)
    assert (announced.payload.scope_code, announced.payload.active) == ("IR-15", True)

    listed = (await metrics.client.get("/api/programme/indicators")).json()["indicators"]
    assert code in {i["code"] for i in listed}
    again = await put_indicator(metrics, code)
    assert again.json()["outcome"] == "unchanged"
    assert await outbox_rows(metrics, code) == 1


async def test_a_refused_write_stores_and_publishes_nothing_and_says_why_in_both_languages(
    metrics: Metrics,
) -> None:
    missing, target_id = unique("missing"), f"refused.{uuid.uuid4().hex[:10]}"
    refused = await metrics.client.put(
        f"/api/programme/targets/{target_id}",
        json=target_body(missing),
        headers={**metrics.operator, "accept-language": "en"},
    )
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["code"] == "unknown_indicator"
    assert set(problem["messages"]) == {"fa", "en"}
    assert problem["title"] == problem["messages"]["en"]

    code = unique("live")
    unnamed = await put_indicator(metrics, code, source="live", live_window="all_time")
    assert unnamed.status_code == 422
    assert unnamed.json()["code"] == "live_indicator_unnamed"
    assert unnamed.json()["title"] == unnamed.json()["messages"]["fa"]

    pool = metrics.runtime.pool
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM programme_targets WHERE target_id = $1", target_id
        )
        == 0
    )
    assert (
        await pool.fetchval("SELECT count(*) FROM programme_indicators WHERE code = $1", code) == 0
    )
    assert await outbox_rows(metrics, target_id) == 0
    assert await outbox_rows(metrics, code) == 0
    # A write after them is published; the refused ones, before it in the outbox had they
    # been there, are not on the topic.
    assert (await put_indicator(metrics, code)).status_code == 200
    (published,) = await on_topic(metrics, Topic.PROGRAMME_INDICATORS, code)
    assert published.payload.source == "reported"
    targets = await read_all(metrics.observer, Topic.PROGRAMME_TARGETS, timeout=5)
    assert target_id.encode() not in {r.key for r in targets}


async def test_a_token_without_programme_admin_may_not_write(metrics: Metrics) -> None:
    code = unique("forbidden")
    no_scope = await metrics.client.put(
        f"/api/programme/indicators/{code}",
        json=indicator_body(),
        headers=metrics.signer.headers("metrics:read catalog:write", agency="tax"),
    )
    assert no_scope.status_code == 403
    assert no_scope.json()["code"] == "forbidden"
    anonymous = await metrics.client.post(
        "/api/programme/observations", json=figure_body("electronic_services_share", 70)
    )
    assert anonymous.status_code == 401
    assert (
        await metrics.runtime.pool.fetchval(
            "SELECT count(*) FROM programme_indicators WHERE code = $1", code
        )
        == 0
    )
    assert await outbox_rows(metrics, code) == 0


async def test_a_correction_supersedes_the_figure_and_its_history_is_kept(
    metrics: Metrics,
) -> None:
    code = unique("ports")
    await put_indicator(metrics, code)
    first = await metrics.client.post(
        "/api/programme/observations", json=figure_body(code, 65), headers=metrics.operator
    )
    assert first.status_code == 200, first.text
    corrected = await metrics.client.post(
        "/api/programme/observations", json=figure_body(code, 66.5), headers=metrics.operator
    )
    assert (corrected.json()["outcome"], corrected.json()["observation"]["revision"]) == (
        "revised",
        2,
    )
    listed = await metrics.client.get(
        "/api/programme/observations", params={"indicator": code, "scope": "national"}
    )
    (current,) = listed.json()["observations"]
    assert (current["value"], current["revision"], current["revisions"]) == (66.5, 2, 2)

    key = f"{code}|national:|1403-04-03"
    history = await metrics.runtime.pool.fetch(
        "SELECT revision, value FROM programme_observations WHERE key = $1 ORDER BY revision",
        key,
    )
    assert [(r["revision"], r["value"]) for r in history] == [(1, 65), (2, 66.5)]
    announced = await on_topic(metrics, Topic.PROGRAMME_OBSERVATIONS, key, count=2)
    assert [(e.payload.revision, e.payload.value) for e in announced] == [(1, 65), (2, 66.5)]


async def test_loading_the_reference_twice_changes_nothing_the_second_time(
    metrics: Metrics,
) -> None:
    pool = metrics.runtime.pool
    await programme_reference.load(pool)

    async def state() -> tuple[int, int, int, int]:
        row = await pool.fetchrow(
            "SELECT (SELECT count(*) FROM programme_indicators) AS indicators,"
            " (SELECT count(*) FROM programme_targets) AS targets,"
            " (SELECT count(*) FROM programme_observations) AS observations,"
            " (SELECT count(*) FROM outbox) AS outbox"
        )
        assert row is not None
        return row["indicators"], row["targets"], row["observations"], row["outbox"]

    before = await state()
    again = await programme_reference.load(pool)
    assert again.created == {}
    assert again.kept == {"indicators": 29, "targets": 6, "observations": 12}
    assert await state() == before

    listed = (await metrics.client.get("/api/programme/targets")).json()["targets"]
    by_id = {t["target_id"]: t for t in listed}
    lorestan = by_id["lorestan.villages-connected"]
    assert (lorestan["scope_code"], lorestan["target_value"]) == ("IR-15", 100)
    figures = await metrics.client.get(
        "/api/programme/observations", params={"indicator": "exchange_transactions_per_year"}
    )
    assert [f["observed_on"] for f in figures.json()["observations"]] == [
        "1399-12-30",
        "1403-04-03",
    ]


# -- where targets stand -------------------------------------------------------------------


def progress_of(target_id: str, indicator: str, value: float) -> TargetProgressUpdated:
    return TargetProgressUpdated(
        target_id=target_id,
        indicator=indicator,
        indicator_name_fa="پیشرفت شبکه ملی اطلاعات",
        indicator_name_en="National Information Network progress",
        unit="percent",
        direction="increase",
        scope="province",
        scope_code="IR-15",
        baseline_value=91,
        baseline_date="1401-01-01",
        target_value=100,
        deadline="1407-12-29",
        current_value=value,
        current_as_of="1403-04-03",
        progress=(value - 91) / 9,
        expected_progress=0.5,
        trend_per_year=2.0,
        projected_value=101.0,
        status="on_track",
        series=[
            ProgressPoint(day="1401-01-01", value=91),
            ProgressPoint(day="1403-04-03", value=value),
        ],
        basis_fa="برنامه هفتم توسعه",
        basis_en="7th development plan",
        citation="A3",
        evaluated_on="1405-09-08",
    )


async def test_a_targets_progress_on_metrics_programme_is_where_the_api_says_it_stands(
    metrics: Metrics,
) -> None:
    code, target_id = unique("villages"), f"lorestan.{uuid.uuid4().hex[:10]}"
    await put_indicator(metrics, code)
    put = await metrics.client.put(
        f"/api/programme/targets/{target_id}", json=target_body(code), headers=metrics.operator
    )
    assert put.status_code == 200, put.text

    async def standing() -> dict[str, Any]:
        answer = await metrics.client.get("/api/programme/targets")
        listed: list[dict[str, Any]] = answer.json()["targets"]
        (mine,) = [t for t in listed if t["target_id"] == target_id]
        return mine

    before = await standing()
    assert (before["status"], before["current_value"], before["published_at"]) == (
        "no_data",
        None,
        None,
    )

    producer = new_producer(metrics.observer, client_id="programme-tests")
    await producer.start()
    try:
        await publish(
            producer,
            Envelope.wrap(
                progress_of(target_id, code, 95.5), source="metrics-worker", subject=target_id
            ),
        )
    finally:
        await producer.stop()

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 45
    while (after := await standing())["status"] == "no_data":
        assert loop.time() < deadline, "the progress never reached the API"
        await asyncio.sleep(0.2)
    assert (after["status"], after["current_value"], after["active"]) == ("on_track", 95.5, True)
    assert after["published_at"] is not None
    page = (await metrics.client.get(f"/api/programme/targets/{target_id}")).json()
    assert page["status"] == "on_track"
    assert [revision["revision"] for revision in page["history"]] == [1]
    unknown = await metrics.client.get("/api/programme/targets/plan9.nothing-here")
    assert unknown.status_code == 404
