"""A malformed event goes to the dead-letter topic with its reason, and the worker goes on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable

from aiokafka import AIOKafkaProducer

from shared.kafka import publish
from shared.kafka_access import KafkaAccess
from shared.principals import Principal
from shared.topics import Topic, dead_letter_of
from tests.integration.kafka_helpers import header, read_all
from tests.integration.metrics import events
from tests.integration.metrics.worker_process import REPO, WorkerProcess, wait_for_values


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


_AGENTS_PER_TOPIC = """
import json
from collections import Counter
from services.metrics.worker import load_agents
from services.metrics.worker.app import app
load_agents()
print(json.dumps(Counter(t for agent in app.agents.values() for t in agent.channel.topics)))
"""


def test_each_topic_is_read_by_one_agent_so_a_bad_record_is_dead_lettered_once(
    kafka_as: Callable[[str], KafkaAccess],
) -> None:
    # Two agents on one topic would each decode every record and each dead-letter a bad
    # one: its dead-letter topic would hold it twice. Others follow the topic's one agent.
    # (The worker's app needs its credentials to be built, hence a process of its own.)
    worker = kafka_as(Principal.METRICS_WORKER)
    loaded = subprocess.run(
        [sys.executable, "-c", _AGENTS_PER_TOPIC],
        cwd=REPO,
        env={**os.environ, **worker.environment()},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    readers: dict[str, int] = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert Topic.EXCHANGE_TRANSACTIONS.value in readers
    assert {topic: count for topic, count in readers.items() if count > 1} == {}
