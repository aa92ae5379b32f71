"""The quarterly evaluation of agencies, end to end: transactions, deliveries and the register
become each agency's scorecard, score, rank and change on `metrics.evaluations`; the metrics
service serves the league table, shows it on its dashboard page (Chromium), and generates
the quarter's printable report (HTML and PDF) announced on `programme.reports` (real broker,
database, worker and service).

The quarters are consecutive ones chosen at random from 1330 to 1377, and the agencies
are this module's own, in the register for these quarters only, so the league tables are
exactly its own. Expected scores are worked out by hand below from the rules in
`services/metrics/domain/evaluations.py` and the weights of `reference/programme.yaml`.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.metrics.domain import evaluations as ev
from services.metrics.domain.windows import Window, window_from_label, window_of
from services.metrics.evaluations_page import MONTHS_FA
from services.metrics.programme_reference import reference_register
from shared.envelope import Envelope
from shared.events.catalog import AgencyRecorded
from shared.events.exchange import FinalOutcome
from shared.events.programme import IndicatorRecorded
from shared.kafka import new_producer, publish
from shared.kafka_access import KafkaAccess
from shared.registry import decode
from shared.topics import Topic
from tests.integration.kafka_helpers import read_all
from tests.integration.metrics import events
from tests.integration.metrics.chromium import chromium
from tests.integration.metrics.in_process import metrics_in_process
from tests.integration.metrics.worker_process import (
    ServiceProcess,
    WorkerProcess,
    latest_figures,
)

pytestmark = pytest.mark.integration

GOOD, FAIR, POOR = (events.unique_agency(p) for p in ("eval-good", "eval-fair", "eval-poor"))
# Above any revision the reference register is loaded with: this module's weights hold.
REVISION = 1_000_000 + random.randrange(1_000_000)


def _quarters() -> tuple[Window, Window, Window]:
    """Three consecutive Jalali quarters, the first at random from 1330 to 1376: after
    Tehran's clock left local mean time (whose seconds the windows do not keep), before the
    agencies other tests register enter (the earliest, of the end-to-end test, in 1378)."""
    first = window_from_label(
        "quarter", f"{random.randrange(1330, 1377)}-Q{random.randrange(1, 5)}"
    )
    second = window_of("quarter", _bound(first.end))
    return first, second, window_of("quarter", _bound(second.end))


def _bound(moment: datetime | None) -> datetime:
    assert moment is not None
    return moment


WA, WB, WC = _quarters()
QA, QB, QC = WA.label, WB.label, WC.label
IN_A = _bound(WA.start) + timedelta(days=20)
IN_B = _bound(WB.start) + timedelta(days=20)
IN_C = _bound(WC.start) + timedelta(days=20)
# The module's agencies enter the register in its first quarter and leave it at the end of
# its third, so they are evaluated in these three quarters only, and another run's agencies
# (in quarters of their own) are not evaluated in these.
REGISTERED = _bound(WA.start) + timedelta(hours=1)
FIRST_DAY_A = (_bound(WA.start) + timedelta(hours=12)).date()
LEFT = _bound(WC.end) - timedelta(minutes=1)


def _agency(
    code: str, *, window: date | None, active: bool = True, revision: int = 1
) -> Envelope[Any]:
    payload = AgencyRecorded(
        code=code,
        name_fa=f"سازمان {code[-4:]}",
        name_en=f"Agency {code[-4:]}",
        ministry_fa=None,
        ministry_en=None,
        province=None,
        window_connected_since=window,
        exchange_connected_since=None,
        active=active,
        revision=revision,
    )
    at = REGISTERED if active else LEFT
    return Envelope.wrap(payload, source="catalog", subject=code, occurred_at=at)


async def _close_agencies_left_open(kafka: KafkaAccess, producer: AIOKafkaProducer) -> None:
    """A run of this module that died before its agencies left the register left them in
    every quarter after its own: they leave now, a day after they entered."""
    latest: dict[str, tuple[AgencyRecorded, datetime]] = {}
    for record in await read_all(kafka, Topic.CATALOG_AGENCIES.value):
        payload = decode(record.value, Topic.CATALOG_AGENCIES.value)
        agency = payload.payload
        if isinstance(agency, AgencyRecorded) and agency.code.startswith("eval-"):
            known = latest.get(agency.code)
            if known is None or known[0].revision < agency.revision:
                latest[agency.code] = (agency, payload.occurred_at)
    for code, (agency, recorded_at) in latest.items():
        if agency.active:
            closed = agency.model_copy(update={"active": False, "revision": agency.revision + 1})
            left = recorded_at + timedelta(days=1)
            await publish(
                producer,
                Envelope.wrap(closed, source="catalog", subject=code, occurred_at=left),
            )


def _service(agency: str, number: int, maturity: int) -> Envelope[Any]:
    made = events.service(agency, number, maturity=maturity)  # type: ignore[arg-type]
    return Envelope.wrap(
        made.payload, source="catalog", subject=made.subject, occurred_at=REGISTERED
    )


def _indicators() -> list[Envelope[Any]]:
    out = []
    for code, definition in reference_register().indicators:
        if code in ev.INDICATORS:
            payload = IndicatorRecorded.model_validate(
                {
                    **definition.model_dump(),
                    "code": code,
                    "revision": REVISION,
                    "changed_by": "operator:test",
                }
            )
            out.append(Envelope.wrap(payload, source="metrics", subject=code))
    assert len(out) == len(ev.INDICATORS)
    return out


def _tx(
    consumer: str, provider: str, outcome: FinalOutcome, at: datetime, ms: float | None
) -> Envelope[Any]:
    return events.transaction(consumer, provider=provider, outcome=outcome, at=at, provider_ms=ms)


def _late(envelope: Envelope[Any], by: timedelta) -> Envelope[Any]:
    """The same delivery, recorded by the catalog `by` after it finished (same event id)."""
    return Envelope.wrap(
        envelope.payload,
        source="catalog",
        subject=envelope.subject,
        occurred_at=envelope.occurred_at + by,
        event_id=envelope.id,
    )


GOOD_FIRST_DELIVERY = events.delivery(GOOD, channel="online", outcome="completed", at=IN_A)

# What happened, and the scores it gives (weights: electronic and smart 0.15, the window,
# use as consumer and as provider, online, completion and refusals 0.1, p95 and timeliness
# 0.05).
#
# Quarter A. GOOD: services at maturity 5 and 3 (electronic 100, smart 50), in the window,
# sent 3 requests and received 2 (one denied to POOR), answered in 200 ms, 2 online
# deliveries completed on time: 15 + 7.5 + 10 + 10 + 10 + 10 + 10 + 10 + 5 + 5 = 92.5.
# FAIR: one service at 3 (100, 0), in the window, sent 1, received 2 (90 ms), one online
# completed and one in person rejected (50, 50, on time 100): 15+0+10+10+10+5+5+10+5+5 = 75.
# POOR: a service at 1, not in the window, sent 1 (denied), received 1 (timed out: p95 0),
# refusals and denials 1 of 2 = 50% (score 0), one delivery in person abandoned, reported two
# days late: only the use of the exchange both ways scores: 10 + 10 = 20.
#
# Quarter B. GOOD received 3 requests (100 ms) and sent none, no deliveries:
# 15 + 7.5 + 10 + 0 + 10 + 0 + 0 + 10 + 5 + 0 = 57.5. FAIR sent 2, received none (no p95:
# left out, so out of 0.95): (15 + 10 + 10 + 10) / 0.95 = 47.37. POOR sent 2, received 1
# (100 ms), 2 online deliveries completed on time: 10+10+10+10+10+5+5 = 60.
SCORES = {
    QA: {GOOD: (92.5, 1), FAIR: (75.0, 2), POOR: (20.0, 3)},
    QB: {POOR: (60.0, 1), GOOD: (57.5, 2), FAIR: (47.37, 3)},
}


def _activity() -> list[Envelope[Any]]:
    return [
        _tx(GOOD, FAIR, "answered", IN_A, 90.0),
        _tx(GOOD, FAIR, "answered", IN_A, 90.0),
        _tx(GOOD, POOR, "timed_out", IN_A, None),
        _tx(FAIR, GOOD, "answered", IN_A, 200.0),
        _tx(POOR, GOOD, "denied", IN_A, None),
        GOOD_FIRST_DELIVERY,
        events.delivery(GOOD, channel="online", outcome="completed", at=IN_A),
        events.delivery(FAIR, channel="online", outcome="completed", at=IN_A),
        events.delivery(FAIR, channel="in_person", outcome="rejected", at=IN_A),
        _late(
            events.delivery(POOR, channel="in_person", outcome="abandoned", at=IN_A),
            timedelta(days=2),
        ),
        _tx(FAIR, GOOD, "answered", IN_B, 100.0),
        _tx(POOR, GOOD, "answered", IN_B, 100.0),
        _tx(POOR, GOOD, "answered", IN_B, 100.0),
        _tx(FAIR, POOR, "answered", IN_B, 100.0),
        events.delivery(POOR, channel="online", outcome="completed", at=IN_B),
        events.delivery(POOR, channel="online", outcome="completed", at=IN_B),
    ]


@pytest.fixture(scope="module")
def platform(
    kafka_as: Callable[[str], KafkaAccess],
    database_urls: Mapping[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[WorkerProcess, ServiceProcess]]:
    """A worker and the metrics service, both real processes, for this module."""
    logs = tmp_path_factory.mktemp("evaluations")
    worker = WorkerProcess(kafka_as("metrics-worker"), logs)
    service = ServiceProcess(kafka_as("metrics"), database_urls["metrics"], logs)
    worker.start()
    service.start()
    yield worker, service
    service.stop()
    worker.stop()


@pytest.fixture(scope="module")
async def published(
    kafka_admin: KafkaAccess, platform: tuple[WorkerProcess, ServiceProcess]
) -> None:
    producer: AIOKafkaProducer = new_producer(kafka_admin, client_id="metrics-evaluations")
    await producer.start()
    try:
        await _close_agencies_left_open(kafka_admin, producer)
        for envelope in [
            *_indicators(),
            _agency(GOOD, window=FIRST_DAY_A),
            _agency(FAIR, window=FIRST_DAY_A),
            _agency(POOR, window=None),
            _agency(GOOD, window=FIRST_DAY_A, active=False, revision=2),
            _agency(FAIR, window=FIRST_DAY_A, active=False, revision=2),
            _agency(POOR, window=None, active=False, revision=2),
            _service(GOOD, 1, 5),
            _service(GOOD, 2, 3),
            _service(FAIR, 1, 3),
            _service(POOR, 1, 1),
            *_activity(),
            # The catalog passed GOOD's first report on twice: one delivery.
            GOOD_FIRST_DELIVERY,
        ]:
            await publish(producer, envelope)
    finally:
        await producer.stop()
    await platform[1].wait_healthy()


def _mine(latest: Mapping[str, dict[str, Any]], quarter: str) -> dict[str, dict[str, Any]]:
    return {
        agency: latest[f"{agency}|{quarter}"]
        for agency in (GOOD, FAIR, POOR)
        if f"{agency}|{quarter}" in latest
    }


def _scores(records: Mapping[str, Mapping[str, Any]]) -> dict[str, tuple[float, int]]:
    return {agency: (r["score"], r["rank"]) for agency, r in records.items()}


async def _evaluations_when(
    kafka: KafkaAccess,
    check: Callable[[dict[str, dict[str, Any]]], bool],
    timeout: float = 120.0,
) -> dict[str, dict[str, Any]]:
    """`metrics.evaluations` as compaction keeps it, once `check` holds (or at timeout)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        latest = await latest_figures(kafka, Topic.METRICS_EVALUATIONS.value)
        if check(latest) or loop.time() > deadline:
            return latest
        await asyncio.sleep(1.0)


