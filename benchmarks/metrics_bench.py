"""Metrics worker benchmark: aggregation rate against a bare decoding consumer, and freshness.

    PANJEREH_TEST_SLOT=4 .venv/bin/python benchmarks/metrics_bench.py [--events 10000]

Starts (or reuses) the benchmarks' Kafka of the slot (`.data/bench-<slot>`), or uses the
running platform of `--home` (see benchmarks/stage.py). Each client connects as the
principal whose part it plays: the producer as the exchange, the bare consumer and the
worker as the metrics worker, the readers of the figures as an analyst. Then, on
`exchange.transactions`:
1. produces N transactions (one unique consumer agency, so their figure is this run's own);
2. a bare aiokafka consumer reads those N records and only decodes them: records/s;
3. a fresh Faust worker (its group's offsets set to where the N records start) aggregates
   them: records/s from "worker ready" to the figure reaching N on `metrics.exchange`;
4. freshness: with the worker caught up, one event at a time, the time from the broker's
   acknowledgement to its figure being visible on `metrics.exchange`; p50 and p99.
5. deliveries: D deliveries of one new agency on `catalog.deliveries`, counted by a fresh
   worker of their own (each remembered by its event id): deliveries/s from "worker
   ready" to the figure reaching D on `metrics.deliveries`;
6. recovery: that worker is killed (SIGKILL), one more delivery is published, and the
   worker is started again on its data directory: the seconds from its start to the
   figure counting that delivery, with the D deliveries as history.

`--smoke` runs every step on a few hundred events, to show the benchmark still works.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.stage import (  # noqa: E402
    Stage,
    add_arguments,
    fill_sizes,
    run_on_stage,
    write_figures,
)
from shared.envelope import Envelope  # noqa: E402
from shared.kafka import new_producer, publish  # noqa: E402
from shared.kafka_access import KafkaAccess  # noqa: E402
from shared.principals import METRICS_WORKER_APP_ID, Principal  # noqa: E402
from shared.registry import decode  # noqa: E402
from shared.topics import Topic  # noqa: E402
from tests.integration.metrics import events  # noqa: E402
from tests.integration.metrics.worker_process import WorkerProcess  # noqa: E402

SOURCE = Topic.EXCHANGE_TRANSACTIONS.value
WORKER_TOPICS = (
    Topic.EXCHANGE_TRANSACTIONS,
    Topic.IDENTITY_CITIZENS,
    Topic.IDENTITY_AUTHENTICATIONS,
    Topic.CATALOG_SERVICES,
    Topic.CATALOG_AGENCIES,
    Topic.CATALOG_DELIVERIES,
    Topic.PLATFORM_LIFECYCLE,
)


async def end_offsets(kafka: KafkaAccess, topics: list[str]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(**kafka.client_options())
    await consumer.start()
    try:
        tps = [
            TopicPartition(t, p)
            for t in topics
            for p in sorted(consumer.partitions_for_topic(t) or await _partitions(consumer, t))
        ]
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        return ends
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


async def produce(
    access: KafkaAccess, make: Callable[[], Envelope[Any]], count: int, client_id: str
) -> None:
    """Publish `count` events made by `make`, 500 in flight at a time."""
    producer = new_producer(access, client_id=client_id)
    await producer.start()
    try:
        for start in range(0, count, 500):
            batch = [make() for _ in range(min(500, count - start))]
            await asyncio.gather(*(publish(producer, e) for e in batch))
    finally:
        await producer.stop()


async def bare_decode_rate(
    kafka: KafkaAccess, starts: dict[TopicPartition, int], count: int
) -> float:
    consumer = AIOKafkaConsumer(
        **kafka.client_options(),
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_poll_records=2000,
    )
    await consumer.start()
    try:
        tps = [tp for tp in starts if tp.topic == SOURCE]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, starts[tp])
        seen = 0
        began: float | None = None
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1000, max_records=2000)
            for records in batch.values():
                if began is None:
                    began = time.perf_counter()
                for record in records:
                    decode(record.value, SOURCE)
                    seen += 1
        assert began is not None
        return count / (time.perf_counter() - began)
    finally:
        await consumer.stop()


async def commit_group_offsets(
    kafka: KafkaAccess, group: str, offsets: dict[TopicPartition, int]
) -> None:
    consumer = AIOKafkaConsumer(**kafka.client_options(), group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


async def wait_for_figure(consumer: AIOKafkaConsumer, key: str, value: float) -> float:
    """Follow the figures until `key` holds `value`; returns when it was seen."""
    while True:
        batch = await consumer.getmany(timeout_ms=200)
        for records in batch.values():
            for record in records:
                if (
                    record.key == key.encode()
                    and json.loads(record.value)["payload"]["value"] >= value
                ):
                    return time.perf_counter()


async def following(analyst: KafkaAccess, topic: Topic) -> AIOKafkaConsumer:
    """A started reader of a metrics topic, positioned at its end, as an analyst reads the
    figures."""
    follower = AIOKafkaConsumer(topic.value, **analyst.client_options(), auto_offset_reset="latest")
    await follower.start()
    await follower.getmany(timeout_ms=500)  # join and position at the end before measuring
    return follower


async def wait_ready(worker: WorkerProcess) -> float:
    deadline = time.perf_counter() + 300
    while time.perf_counter() < deadline:
        if "Worker ready" in worker.log_text():
            return time.perf_counter()
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the worker did not start:\n{worker.log_text()[-2000:]}")


async def freshness(stage: Stage, samples: int) -> list[float]:
    code = events.unique_agency("fresh")
    key = f"exchange.transactions|consumer={code}|all_time:all"
    analyst = stage.access(Principal.ANALYST)
    producer = new_producer(stage.access(Principal.EXCHANGE), client_id="metrics-bench-freshness")
    await producer.start()
    follower = await following(analyst, Topic.METRICS_EXCHANGE)
    latencies = []
    try:
        for i in range(samples):
            await publish(producer, events.transaction(code))
            acked = time.perf_counter()
            seen = await wait_for_figure(follower, key, i + 1)
            latencies.append(seen - acked)
    finally:
        await producer.stop()
        await follower.stop()
    return latencies


async def deliveries_and_recovery(stage: Stage, logs: Path, count: int) -> tuple[float, float]:
    """Deliveries counted per second by a fresh worker, then its recovery after SIGKILL.

    `count` deliveries of one new agency are published; a worker of its own (its group's
    offsets where they begin) counts them, each remembered by its event id. Then it is
    killed, one more delivery is published, and it is started again on its data directory:
    the seconds from that start to the figure counting the last delivery.
    """
    worker_access = stage.access(Principal.METRICS_WORKER)
    catalog = stage.access(Principal.CATALOG)
    analyst = stage.access(Principal.ANALYST)
    agency = events.unique_agency("benchdl")
    key = f"deliveries.count|agency={agency}|all_time:all"
    starts = await end_offsets(worker_access, [t.value for t in WORKER_TOPICS])
    await produce(catalog, lambda: events.delivery(agency), count, "metrics-bench-deliveries")
    worker = WorkerProcess(
        worker_access, logs, app_id=f"{METRICS_WORKER_APP_ID}-bench-dl-{uuid.uuid4().hex[:8]}"
    )
    await commit_group_offsets(worker_access, worker.app_id, starts)
    follower = await following(analyst, Topic.METRICS_DELIVERIES)
    worker.start()
    try:
        ready = await wait_ready(worker)
        done = await wait_for_figure(follower, key, float(count))
        rate = count / (done - ready)
        worker.kill()
        await produce(catalog, lambda: events.delivery(agency), 1, "metrics-bench-recovery")
        restarted = time.perf_counter()
        worker.start()
        seen = await asyncio.wait_for(wait_for_figure(follower, key, float(count + 1)), 900)
        return rate, seen - restarted
    finally:
        await follower.stop()
        worker.stop()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace, stage: Stage) -> None:
    worker_access = stage.access(Principal.METRICS_WORKER)
    analyst = stage.access(Principal.ANALYST)
    print(
        f"broker {worker_access.bootstrap_servers}; "
        f"{args.events} TransactionRecorded events on {SOURCE}"
    )

    code = events.unique_agency("bench")
    starts = await end_offsets(worker_access, [t.value for t in WORKER_TOPICS])
    at = datetime(1985, 1, 1, tzinfo=UTC) + timedelta(minutes=uuid.uuid4().int % 500_000)
    await produce(
        stage.access(Principal.EXCHANGE),
        lambda: events.transaction(code, at=at, outcome="answered"),
        args.events,
        "metrics-bench",
    )

    bare = await bare_decode_rate(worker_access, starts, args.events)

    with tempfile.TemporaryDirectory() as logs:
        worker = WorkerProcess(
            worker_access,
            Path(logs),
            app_id=f"{METRICS_WORKER_APP_ID}-bench-{uuid.uuid4().hex[:8]}",
        )
        # Start the worker's group where this run's records begin (and at the end of the
        # other topics it reads), so it aggregates exactly these N records.
        await commit_group_offsets(worker_access, worker.app_id, starts)
        follower = await following(analyst, Topic.METRICS_EXCHANGE)
        worker.start()
        try:
            ready = await wait_ready(worker)
            done = await wait_for_figure(
                follower, f"exchange.transactions|consumer={code}|all_time:all", args.events
            )
            await follower.stop()
            faust_rate = args.events / (done - ready)
            latencies = await freshness(stage, args.freshness_samples)
        finally:
            worker.stop()
        deliveries_rate, recovery = await deliveries_and_recovery(
            stage, Path(logs), args.deliveries
        )

    print(f"bare aiokafka consumer, decode only : {bare:10.0f} events/s")
    print(f"Faust worker, all aggregates        : {faust_rate:10.0f} events/s")
    print(f"ratio worker / bare                 : {faust_rate / bare:10.3f}")
    print(
        f"freshness (ack -> figure on topic)  : p50 {percentile(latencies, 0.5) * 1000:.0f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms, mean "
        f"{statistics.mean(latencies) * 1000:.0f} ms over {len(latencies)} events "
        "(worker flush interval 0.5 s)"
    )
    print(f"Faust worker, deliveries counted    : {deliveries_rate:10.0f} deliveries/s")
    print(
        f"recovery after SIGKILL              : {recovery:10.1f} s from restart to a new "
        f"delivery's figure, {args.deliveries:,} deliveries of history"
    )
    write_figures(
        args,
        {
            "events": args.events,
            "bare_events_per_s": bare,
            "worker_events_per_s": faust_rate,
            "ratio_to_bare": faust_rate / bare,
            "freshness_samples": len(latencies),
            "freshness_p50_ms": percentile(latencies, 0.5) * 1000,
            "freshness_p99_ms": percentile(latencies, 0.99) * 1000,
            "freshness_mean_ms": statistics.mean(latencies) * 1000,
            "deliveries": args.deliveries,
            "deliveries_per_s": deliveries_rate,
            "recovery_history_deliveries": args.deliveries,
            "recovery_s": recovery,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--events", type=int, default=None, help="10,000 (smoke: 300)")
    parser.add_argument("--freshness-samples", type=int, default=None, help="50 (smoke: 3)")
    parser.add_argument(
        "--deliveries",
        type=int,
        default=None,
        help="deliveries counted, then the history of the recovery: 10,000 (smoke: 300)",
    )
    add_arguments(parser, database=False)
    args = parser.parse_args()
    fill_sizes(args, events=(10_000, 300), freshness_samples=(50, 3), deliveries=(10_000, 300))
    run_on_stage(args, None, lambda stage: run(args, stage))


if __name__ == "__main__":
    main()
