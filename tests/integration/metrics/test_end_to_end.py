"""From events the services publish to figures on the metrics topics and in the HTTP API,
and the live dashboard in headless Chromium (real broker, database, worker and service)."""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from services.metrics.domain.windows import window_of
from shared.events.exchange import FinalOutcome
from shared.kafka import new_producer, publish
from shared.kafka_access import KafkaAccess
from shared.topics import Topic
from tests.integration.metrics import events
from tests.integration.metrics.chromium import chromium
from tests.integration.metrics.worker_process import (
    ServiceProcess,
    WorkerProcess,
    wait_for_values,
)

pytestmark = pytest.mark.integration

AT = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(minutes=random.randrange(5 * 365 * 24 * 60))
DAY = window_of("day", AT).label
CONSUMER = events.unique_agency("e2e")
PROVIDER = events.unique_agency("e2e-prov")
N_TRANSACTIONS = 12
N_REFUSED = 3


@pytest.fixture(scope="module")
def platform(
    kafka_as: Callable[[str], KafkaAccess],
    database_urls: Mapping[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServiceProcess]:
    """A worker and the metrics service, both real processes, for this module."""
    logs = tmp_path_factory.mktemp("metrics-e2e")
    worker = WorkerProcess(kafka_as("metrics-worker"), logs)
    service = ServiceProcess(kafka_as("metrics"), database_urls["metrics"], logs)
    worker.start()
    service.start()
    yield service
    service.stop()
    worker.stop()


@pytest.fixture(scope="module")
async def published(kafka_admin: KafkaAccess, platform: ServiceProcess) -> None:
    """The module's events, published once, standing in for exchange, identity, catalog."""
    producer: AIOKafkaProducer = new_producer(kafka_admin, client_id="metrics-e2e")
    await producer.start()
    try:
        for i in range(N_TRANSACTIONS):
            outcome: FinalOutcome = "refused" if i < N_REFUSED else "answered"
            await publish(
                producer,
                events.transaction(CONSUMER, provider=PROVIDER, outcome=outcome, at=AT),
            )
        for n, maturity in enumerate((5, 3, 1)):
            await publish(producer, events.service(CONSUMER, n, maturity=maturity))  # type: ignore[arg-type]
        await publish(producer, events.agency(CONSUMER))
        who = events.citizen(CONSUMER)
        await publish(producer, events.authenticated(who, province="IR-15", at=AT))
        await publish(producer, events.delivery(CONSUMER, channel="online", at=AT))
        await publish(producer, events.delivery(CONSUMER, channel="in_person", at=AT))
    finally:
        await producer.stop()
    await platform.wait_healthy()


async def _api_value(client: httpx.AsyncClient, metric: str, dimensions: str, window: str) -> Any:
    response = await client.get(
        "/api/metrics", params={"metric": metric, "dimensions": dimensions, "window": window}
    )
    response.raise_for_status()
    figures = response.json()["figures"]
    return figures[0]["value"] if figures else None


async def _wait_api(
    service: ServiceProcess, expected: dict[tuple[str, str, str], float], timeout: float = 90
) -> dict[tuple[str, str, str], Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with httpx.AsyncClient(base_url=service.url) as client:
        while True:
            found = {key: await _api_value(client, *key) for key in expected}
            if found == expected or loop.time() > deadline:
                return found
            await asyncio.sleep(1)


async def test_events_become_figures_on_the_metrics_topics_and_in_the_api(
    kafka_admin: KafkaAccess, platform: ServiceProcess, published: None
) -> None:
    on_topic = await wait_for_values(
        kafka_admin,
        Topic.METRICS_EXCHANGE.value,
        {
            f"exchange.transactions|consumer={CONSUMER}|day:{DAY}": float(N_TRANSACTIONS),
            f"exchange.refusals|provider={PROVIDER}|all_time:all": float(N_REFUSED),
        },
    )
    in_api = await _wait_api(
        platform,
        {
            ("exchange.transactions", f"consumer={CONSUMER}", DAY): float(N_TRANSACTIONS),
            ("exchange.refusals", f"provider={PROVIDER}", "all"): float(N_REFUSED),
            ("adoption.smart_share", f"agency={CONSUMER}", "all"): 1 / 3,
            ("adoption.electronic_share", f"agency={CONSUMER}", "all"): 2 / 3,
            ("deliveries.digital_share", f"agency={CONSUMER}", DAY): 0.5,
        },
    )

    assert on_topic == {
        f"exchange.transactions|consumer={CONSUMER}|day:{DAY}": float(N_TRANSACTIONS),
        f"exchange.refusals|provider={PROVIDER}|all_time:all": float(N_REFUSED),
    }
    assert in_api == {
        ("exchange.transactions", f"consumer={CONSUMER}", DAY): float(N_TRANSACTIONS),
        ("exchange.refusals", f"provider={PROVIDER}", "all"): float(N_REFUSED),
        ("adoption.smart_share", f"agency={CONSUMER}", "all"): 1 / 3,
        ("adoption.electronic_share", f"agency={CONSUMER}", "all"): 2 / 3,
        ("deliveries.digital_share", f"agency={CONSUMER}", DAY): 0.5,
    }
    async with httpx.AsyncClient(base_url=platform.url) as client:
        series = (
            await client.get(
                "/api/metrics/exchange.transactions/series",
                params={"granularity": "day", "dimensions": f"consumer={CONSUMER}"},
            )
        ).json()
        refused = await client.get("/api/metrics", params={"granularity": "fortnight"})
        openapi = (await client.get("/openapi.json")).json()
    assert series["points"] == [
        {
            "window_label": DAY,
            "window_start": window_of("day", AT).start.isoformat(),  # type: ignore[union-attr]
            "value": float(N_TRANSACTIONS),
            "unit": "count",
        }
    ]
    assert {"/api/metrics", "/api/metrics/{metric}/series", "/api/stream"} <= set(openapi["paths"])
    assert refused.status_code == 400
    assert refused.json()["code"] == "unknown_granularity"


async def test_the_stream_pushes_the_dashboard_again_when_a_figure_changes(
    kafka_admin: KafkaAccess, platform: ServiceProcess, published: None
) -> None:
    await _wait_api(
        platform, {("exchange.transactions", f"consumer={CONSUMER}", "all"): N_TRANSACTIONS}
    )
    pushed: list[dict[str, Any]] = []
    async with (
        httpx.AsyncClient(base_url=platform.url, timeout=None) as client,
        client.stream("GET", "/api/stream") as stream,
    ):
        producer = new_producer(kafka_admin, client_id="metrics-e2e-stream")
        await producer.start()
        try:
            async for line in stream.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = json.loads(line[len("data:") :])
                pushed.append(data)
                if len(pushed) == 1:
                    await publish(producer, events.transaction(CONSUMER, at=AT))
                row: dict[str, Any] = next(
                    (a for a in data["agencies"] if a["agency"] == CONSUMER), {}
                )
                if row.get("requests_sent") == N_TRANSACTIONS + 1:
                    break
        finally:
            await producer.stop()

    first = next(a for a in pushed[0]["agencies"] if a["agency"] == CONSUMER)
    last = next(a for a in pushed[-1]["agencies"] if a["agency"] == CONSUMER)
    assert first["requests_sent"] == N_TRANSACTIONS
    assert last["requests_sent"] == N_TRANSACTIONS + 1


def _persian(number: int) -> str:
    return str(number).translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))