def _as_expected(latest: dict[str, dict[str, Any]]) -> bool:
    return all(_scores(_mine(latest, q)) == SCORES[q] for q in (QA, QB))


async def test_each_agencys_scorecard_score_rank_and_change_are_published_exactly(
    kafka_admin: KafkaAccess, published: None
) -> None:
    latest = await _evaluations_when(kafka_admin, _as_expected)
    a, b = _mine(latest, QA), _mine(latest, QB)

    assert _scores(a) == SCORES[QA]
    assert _scores(b) == SCORES[QB]
    assert {r["agencies_ranked"] for r in (*a.values(), *b.values())} == {3}
    good = {m["indicator"]: m for m in a[GOOD]["measures"]}
    assert (good[ev.ELECTRONIC]["value"], good[ev.SMART]["value"]) == (100.0, 50.0)
    assert (good[ev.AS_CONSUMER]["value"], good[ev.AS_PROVIDER]["value"]) == (3.0, 2.0)
    assert good[ev.PROVIDER_P95]["value"] == 197.5
    # The repeated report counted once: two deliveries, both online.
    assert (good[ev.ONLINE]["numerator"], good[ev.ONLINE]["denominator"]) == (2.0, 2.0)
    poor = {m["indicator"]: m for m in a[POOR]["measures"]}
    assert (poor[ev.REFUSALS]["value"], poor[ev.REFUSALS]["score"]) == (50.0, 0.0)
    assert poor[ev.TIMELINESS]["value"] == 0.0
    assert poor[ev.PROVIDER_P95]["score"] == 0.0
    assert a[POOR]["weakest"] == [ev.ELECTRONIC, ev.SMART, ev.WINDOW]
    fair_b = {m["indicator"]: m for m in b[FAIR]["measures"]}
    assert fair_b[ev.PROVIDER_P95]["applicable"] is False
    # The change since the previous quarter.
    assert a[GOOD]["score_change"] is None
    assert (b[POOR]["score_change"], b[POOR]["rank_change"]) == (40.0, 2)
    assert (b[GOOD]["score_change"], b[GOOD]["rank_change"]) == (-35.0, -1)
    assert (b[FAIR]["score_change"], b[FAIR]["rank_change"]) == (-27.63, -1)
    assert b[FAIR]["previous_quarter"] == QA
    assert all(r["closed"] for r in (*a.values(), *b.values()))


