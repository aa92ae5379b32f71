"""The worker's own topics exist, whole and configured, before Faust starts (no partition
race); the tables of event ids forget what is older than the dedup horizon."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import faust
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from services.metrics.worker.changelogs import ensure_own_topics, own_topics
from shared.kafka_access import KafkaAccess
from shared.principals import METRICS_WORKER_APP_ID
from shared.settings import PlatformSettings
from shared.topics import SINGLE_BROKER
from tests.integration.metrics.worker_process import WorkerProcess

pytestmark = pytest.mark.integration


def _app_of(worker: KafkaAccess) -> faust.App:
    """A worker's app of its own (tables declared, never started)."""
    return faust.App(
        f"{METRICS_WORKER_APP_ID}-changelogs-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{worker.bootstrap_servers}",
    )


async def test_own_topics_are_created_with_their_partitions_and_policies_once(
    kafka_admin: KafkaAccess, kafka_as: Callable[[str], KafkaAccess]
) -> None:
    # As the worker's own principal: its ACLs must let it create its tables' topics.
    worker = kafka_as("metrics-worker")
    app = _app_of(worker)
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


async def test_a_changelog_made_compacted_for_ever_is_given_its_retention_at_the_next_start(
    kafka_admin: KafkaAccess, kafka_as: Callable[[str], KafkaAccess]
) -> None:
    worker = kafka_as("metrics-worker")
    app = _app_of(worker)
    app.Table("seen", default=int, partitions=3)
    changelog = f"{app.conf.id}-seen-changelog"
    # An earlier worker made it as Faust makes a changelog.
    await ensure_own_topics(app, worker, SINGLE_BROKER, {})
    bounded = {changelog: (3, {"cleanup.policy": "compact,delete", "retention.ms": "86400000"})}

    await ensure_own_topics(app, worker, SINGLE_BROKER, bounded)

    admin = AIOKafkaAdminClient(**kafka_admin.client_options())
    await admin.start()
    try:
        [configs] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, changelog)]
        )
        [resource] = configs.resources
        config = {entry[0]: entry[1] for entry in resource[4]}
        assert config["cleanup.policy"] == "compact,delete"
        assert config["retention.ms"] == "86400000"
    finally:
        await admin.close()


async def test_the_workers_event_ids_are_forgotten_after_the_dedup_horizon_its_citizens_never(
    kafka_admin: KafkaAccess, worker: WorkerProcess
) -> None:
    horizon_ms = str(PlatformSettings().dedup_horizon_days * 24 * 3600 * 1000)
    expected = {
        "delivery-events": ("compact,delete", horizon_ms),
        "exchange-recorded": ("compact,delete", horizon_ms),
        # Who has ever signed in is counted for ever.
        "identity-authenticated": ("compact", None),
    }
    topics = [f"{worker.app_id}-{table}-changelog" for table in expected]
    admin = AIOKafkaAdminClient(**kafka_admin.client_options())
    await admin.start()
    try:
        for _ in range(120):  # the worker makes them as it starts
            if set(topics) <= set(await admin.list_topics()):
                break
            await asyncio.sleep(0.5)
        [configs] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic) for topic in topics]
        )
        found = {}
        for resource in configs.resources:
            config = {entry[0]: entry[1] for entry in resource[4]}
            table = resource[3].removeprefix(f"{worker.app_id}-").removesuffix("-changelog")
            retention = config["retention.ms"] if "delete" in config["cleanup.policy"] else None
            found[table] = (config["cleanup.policy"], retention)
        assert found == expected, worker.log_text()[-2000:]
    finally:
        await admin.close()
