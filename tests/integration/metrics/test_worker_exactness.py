"""Counts stay exact when the worker is SIGKILLed mid-stream and restarted (real broker)."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.metrics.domain.windows import window_of
from services.metrics.worker.exits import EXIT_BATCH_FAILED
from shared.envelope import Envelope
from shared.kafka import new_producer, publish
from shared.kafka_access import KafkaAccess
from shared.topics import Topic
from tests.integration.metrics import events
from tests.integration.metrics.worker_process import (
    WorkerProcess,
    latest_figures,
    wait_for_values,
)

N_TRANSACTIONS = 3000
N_CITIZENS = 150
N_DELIVERIES = 400
N_REPEATED_REPORTS = 60
N_RECORDED_AGAIN = 60


def _unique_moment() -> datetime:
    """A minute of a past year no other test uses, so window totals are this test's own."""
    rng = random.Random()
    return datetime(1990, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(10 * 365 * 24 * 60))


async def _publish_all(producer: AIOKafkaProducer, envelopes: list[Envelope[Any]]) -> None:
    for start in range(0, len(envelopes), 200):
        await asyncio.gather(*(publish(producer, e) for e in envelopes[start : start + 200]))


async def _first_figure_after_now(kafka: KafkaAccess, key: str, above: float) -> float:
    """Wait until the worker publishes `key` with a value above `above`; return it."""
    consumer = AIOKafkaConsumer(
        Topic.METRICS_EXCHANGE.value, **kafka.client_options(), auto_offset_reset="latest"
    )
    await consumer.start()
    try:
        async for record in consumer:
            if record.key == key.encode():
                value = float(json.loads(record.value)["payload"]["value"])
                if value > above:
                    return value
    finally:
        await consumer.stop()
    raise AssertionError("the metrics topic ended")


async def aborted_then_committed(kafka: KafkaAccess, consumer: str) -> int:
    """What a transactional relay does when a transaction fails: 50 transactions of
    `consumer` written to the log and aborted, then 20 written and committed; returns the
    count that must be seen (20)."""
    relay = new_producer(
        kafka, client_id="metrics-tests", transactional_id=f"metrics-tests-{uuid.uuid4()}"
    )
    await relay.start()
    try:
        await relay.begin_transaction()
        await _publish_all(relay, [events.transaction(consumer) for _ in range(50)])
        await relay.abort_transaction()
        await relay.begin_transaction()
        await _publish_all(relay, [events.transaction(consumer) for _ in range(20)])
        await relay.commit_transaction()
    finally:
        await relay.stop()
    return 20