async def _end_offset(kafka: KafkaAccess, topic: str) -> int:
    consumer = AIOKafkaConsumer(**kafka.client_options(), enable_auto_commit=False)
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        ends = await consumer.end_offsets([partition])
        return int(ends[partition])
    finally:
        await consumer.stop()


async def test_a_redelivered_event_changes_nothing(
    kafka_admin: KafkaAccess, platform: tuple[WorkerProcess, ServiceProcess], published: None
) -> None:
    before = await _evaluations_when(kafka_admin, _as_expected)
    producer = new_producer(kafka_admin, client_id="metrics-evaluations-again")
    await producer.start()
    try:
        # Every kind of input again: a report the catalog passed on a third time, the
        # register's records, the weights.
        for envelope in [
            GOOD_FIRST_DELIVERY,
            _agency(POOR, window=None),
            _service(GOOD, 1, 5),
            *_indicators(),
        ]:
            await publish(producer, envelope)
        # Then a delivery of the same service (same key, so after the repeat on its
        # partition) in a later quarter: once it shows, the repeat was read.
        await publish(
            producer, events.delivery(GOOD, channel="online", outcome="completed", at=IN_C)
        )
    finally:
        await producer.stop()
    after = await _evaluations_when(kafka_admin, lambda latest: f"{GOOD}|{QC}" in latest)
    assert f"{GOOD}|{QC}" in after
    for quarter in (QA, QB):
        assert _mine(after, quarter) == _mine(before, quarter)

    # A worker killed and started again (on its data directory, as its supervisor would)
    # reads what it had not committed once more, and publishes everything again: the same
    # figures. It carries on for the module's tests after this one.
    worker = platform[0]
    mark = await _end_offset(kafka_admin, Topic.METRICS_EVALUATIONS.value)
    worker.kill()
    worker.start()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 120
    while await _end_offset(kafka_admin, Topic.METRICS_EVALUATIONS.value) <= mark:
        assert loop.time() < deadline, worker.log_text()[-3000:]
        await asyncio.sleep(1.0)
    restarted = await _evaluations_when(kafka_admin, _as_expected)
    for quarter in (QA, QB):
        assert _mine(restarted, quarter) == _mine(before, quarter)


