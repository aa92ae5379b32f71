"""The worker's changelog topics exist, whole, before Faust starts (no partition race)."""

from __future__ import annotations

import uuid

import faust
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from services.metrics.worker.changelogs import changelog_topics, ensure_changelog_topics

pytestmark = pytest.mark.integration


async def test_changelog_topics_are_created_compacted_with_their_tables_partitions_once(
    kafka_bootstrap: str,
) -> None:
    app = faust.App(f"changelogs-{uuid.uuid4().hex[:8]}", broker=f"kafka://{kafka_bootstrap}")
    app.Table("three", default=int, partitions=3)
    app.Table("six", default=int, partitions=6)
    wanted = changelog_topics(app)
    assert wanted == {f"{app.conf.id}-three-changelog": 3, f"{app.conf.id}-six-changelog": 6}

    await ensure_changelog_topics(app, kafka_bootstrap)
    await ensure_changelog_topics(app, kafka_bootstrap)  # a second worker's start: no error

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
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
        assert policies == dict.fromkeys(wanted, "compact")
    finally:
        await admin.close()
