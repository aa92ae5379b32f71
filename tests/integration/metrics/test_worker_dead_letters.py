"""A malformed event goes to the dead-letter topic with its reason, and the worker goes on."""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaProducer

from shared.kafka import publish
from shared.kafka_access import KafkaAccess
from shared.topics import Topic, dead_letter_of
from tests.integration.kafka_helpers import header, read_all
from tests.integration.metrics import events
from tests.integration.metrics.worker_process import WorkerProcess, wait_for_values


async def test_malformed_records_are_dead_lettered_and_later_events_still_count(
    kafka_admin: KafkaAccess, producer: AIOKafkaProducer, worker: WorkerProcess
) -> None:
    consumer = events.unique_agency("dlq")
    key = f"bad-{uuid.uuid4()}".encode()
    valid_but_wrong = (
        events.transaction(consumer)
        .to_bytes()
        .replace(b'"outcome":"answered"', b'"outcome":"maybe"')
    )
    await producer.send_and_wait(Topic.EXCHANGE_TRANSACTIONS.value, b"{not json", key=key)
    await producer.send_and_wait(Topic.EXCHANGE_TRANSACTIONS.value, valid_but_wrong, key=key)
    for _ in range(3):
        await publish(producer, events.transaction(consumer))

    found = await wait_for_values(
        kafka_admin,
        Topic.METRICS_EXCHANGE.value,
        {f"exchange.transactions|consumer={consumer}|all_time:all": 3.0},
    )
    dead = await read_all(
        kafka_admin,
        dead_letter_of(Topic.EXCHANGE_TRANSACTIONS.value),
        until=lambda records: (
            sum(1 for r in records if r.key == key and header(r, "dlq-consumer") == worker.app_id)
            >= 2
        ),
    )
    ours = [r for r in dead if r.key == key and header(r, "dlq-consumer") == worker.app_id]

    assert found == {f"exchange.transactions|consumer={consumer}|all_time:all": 3.0}
    assert [r.value for r in ours] == [b"{not json", valid_but_wrong]
    reasons = [header(r, "dlq-reason") or "" for r in ours]
    assert "not JSON" in reasons[0]
    assert "outcome" in reasons[1]