async def _api_when(
    client: httpx.AsyncClient,
    path: str,
    check: Callable[[httpx.Response], bool],
    timeout: float = 120.0,
) -> httpx.Response:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        response = await client.get(path)
        if check(response) or loop.time() > deadline:
            return response
        await asyncio.sleep(1.0)


def _league_complete(response: httpx.Response) -> bool:
    if response.status_code != 200:
        return False
    league = response.json()["league"]
    return [(e["agency"], e["score"], e["rank"]) for e in league] == [
        (agency, *SCORES[QB][agency]) for agency in (POOR, GOOD, FAIR)
    ]


async def test_the_api_serves_the_league_table_and_refuses_what_names_no_quarter(
    platform: tuple[WorkerProcess, ServiceProcess], published: None
) -> None:
    service = platform[1]
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:
        league = await _api_when(client, f"/api/evaluations/{QB}", _league_complete)
        one = await client.get(f"/api/evaluations/{QB}/{POOR}")
        malformed = await client.get("/api/evaluations/1405-Q5")
        words = await client.get("/api/evaluations/autumn")
        unknown = await client.get("/api/evaluations/1499-Q1")
        stranger = await client.get(f"/api/evaluations/{QB}/no-such-agency")
        listed = await client.get("/api/evaluations")

    assert league.status_code == 200
    table = league.json()
    assert [(e["agency"], e["score"], e["rank"]) for e in table["league"]] == [
        (POOR, 60.0, 1),
        (GOOD, 57.5, 2),
        (FAIR, 47.37, 3),
    ]
    assert table["quarter"] == QB
    assert table["first_day"] == window_of("day", _bound(WB.start)).label
    assert table["closed"] is True
    assert {m["indicator"]: m["weight"] for m in table["measures"]}[ev.ELECTRONIC] == 0.15
    assert one.status_code == 200
    assert (one.json()["rank"], one.json()["previous_rank"]) == (1, 3)
    for refused in (malformed, words):
        assert refused.status_code == 422
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["code"] == "invalid_quarter"
        assert "1405-Q3" in refused.json()["messages"]["fa"]
        assert "1405-Q3" in refused.json()["messages"]["en"]
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "evaluation_not_found"
    assert unknown.json()["messages"]["fa"]
    assert stranger.status_code == 404
    assert stranger.json()["code"] == "agency_evaluation_not_found"
    assert {QA, QB} <= set(listed.json()["quarters"])