async def test_counts_are_exact_across_sigkills_a_failed_batch_an_aborted_transaction_and_repeats(
    kafka_admin: KafkaAccess, producer: AIOKafkaProducer, worker: WorkerProcess
) -> None:
    """The worker SIGKILLed mid-stream twice; then every batch made to fail (Faust would
    acknowledge a batch whose agent raised: the worker must end before it does); then
    started as usual. Meanwhile a relay aborted a transaction (its records are in the log,
    and must not count), and some reports and transactions came twice (they count once).
    One worker for it all, so that it catches up on the session's history once."""
    at = _unique_moment()
    day = window_of("day", at).label
    minute = window_of("minute", at).label
    consumers = [events.unique_agency("cons") for _ in range(4)]
    agency = events.unique_agency("deliv")
    outcomes = ["answered", "answered", "answered", "denied", "refused", "timed_out"]
    transactions = [
        events.transaction(consumers[i % 4], outcome=outcomes[i % 6], at=at)  # type: ignore[arg-type]
        for i in range(N_TRANSACTIONS)
    ]
    people = [events.citizen(f"{agency}-{i}") for i in range(N_CITIZENS)]
    sign_ins = [events.authenticated(who, at=at) for who in people for _ in range(3)]
    failures = [events.failed(who, at=at) for who in people[:40]]
    reports = [
        events.delivery(agency, at=at, channel="online" if i % 4 else "in_person")
        for i in range(N_DELIVERIES)
    ]
    # The catalog may record a report twice (same event id): it must count once.
    repeats = [reports[i] for i in range(N_REPEATED_REPORTS)]
    # An exchange restored from a backup records again, as new events and perhaps with
    # another outcome, transactions it had recorded: each counts once, as first recorded.
    recorded_again = [
        Envelope.wrap(
            original.payload.model_copy(update={"outcome": "timed_out"}),
            source="exchange",
            subject=original.subject,
            occurred_at=at,
        )
        for original in transactions[:N_RECORDED_AGAIN]
    ]
    first_half = events.shuffled([*transactions[:1500], *sign_ins[:200], *reports[:200]])
    second_half = events.shuffled(
        [
            *transactions[1500:],
            *sign_ins[200:],
            *failures,
            *reports[200:],
            *repeats,
            *recorded_again,
        ]
    )
    total_key = f"exchange.transactions||minute:{minute}"

    await _publish_all(producer, first_half)
    seen_at_first_kill = await _first_figure_after_now(kafka_admin, total_key, 0)
    worker.kill()
    await _publish_all(producer, second_half)
    worker.start()
    seen_at_second_kill = await _first_figure_after_now(kafka_admin, total_key, seen_at_first_kill)
    worker.kill()
    worker.start(failpoints="metrics.batch_begun:raise")  # its every batch fails
    committed_only = events.unique_agency("relay")
    committed = await aborted_then_committed(kafka_admin, committed_only)
    assert worker.process is not None
    status = await asyncio.to_thread(worker.process.wait, 120)
    assert status == EXIT_BATCH_FAILED, worker.log_text()[-3000:]
    assert "a batch failed; the worker stops before acknowledging it" in worker.log_text()
    worker.start()

    outcome_counts = Counter(outcomes[i % 6] for i in range(N_TRANSACTIONS))
    committed_key = f"exchange.transactions|consumer={committed_only}|all_time:all"
    expected_exchange = {
        committed_key: float(committed),
        total_key: float(N_TRANSACTIONS),
        f"exchange.transactions||day:{day}": float(N_TRANSACTIONS),
        **{
            f"exchange.transactions|consumer={c}|all_time:all": float(N_TRANSACTIONS / 4)
            for c in consumers
        },
        **{
            f"exchange.transactions|outcome={o}|minute:{minute}": float(n)
            for o, n in outcome_counts.items()
        },
        **{
            f"exchange.denials|consumer={c}|day:{day}": float(n)
            for c, n in Counter(
                consumers[i % 4] for i in range(N_TRANSACTIONS) if outcomes[i % 6] == "denied"
            ).items()
        },
    }
    expected_identity = {
        f"identity.signins||day:{day}": float(len(sign_ins)),
        f"identity.failures||day:{day}": float(len(failures)),
        f"identity.people_first_authenticated||day:{day}": float(N_CITIZENS),
        f"identity.failure_rate||day:{day}": len(failures) / (len(sign_ins) + len(failures)),
    }
    expected_deliveries = {
        f"deliveries.count|agency={agency}|all_time:all": float(N_DELIVERIES),
        f"deliveries.count|agency={agency},channel=in_person|day:{day}": float(N_DELIVERIES / 4),
        f"deliveries.digital_share|agency={agency}|day:{day}": 0.75,
    }
    found = {
        **await wait_for_values(kafka_admin, Topic.METRICS_EXCHANGE.value, expected_exchange),
        **await wait_for_values(kafka_admin, Topic.METRICS_IDENTITY.value, expected_identity),
        **await wait_for_values(kafka_admin, Topic.METRICS_DELIVERIES.value, expected_deliveries),
    }

    assert 0 < seen_at_first_kill < N_TRANSACTIONS
    assert seen_at_first_kill < seen_at_second_kill
    assert found == {**expected_exchange, **expected_identity, **expected_deliveries}, (
        worker.log_text()[-3000:]
    )
    # Read with the aborted records, the relay's consumer would end at 70: 20 on the way
    # there would not stay, the rest of a run this size takes moments.
    await asyncio.sleep(10)
    latest = await latest_figures(kafka_admin, Topic.METRICS_EXCHANGE.value)
    assert latest[committed_key]["value"] == float(committed)
