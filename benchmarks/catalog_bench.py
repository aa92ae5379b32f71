"""Catalog benchmark: search latency over 10,000 services, and delivery ingestion throughput.

    PANJEREH_TEST_SLOT=N .venv/bin/python benchmarks/catalog_bench.py [--services 10000]
        [--deliveries 20000] [--queries 400]

Starts its own Kafka and PostgreSQL (a platform home of its own, on ports shifted by the
slot) unless `--bootstrap` and `--database-url` point at running ones. Then:

1. Fills the register with generated services (reference agencies, titles and texts from
   the seed articles), written through the register itself (history and outbox included).
2. Search: runs queries typed as citizens type them (Arabic letter forms, no ZWNJ,
   English), some with filters, through the HTTP API in-process; prints p50, p95, p99.
3. Deliveries: produces N valid `DeliveryReported` to `catalog.delivery-reports` (a tenth
   of them sent twice), then starts the catalog (one process: its consumer and outbox
   relay) and times until every distinct report is a `DeliveryRecorded` on
   `catalog.deliveries`; prints events per second and the ratio to the floor of 3 million
   deliveries a day with a tenfold peak hour (≈ 347/s).
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

from infra.platform import LocalPlatform, Ports  # noqa: E402
from services.catalog import reference, register  # noqa: E402
from services.catalog.bootstrap import build  # noqa: E402
from services.catalog.domain import ServiceEntry  # noqa: E402
from services.catalog.http import router  # noqa: E402
from services.catalog.settings import CatalogSettings  # noqa: E402
from shared.db import create_pool  # noqa: E402
from shared.envelope import Envelope  # noqa: E402
from shared.events.catalog import DeliveryReported  # noqa: E402
from shared.kafka import event_headers, new_producer  # noqa: E402
from shared.logging import configure_logging  # noqa: E402
from shared.reference.provinces import PROVINCES  # noqa: E402
from shared.runtime import create_app  # noqa: E402
from shared.topics import Topic  # noqa: E402

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
        existing = await pool.fetchval("SELECT count(*) FROM services WHERE service_id ~ 'bench-'")
        if existing >= count:
            return
        services = generated_services(count, rng)
        started = time.perf_counter()
        for start in range(0, count, 500):
            async with pool.acquire() as connection, connection.transaction():
                for entry in services[start : start + 500]:
                    await register.draft_service(connection, entry, by="operator:benchmark")
                    await register.set_service_status(
                        connection, entry.service_id, "published", by="operator:benchmark"
                    )
        took = time.perf_counter() - started
        print(f"register: {count} services drafted and published in {took:.1f} s")
    finally:
        await pool.close()


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def bench_search(client: httpx.AsyncClient, queries: int, rng: random.Random) -> None:
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


async def produce_reports(bootstrap: str, count: int, rng: random.Random) -> set[uuid.UUID]:
    """Valid reports for reference services, a tenth of them sent twice."""
    services = [s for s in reference.reference_services() if s.status == "published"]
    producer = new_producer(bootstrap, client_id="catalog-bench")
    await producer.start()
    ids: set[uuid.UUID] = set()
    now = datetime.now(UTC)
    try:
        pending = []
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
            ids.add(report.report_id)
            copies = 2 if index % 10 == 0 else 1
            for _ in range(copies):
                envelope = Envelope.wrap(report, source=report.agency, subject=report.agency)
                pending.append(
                    await producer.send(
                        Topic.CATALOG_DELIVERY_REPORTS,
                        envelope.to_bytes(),
                        key=envelope.key(),
                        headers=event_headers(envelope),
                    )
                )
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return ids


async def count_recorded(bootstrap: str) -> int:
    """DeliveryRecorded events on the clean topic, as a read_committed reader sees them."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False
    )
    await consumer.start()
    try:
        probe = new_producer(bootstrap, client_id="catalog-bench-probe")
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
            seen += sum(len(records) for records in batch.values())
        return seen
    finally:
        await consumer.stop()


async def bench_deliveries(settings: CatalogSettings, count: int, rng: random.Random) -> None:
    before = await count_recorded(settings.kafka_bootstrap_servers)
    produced_at = time.perf_counter()
    ids = await produce_reports(settings.kafka_bootstrap_servers, count, rng)
    sent = count + (count + 9) // 10
    print(
        f"deliveries: {sent} reports ({len(ids)} distinct) produced to "
        f"{Topic.CATALOG_DELIVERY_REPORTS} in {time.perf_counter() - produced_at:.1f} s"
    )
    pool = await create_pool(settings.database_url, "catalog", max_size=2)
    topic = Topic.CATALOG_DELIVERIES.value
    app = build(settings)
    try:
        last_id = await pool.fetchval("SELECT coalesce(max(id), 0) FROM outbox")
        started = time.perf_counter()
        async with app.router.lifespan_context(app):
            query = "SELECT count(*) FROM outbox WHERE topic = $1 AND id > $2"
            published_query = query + " AND published_at IS NOT NULL"
            while True:
                if await pool.fetchval(published_query, topic, last_id) >= len(ids):
                    break
                await asyncio.sleep(0.2)
            took = time.perf_counter() - started
        # Steady state: from the first delivery recorded to the last one published.
        first, last = await pool.fetchrow(
            "SELECT min(created_at), max(published_at) FROM outbox WHERE topic = $1 AND id > $2",
            topic,
            last_id,
        )
        steady = (last - first).total_seconds()
    finally:
        await pool.close()
    recorded = await count_recorded(settings.kafka_bootstrap_servers) - before
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


async def run(args: argparse.Namespace) -> None:
    rng = random.Random(1403)
    settings = CatalogSettings(
        kafka_bootstrap_servers=args.bootstrap, database_url=args.database_url
    ).model_copy(update={"load_reference_when_empty": False, "log_level": "WARNING"})
    configure_logging("catalog-bench", settings)
    await fill_register(settings.database_url, args.services, rng)
    # The search phase runs the HTTP API and the relay only (no consumer), and waits until
    # the register's announcements are published, so neither phase slows the other.
    app = create_app(settings, title="catalog-bench", routers=[router], verifies_tokens=True)
    async with app.router.lifespan_context(app):
        pool = app.state.runtime.pool
        while True:
            if not await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"):
                break
            await asyncio.sleep(0.5)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://catalog") as client:
            await bench_search(client, args.queries, rng)
    await bench_deliveries(settings, args.deliveries, rng)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--deliveries", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--bootstrap", default=None)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--keep", action="store_true", help="leave the infrastructure running")
    args = parser.parse_args()
    platform = None
    if args.bootstrap is None or args.database_url is None:
        shift = int(os.environ.get("PANJEREH_TEST_SLOT", "0")) * 100
        ports = Ports(kafka=49092 + shift, kafka_controller=49093 + shift, postgres=55499 + shift)
        slot_home = REPO / ".data" / f"bench-{shift // 100}"
        platform = LocalPlatform(home=slot_home, ports=ports)
        platform.start_infrastructure()
        args.bootstrap, args.database_url = (
            platform.kafka_bootstrap,
            platform.database_url_for("catalog"),
        )
    try:
        asyncio.run(run(args))
    finally:
        if platform is not None and not args.keep:
            platform.down()


if __name__ == "__main__":
    main()