def _persian(text: str) -> str:
    return text.translate(str.maketrans("0123456789.", "۰۱۲۳۴۵۶۷۸۹٫"))


async def test_the_dashboard_shows_who_ranks_lowest_and_why_in_persian_and_english(
    platform: tuple[WorkerProcess, ServiceProcess], published: None, tmp_path: Path
) -> None:
    service = platform[1]
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:
        await _api_when(client, f"/api/evaluations/{QB}", _league_complete)
        html = (await client.get(f"/dashboard/evaluations?quarter={QA}")).text
        sheets = re.findall(r'<link rel="stylesheet" href="([^"]+)">', html)
        served = {sheet: (await client.get(sheet)).status_code for sheet in sheets}
    page = f"{service.url}/dashboard/evaluations?quarter={QA}"
    dom = await asyncio.to_thread(chromium, "--window-size=1280,1400", "--dump-dom", page)
    screenshot = tmp_path / "evaluations-fa.png"
    await asyncio.to_thread(chromium, f"--screenshot={screenshot}", "--window-size=1280,1400", page)
    english = await asyncio.to_thread(chromium, "--dump-dom", f"{page}&lang=en")
    print(f"evaluations dashboard screenshot: {screenshot}")

    assert served == {"/static/dashboard.css": 200, "/static/evaluations.css": 200}
    assert re.search(r'<html lang="fa" dir="rtl"', dom)
    # The lowest-ranked agency comes first, with the measures that pull it down.
    lowest = re.findall(r'<article class="agency band-\w+" data-agency="([a-z0-9-]+)">', dom)
    assert lowest == [POOR, FAIR, GOOD]
    poor = re.search(rf'<article [^>]*data-agency="{POOR}">(.*?)</article>', dom, re.S)
    assert poor is not None
    assert "رتبه ۳ از ۳" in poor.group(1)
    weak = re.findall(r'<li data-measure="([a-z_0-9]+)">', poor.group(1))
    assert weak == [ev.ELECTRONIC, ev.SMART, ev.WINDOW]
    assert "سهم خدمات الکترونیکی دستگاه" in poor.group(1)
    assert f"<strong>{_persian('20')}</strong>" in poor.group(1)
    # Jalali dates in Persian: the quarter's first day.
    year, month = int(QA[:4]), (int(QA[-1]) - 1) * 3
    assert f"۱ {MONTHS_FA[month]} {_persian(str(year))}" in dom
    assert re.search(rf'<tr data-agency="{GOOD}">.*?{_persian("92.5")}', dom, re.S)
    assert re.search(r'<html lang="en" dir="ltr"', english)
    assert "Lowest ranked this quarter, and why" in english
    assert re.search(rf'<tr data-agency="{GOOD}">.*?92\.5', english, re.S)
    assert screenshot.stat().st_size > 20_000


