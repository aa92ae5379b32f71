"""Catalog benchmark: search latency over 10,000 services, and delivery ingestion throughput.

    PANJEREH_TEST_SLOT=N .venv/bin/python benchmarks/catalog_bench.py [--services 10000]
        [--deliveries 20000] [--queries 400] [--smoke]

Starts its own Kafka and PostgreSQL (a platform home of its own, on ports shifted by the
slot, kept for the next run unless `--down`) with an access manager, unless `--home` and
`--database-url` name a running platform and the catalog's role (see benchmarks/stage.py).
The catalog runs as its own principal; each agency reports as itself. Then:

1. Fills the register with generated services (reference agencies, titles and texts from
   the seed articles), written through the register itself (history and outbox included).
2. Search: runs queries typed as citizens type them (Arabic letter forms, no ZWNJ,
   English), some with filters, through the HTTP API in-process; prints p50, p95, p99.
3. Deliveries: the reference agencies report N valid `DeliveryReported`, each on its own
   channel `agency.<code>.deliveries` with the credentials the access manager issued it
   (a tenth of them sent twice), then starts the catalog (one process: its consumer and
   outbox relay) and times until every distinct report is a `DeliveryRecorded` on
   `catalog.deliveries`; prints events per second and the ratio to the floor of 3 million
   deliveries a day with a tenfold peak hour (≈ 347/s).

`--smoke` runs every phase on a few dozen services and a few hundred reports, in seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from panjereh_agency import DeliveryReporter  # noqa: E402

from benchmarks.stage import (  # noqa: E402
    Stage,
    add_arguments,
    fill_sizes,
    run_on_stage,
    write_figures,
)
from services.catalog import reference, use_cases  # noqa: E402
from services.catalog.bootstrap import build  # noqa: E402
from services.catalog.domain import Editor, ServiceEntry  # noqa: E402
from services.catalog.http import router  # noqa: E402
from services.catalog.settings import CatalogSettings  # noqa: E402
from services.catalog.storage import CatalogStorage  # noqa: E402
from shared.db import create_pool  # noqa: E402
from shared.events.catalog import DeliveryReported, delivery_event_id  # noqa: E402
from shared.kafka import new_producer  # noqa: E402
from shared.kafka_access import KafkaAccess  # noqa: E402
from shared.logging import configure_logging  # noqa: E402
from shared.principals import Principal  # noqa: E402
from shared.reference.provinces import PROVINCES  # noqa: E402
from shared.registry import decode  # noqa: E402
from shared.runtime import create_app  # noqa: E402
from shared.topics import Topic  # noqa: E402
from shared.unit_of_work import transaction  # noqa: E402

FLOOR_PER_DAY = 3_000_000
PEAK_FACTOR = 10
# The peak hour runs at ten times the day's average rate.
FLOOR_PER_SECOND = FLOOR_PER_DAY / 86_400 * PEAK_FACTOR

SEEDS = REPO.parent / "shared" / "seeds"

QUERIES = [
    "كارنامه دانشآموز",
    "مشاهده كارنامه",
    "اظهارنامه مالياتي",
    "سوابق بيمهاي",
    "گواهي عدم سوءپيشينه",
    "شناسنامه المثني",
    "ثبتنام مدرسه",
    "پنجره ملي خدمات",
    "شبكه ملي اطلاعات",
    "دولت الكترونيك",
    "نسخه الكترونيك",
    "ابلاغيه قضايي",
    "report card",
    "tax return",
    "insurance record",
    "parcel",
    "۱۴۰۳ خدمات",
    "فيبر نوري",
    "مراجعه حضوري",
    "دستگاههاي اجرايي",
]
FILTERS: list[dict[str, Any]] = [
    {},
    {},
    {"province": "IR-15"},
    {"min_maturity": 3},
    {"channel": "online"},
    {"agency": "education"},
]


def seed_sentences() -> list[str]:
    """Sentences of the seed articles (real Persian text), or reference texts without them."""
    sentences: list[str] = []
    folder = Path(os.environ.get("PANJEREH_SEEDS", SEEDS))
    for path in sorted(folder.glob("*.txt")) if folder.is_dir() else []:
        text = path.read_text("utf-8", errors="ignore")
        sentences += [s.strip() for s in re.split(r"[.\n!؟?:]", text) if 20 < len(s.strip()) < 400]
    if not sentences:
        sentences = [s.description_fa for s in reference.reference_services()]
    return sentences


def generated_services(count: int, rng: random.Random) -> list[ServiceEntry]:
    agencies = [a.code for a in reference.reference_agencies() if a.code != "foreign-affairs"]
    templates = reference.reference_services()
    sentences = seed_sentences()
    services = []
    for index in range(count):
        template = templates[index % len(templates)]
        words = rng.choice(sentences).split()
        start = rng.randrange(max(1, len(words) - 4))
        phrase = " ".join(words[start : start + rng.randint(2, 4)])
        agency = agencies[index % len(agencies)]
        services.append(
            ServiceEntry(
                service_id=f"{agency}.bench-{index}",
                title_fa=f"{template.title_fa} {phrase}"[:200],
                title_en=f"{template.title_en} {index}",
                description_fa=" ".join(rng.sample(sentences, 2))[:1900],
                description_en=template.description_en,
                category=template.category,
                audiences=template.audiences,
                channels=rng.sample(["online", "pishkhan", "in_person"], rng.randint(1, 3)),
                maturity=rng.randint(0, 5),
                data_needs=template.data_needs,
            )
        )
    return services


async def fill_register(database_url: str, count: int, rng: random.Random) -> None:
    pool = await create_pool(database_url, "catalog", max_size=2)
    try:
        await reference.load(pool)
        rows = await pool.fetch("SELECT service_id FROM services WHERE service_id ~ 'bench-'")
        existing = {row["service_id"] for row in rows}
        if len(existing) >= count:
            return
        # An earlier, smaller run's services stay; only the missing ones are added.
        services = [s for s in generated_services(count, rng) if s.service_id not in existing]
        started = time.perf_counter()
        editor = Editor("operator:benchmark", operator=True)
        for start in range(0, len(services), 500):
            async with transaction(pool, CatalogStorage) as work:
                for entry in services[start : start + 500]:
                    await use_cases.draft_service(work, entry, editor)
                    await use_cases.publish_service(work, entry.service_id, editor)
        took = time.perf_counter() - started
        print(f"register: {len(services)} services drafted and published in {took:.1f} s")
    finally:
        await pool.close()


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def bench_search(
    client: httpx.AsyncClient, queries: int, rng: random.Random
) -> dict[str, float]:
    total = await client.get("/services", params={"per_page": 1})
    print(f"search: {total.json()['total']} published services")
    for text in QUERIES[:5]:  # warm the caches
        await client.get("/services", params={"q": text})
    samples: list[float] = []
    hits: list[int] = []
    for _ in range(queries):
        params = {"q": rng.choice(QUERIES), **rng.choice(FILTERS)}
        started = time.perf_counter()
        response = await client.get("/services", params=params)
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"search failed: {response.status_code} {response.text}")
        hits.append(response.json()["total"])
    print(
        f"search latency over {len(samples)} queries (HTTP API in-process, 20 per page): "
        f"p50 {percentile(samples, 50):.1f} ms, p95 {percentile(samples, 95):.1f} ms, "
        f"p99 {percentile(samples, 99):.1f} ms, mean {statistics.mean(samples):.1f} ms; "
        f"median matches per query {statistics.median(hits):.0f}"
    )
    return {
        "search_services": total.json()["total"],
        "search_queries": len(samples),
        "search_p50_ms": percentile(samples, 50),
        "search_p95_ms": percentile(samples, 95),
        "search_p99_ms": percentile(samples, 99),
        "search_mean_ms": statistics.mean(samples),
    }


async def produce_reports(stage: Stage, count: int, rng: random.Random) -> set[uuid.UUID]:
    """Valid reports for reference services, a tenth of them sent twice, each agency's on
    its own channel with its own credentials."""
    services = [s for s in reference.reference_services() if s.status == "published"]
    now = datetime.now(UTC)
    by_agency: dict[str, list[DeliveryReported]] = {}
    for index in range(count):
        service = services[index % len(services)]
        report = DeliveryReported(
            report_id=uuid.uuid4(),
            agency=service.service_id.split(".")[0],
            service_id=service.service_id,
            channel=service.channels[0],
            province=rng.choice(PROVINCES).code,
            started_at=now - timedelta(minutes=5),
            finished_at=now - timedelta(minutes=1),
            outcome=rng.choice(["completed", "completed", "completed", "rejected"]),
        )
        copies = 2 if index % 10 == 0 else 1
        by_agency.setdefault(report.agency, []).extend([report] * copies)
    reporters = [
        DeliveryReporter(await stage.agency_access(agency), agency) for agency in by_agency
    ]
    for reporter in reporters:
        await reporter.start()
    try:
        # Every agency at once, a few hundred reports in flight each, as busy systems send.
        async def send_all(reporter: DeliveryReporter) -> None:
            reports = by_agency[reporter.agency]
            for start in range(0, len(reports), 500):
                await asyncio.gather(*(reporter.report(r) for r in reports[start : start + 500]))

        await asyncio.gather(*(send_all(reporter) for reporter in reporters))
    finally:
        for reporter in reporters:
            await reporter.stop()
    return {report.report_id for reports in by_agency.values() for report in reports}


async def count_recorded(observer: KafkaAccess, events: set[uuid.UUID]) -> int:
    """DeliveryRecorded events among `events` on the clean topic, as a read_committed reader
    sees them (the topic may hold others': a running platform's, an earlier run's)."""
    consumer = AIOKafkaConsumer(
        **observer.client_options(), isolation_level="read_committed", enable_auto_commit=False
    )
    await consumer.start()
    try:
        probe = new_producer(observer, client_id="catalog-bench-probe")
        await probe.start()
        try:
            partitions = await probe.partitions_for(Topic.CATALOG_DELIVERIES)
        finally:
            await probe.stop()
        tps = [TopicPartition(Topic.CATALOG_DELIVERIES, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        seen = 0
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            batch = await consumer.getmany(*tps, timeout_ms=500, max_records=5000)
            for records in batch.values():
                seen += sum(decode(r.value, Topic.CATALOG_DELIVERIES).id in events for r in records)
        return seen
    finally:
        await consumer.stop()


async def bench_deliveries(
    stage: Stage, settings: CatalogSettings, count: int, rng: random.Random
) -> dict[str, float]:
    produced_at = time.perf_counter()
    ids = await produce_reports(stage, count, rng)
    sent = count + (count + 9) // 10
    print(
        f"deliveries: {sent} reports ({len(ids)} distinct) produced to "
        f"agency.<code>.deliveries, each agency on its own, in "
        f"{time.perf_counter() - produced_at:.1f} s"
    )
    # Only this run's deliveries count: their event ids follow from the report ids.
    events = {delivery_event_id(report_id) for report_id in ids}
    ours = list(events)
    pool = await create_pool(settings.database_url, "catalog", max_size=2)
    topic = Topic.CATALOG_DELIVERIES.value
    app = build(settings)
    try:
        last_id = await pool.fetchval("SELECT coalesce(max(id), 0) FROM outbox")
        started = time.perf_counter()
        async with app.router.lifespan_context(app):
            query = (
                "SELECT count(*) FROM outbox WHERE topic = $1 AND id > $2"
                " AND event_id = ANY($3::uuid[])"
            )
            published_query = query + " AND published_at IS NOT NULL"
            while True:
                if await pool.fetchval(published_query, topic, last_id, ours) >= len(ids):
                    break
                await asyncio.sleep(0.2)
            took = time.perf_counter() - started
        # Steady state: from the first delivery recorded to the last one published.
        first, last = await pool.fetchrow(
            "SELECT min(created_at), max(published_at) FROM outbox"
            " WHERE topic = $1 AND id > $2 AND event_id = ANY($3::uuid[])",
            topic,
            last_id,
            ours,
        )
        steady = (last - first).total_seconds()
    finally:
        await pool.close()
    recorded = await count_recorded(stage.admin, events)
    rate = len(ids) / steady
    print(
        f"deliveries: {len(ids)} distinct reports recorded and published on "
        f"{Topic.CATALOG_DELIVERIES}: {steady:.1f} s from the first recorded to the last "
        f"published ({took:.1f} s including the service's start and group join); "
        "one process: consumer + outbox relay"
    )
    print(f"deliveries on the clean topic after the run: {recorded} (distinct reports: {len(ids)})")
    print(
        f"delivery ingestion: {rate:.0f} events/s; floor {FLOOR_PER_SECOND:.0f}/s "
        f"(3M a day, tenfold peak hour): ratio {rate / FLOOR_PER_SECOND:.2f}x"
    )
    if recorded != len(ids):
        raise SystemExit("the clean topic does not hold each distinct report exactly once")
    return {
        "ingestion_reports": len(ids),
        "ingestion_per_s": rate,
        "ingestion_steady_s": steady,
        "ingestion_with_start_s": took,
    }


async def run(args: argparse.Namespace, stage: Stage) -> None:
    rng = random.Random(1403)
    assert stage.database_url is not None
    kafka = {
        name.removeprefix("PANJEREH_").lower(): value
        for name, value in stage.kafka_environment(Principal.CATALOG).items()
    }
    settings = CatalogSettings(
        **kafka,  # the settings' own names, as in the environment
        database_url=stage.database_url,
    ).model_copy(update={"load_reference_when_empty": False, "log_level": "WARNING"})
    configure_logging("catalog-bench", settings)
    await fill_register(settings.database_url, args.services, rng)
    async with stage.agencies():
        # The search phase runs the HTTP API and the relay only (no consumer), and waits
        # until the register's announcements are published (the access manager makes the
        # agencies' channels from them), so neither phase slows the other.
        app = create_app(settings, title="catalog-bench", routers=[router], verifies_tokens=True)
        async with app.router.lifespan_context(app):
            pool = app.state.runtime.pool
            unpublished = "SELECT count(*) FROM outbox WHERE published_at IS NULL"
            while True:
                if not await pool.fetchval(unpublished):
                    break
                await asyncio.sleep(0.5)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://catalog") as client:
                figures = await bench_search(client, args.queries, rng)
        figures |= await bench_deliveries(stage, settings, args.deliveries, rng)
    write_figures(args, figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--services", type=int, default=None, help="10,000 (smoke: 60)")
    parser.add_argument("--deliveries", type=int, default=None, help="20,000 (smoke: 300)")
    parser.add_argument("--queries", type=int, default=None, help="400 (smoke: 20)")
    add_arguments(parser, database=True)
    args = parser.parse_args()
    fill_sizes(args, services=(10_000, 60), deliveries=(20_000, 300), queries=(400, 20))
    run_on_stage(args, "catalog", lambda stage: run(args, stage))


if __name__ == "__main__":
    main()