async def test_the_dashboard_renders_in_persian_right_to_left_with_the_figures(
    platform: ServiceProcess, published: None, tmp_path: Path
) -> None:
    await _wait_api(platform, {("adoption.smart_share", f"agency={CONSUMER}", "all"): 1 / 3})
    async with httpx.AsyncClient(base_url=platform.url) as client:
        sent = await _api_value(client, "exchange.transactions", f"consumer={CONSUMER}", "all")
    page = f"{platform.url}/dashboard?lang=fa"
    dom = await asyncio.to_thread(chromium, "--window-size=1280,900", "--dump-dom", page)
    screenshot = tmp_path / "dashboard-fa.png"
    await asyncio.to_thread(chromium, f"--screenshot={screenshot}", "--window-size=1280,900", page)
    print(f"dashboard screenshot: {screenshot}")

    assert re.search(r'<html lang="fa" dir="rtl"', dom)
    cards = re.findall(r'<div class="card" data-metric="([a-z_0-9]+)">', dom)
    assert "people_authenticated" in cards
    assert "smart_share" in cards
    row = re.search(rf'<tr data-key="{CONSUMER}">(.*?)</tr>', dom)
    assert row is not None, "the agency's row was not rendered"
    # The requests it sent and its smart share of 33.3%, in Persian digits.
    assert f'<td class="num">{_persian(int(sent))}</td>' in row.group(1)
    assert '<td class="num">۳۳٫۳٪</td>' in row.group(1)
    assert "لرستان" in dom
    assert screenshot.stat().st_size > 10_000