async def _report_announced(kafka: KafkaAccess, quarter: str) -> dict[str, dict[str, Any]]:
    latest = await latest_figures(kafka, Topic.PROGRAMME_REPORTS.value)
    return {
        fmt: latest[f"agency-evaluation|{quarter}||{fmt}"]
        for fmt in ("html", "pdf")
        if f"agency-evaluation|{quarter}||{fmt}" in latest
    }


#: FAIR's score in quarter B as the Persian report writes it.
FAIR_SCORE_B = "۴۷٫۳۷"


async def test_an_ended_quarters_report_is_generated_announced_and_renders_inchromium(
    kafka_admin: KafkaAccess,
    platform: tuple[WorkerProcess, ServiceProcess],
    published: None,
    tmp_path: Path,
) -> None:
    service = platform[1]
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:
        await _api_when(client, f"/api/evaluations/{QB}", _league_complete)
        html = await _api_when(
            client,
            f"/api/reports/agency-evaluation/{QB}.html",
            lambda r: r.status_code == 200 and FAIR_SCORE_B in r.text,
        )
        pdf = await client.get(f"/api/reports/agency-evaluation/{QB}.pdf")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while len(announced := await _report_announced(kafka_admin, QB)) < 2:
        assert loop.time() < deadline, announced
        await asyncio.sleep(1.0)
    file = tmp_path / "report.html"
    file.write_bytes(html.content)
    screenshot = tmp_path / "evaluation-report.png"
    dom = await asyncio.to_thread(chromium, "--dump-dom", f"file://{file}")
    await asyncio.to_thread(
        chromium, f"--screenshot={screenshot}", "--window-size=1000,1400", f"file://{file}"
    )
    print(f"evaluation report screenshot: {screenshot}")

    assert html.status_code == 200
    assert FAIR_SCORE_B in html.text  # the ended quarter's final figures
    assert html.headers["content-type"].startswith("text/html")
    assert re.search(r'<html lang="fa" dir="rtl"', dom)
    assert "گزارش ارزیابی فصلی دستگاه‌های اجرایی" in dom
    # The league table, then one page per agency, in rank order.
    pages = re.findall(r'<section class="agency" data-agency="([a-z0-9-]+)">', dom)
    assert pages == [POOR, GOOD, FAIR]
    assert "break-before: page" in dom
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")
    assert announced["pdf"]["sha256"] == pdf.headers["etag"].strip('"')
    assert announced["html"]["path"] == f"/api/reports/agency-evaluation/{QB}.html"
    assert screenshot.stat().st_size > 20_000
    json.dumps(announced)  # plain JSON, as a stranger reads it


async def test_an_operator_asks_for_a_quarters_report_and_only_an_operator_may(
    kafka_admin: KafkaAccess,
    credentials_file: Callable[[str], str],
    database_urls: Mapping[str, str],
    platform: tuple[WorkerProcess, ServiceProcess],
    published: None,
) -> None:
    async with metrics_in_process(
        "evaluation-tests", credentials_file, kafka_admin, database_urls
    ) as service:
        client = service.client

        def token(scope: str) -> dict[str, str]:
            return service.signer.headers(scope)

        await _api_when(client, f"/api/evaluations/{QB}", _league_complete)
        first = await client.post(f"/api/evaluations/{QB}/report", headers=token("programme:admin"))
        again = await client.post(f"/api/evaluations/{QB}/report", headers=token("programme:admin"))
        reader = await client.post(
            f"/api/evaluations/{QB}/report", headers=token("programme:report")
        )
        nobody = await client.post(f"/api/evaluations/{QB}/report")
        unknown = await client.post(
            "/api/evaluations/1499-Q1/report", headers=token("programme:admin")
        )
        served = await client.get(f"/api/reports/agency-evaluation/{QB}.pdf")

    assert first.status_code == 200, first.text
    files = {f["format"]: f for f in first.json()["files"]}
    assert set(files) == {"html", "pdf"}
    assert files["pdf"]["kind"] == "agency-evaluation"
    assert files["pdf"]["sha256"] == served.headers["etag"].strip('"')
    # The same figures again: the same files, no new revision.
    assert [f["outcome"] for f in again.json()["files"]] == ["unchanged", "unchanged"]
    assert [f["revision"] for f in again.json()["files"]] == [
        files["html"]["revision"],
        files["pdf"]["revision"],
    ]
    assert reader.status_code == 403
    assert nobody.status_code == 401
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "evaluation_not_found"
