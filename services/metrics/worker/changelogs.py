"""The worker's own topics (its tables' changelogs, its forwarded rows), created before
Faust starts.

Faust creates a table's changelog topic itself, then checks its partition count against
the metadata its consumer cached. On a busy broker that metadata may not list the new
topic's partitions yet: every agent with a table then crashes with `PartitionsMismatch`
("the changelog topic has 0 partitions") and keeps crashing until the client's next
metadata refresh, minutes later, while nothing is counted. Creating the topics first, and
waiting until the broker describes all their partitions, leaves Faust nothing to race.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import faust
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from shared.kafka_access import KafkaAccess
from shared.logging import get_logger
from shared.topics import Durability

log = get_logger(__name__)


#: Compacted, as Faust makes a changelog.
CHANGELOG_CONFIG = {"cleanup.policy": "compact"}


#: A topic of the worker's own: its partitions and configuration.
TopicShape = tuple[int, Mapping[str, str]]


def own_topics(app: faust.App, others: Mapping[str, TopicShape]) -> dict[str, TopicShape]:
    """{topic: (partitions, configuration)} of every table's changelog, and `others`."""
    topics: dict[str, TopicShape] = {
        table.changelog_topic.get_topic_name(): (
            table.changelog_topic.partitions or app.conf.topic_partitions,
            CHANGELOG_CONFIG,
        )
        for table in app.tables.values()
    }
    return topics | dict(others)


async def ensure_own_topics(
    app: faust.App,
    kafka: KafkaAccess,
    durability: Durability,
    others: Mapping[str, TopicShape],
    within: float = 60.0,
) -> None:
    """Create the worker's missing topics, its tables' changelogs and `others` (replicated
    as `durability` says), and wait until the broker describes every partition of each;
    raises if it has not within `within`. Those of `others` made before are given their
    configuration now (a changelog made compacted for ever before it had a retention)."""
    own = own_topics(app, others)
    wanted = {name: partitions for name, (partitions, _) in own.items()}

    def config(name: str) -> dict[str, str]:
        return {**own[name][1], "min.insync.replicas": str(durability.min_insync_replicas)}

    admin = AIOKafkaAdminClient(**kafka.client_options(), request_timeout_ms=10000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = sorted(set(wanted) - existing)
        configured = sorted(set(others) & existing)
        if configured:
            await admin.alter_configs(
                [
                    ConfigResource(ConfigResourceType.TOPIC, name, config(name))
                    for name in configured
                ]
            )
        if missing:
            new = [
                NewTopic(
                    name, wanted[name], durability.replication_factor, topic_configs=config(name)
                )
                for name in missing
            ]
            response = await admin.create_topics(new, timeout_ms=30000)
            for name, code, *_ in response.topic_errors:
                # Already there: another worker created it first.
                if code not in (0, TopicAlreadyExistsError.errno):
                    raise RuntimeError(f"cannot create the worker's topic {name}: error {code}")
            log.info("the worker's topics created", topics=missing)
        deadline = time.monotonic() + within
        while True:
            described = await admin.describe_topics(list(wanted))
            found = {
                entry["topic"]: len(entry["partitions"])
                for entry in described
                if entry["error_code"] == 0
            }
            short = {name: n for name, n in wanted.items() if found.get(name, 0) < n}
            if not short:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker's topics without all their partitions: {short}")
            await asyncio.sleep(0.5)
    finally:
        await admin.close()