async def test_the_dashboard_renders_in_english_left_to_right(
    platform: ServiceProcess, published: None
) -> None:
    dom = await asyncio.to_thread(chromium, "--dump-dom", f"{platform.url}/dashboard?lang=en")
    assert re.search(r'<html lang="en" dir="ltr"', dom)
    assert "People authenticated" in dom
    assert "Lorestan" in dom
    assert re.search(rf'<tr data-key="{CONSUMER}">.*?33\.3%', dom)


async def _programme_targets(platform: ServiceProcess, wanted: str, timeout: float = 90) -> Any:
    """The API's list once the worker's progress of `wanted` reached the service."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with httpx.AsyncClient(base_url=platform.url) as client:
        while True:
            targets = (await client.get("/api/programme/targets")).json()["targets"]
            evaluated = [t for t in targets if t["target_id"] == wanted and t.get("published_at")]
            if evaluated or loop.time() > deadline:
                return targets
            await asyncio.sleep(1)


async def test_the_programme_page_shows_each_plan_target_and_its_status_inchromium(
    platform: ServiceProcess, published: None, tmp_path: Path
) -> None:
    # The reference register loads at the service's start; the worker evaluates it.
    targets = await _programme_targets(platform, "plan6.electronic-services")
    by_id = {t["target_id"]: t for t in targets}
    page = f"{platform.url}/dashboard/programme?lang=fa"
    dom = await asyncio.to_thread(chromium, "--window-size=1280,2400", "--dump-dom", page)
    screenshot = tmp_path / "programme-fa.png"
    await asyncio.to_thread(chromium, f"--screenshot={screenshot}", "--window-size=1280,2400", page)
    english = await asyncio.to_thread(
        chromium, "--dump-dom", f"{platform.url}/dashboard/programme?lang=en"
    )
    print(f"programme screenshot: {screenshot}")

    sixth = by_id["plan6.electronic-services"]
    # 70% electronic in 1403 against 100% by the end of 1402: the 6th plan's target missed.
    assert sixth["published_at"] is not None
    assert sixth["status"] == "missed"
    assert re.search(r'<html lang="fa" dir="rtl"', dom)
    card = re.search(
        r'<article class="target status-(\w+)"[^>]*data-target="plan6\.electronic-services"', dom
    )
    assert card is not None, "the 6th plan's card was not rendered"
    assert card.group(1) == "missed"
    for target_id in (
        "plan6.in-person-visits",
        "plan7.smart-services-1403",
        "plan7.smart-services-all",
    ):
        assert f'data-target="{target_id}"' in dom
    assert "برنامه هفتم" in dom
    assert "<svg" in dom
    assert screenshot.stat().st_size > 20_000
    assert re.search(r'<html lang="en" dir="ltr"', english)
    assert "7th development plan" in english


async def test_the_provinces_page_shows_lorestans_week_and_who_is_missing(
    platform: ServiceProcess, published: None
) -> None:
    # The service loads Lorestan's published figures as its first week unless it has
    # reported already (other tests' directorates may have): chart whichever week it has.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    async with httpx.AsyncClient(base_url=platform.url) as client:
        while True:
            history = (await client.get("/api/provinces/IR-15/reports")).json()["reports"]
            if history or loop.time() > deadline:
                break
            await asyncio.sleep(1)
    assert history, "Lorestan has no weekly report"
    week = str(history[0]["week"])
    page = f"{platform.url}/dashboard/provinces?lang=fa&week={week}&province=IR-15"
    # The province's weeks are fetched after load: virtual time lets the fetch finish.
    dom = await asyncio.to_thread(
        chromium, "--window-size=1280,2400", "--virtual-time-budget=10000", "--dump-dom", page
    )
    english = await asyncio.to_thread(
        chromium, "--dump-dom", f"{platform.url}/dashboard/provinces?lang=en&week={week}"
    )

    assert re.search(r'<html lang="fa" dir="rtl"', dom)
    rows = dict(
        re.findall(r'<tr class="row-[\w-]+" data-province="(IR-\d\d)" data-status="([\w-]+)"', dom)
    )
    assert len(rows) == 31
    # The sample's week is past when it is loaded: it is in, and marked late.
    assert rows["IR-15"] in {"reported", "late"}
    assert '<figure class="history-chart" data-figure="coverage_4g_share"' in dom
    assert "لرستان" in dom
    assert re.search(r'<html lang="en" dir="ltr"', english)
    assert "Lorestan" in english
