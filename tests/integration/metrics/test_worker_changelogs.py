"""The worker's own topics exist, whole, before Faust starts (no partition race)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import faust
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from services.metrics.worker.changelogs import ensure_own_topics, own_topics
from shared.kafka_access import KafkaAccess
from shared.principals import METRICS_WORKER_APP_ID
from shared.topics import SINGLE_BROKER

pytestmark = pytest.mark.integration


async def test_own_topics_are_created_with_their_partitions_and_policies_once(
    kafka_admin: KafkaAccess, kafka_as: Callable[[str], KafkaAccess]
) -> None:
    # As the worker's own principal: its ACLs must let it create its tables' topics.
    worker = kafka_as("metrics-worker")
    app = faust.App(
        f"{METRICS_WORKER_APP_ID}-changelogs-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{worker.bootstrap_servers}",
    )
    app.Table("three", default=int, partitions=3)
    app.Table("six", default=int, partitions=6)
    rows = f"{app.conf.id}-rows"
    others = {rows: (1, {"cleanup.policy": "delete", "retention.ms": "3600000"})}
    wanted = {name: partitions for name, (partitions, _) in own_topics(app, others).items()}
    assert wanted == {
        f"{app.conf.id}-three-changelog": 3,
        f"{app.conf.id}-six-changelog": 6,
        rows: 1,
    }

    await ensure_own_topics(app, worker, SINGLE_BROKER, others)
    await ensure_own_topics(app, worker, SINGLE_BROKER, others)  # a second worker's start

    admin = AIOKafkaAdminClient(**kafka_admin.client_options())
    await admin.start()
    try:
        described = await admin.describe_topics(list(wanted))
        assert {d["topic"]: len(d["partitions"]) for d in described} == wanted
        [configs] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in wanted]
        )
        policies = {
            resource[3]: dict((entry[0], entry[1]) for entry in resource[4])["cleanup.policy"]
            for resource in configs.resources
        }
        assert policies == {
            f"{app.conf.id}-three-changelog": "compact",
            f"{app.conf.id}-six-changelog": "compact",
            rows: "delete",
        }
    finally:
        await admin.close()
