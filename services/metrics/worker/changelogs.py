"""The worker's changelog topics, created before Faust starts.

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

import faust
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.kafka_access import KafkaAccess
from shared.logging import get_logger
from shared.topics import Durability

log = get_logger(__name__)


def changelog_topics(app: faust.App) -> dict[str, int]:
    """{changelog topic: partitions} of every table declared on the app."""
    return {
        table.changelog_topic.get_topic_name(): table.changelog_topic.partitions
        or app.conf.topic_partitions
        for table in app.tables.values()
    }


async def ensure_changelog_topics(
    app: faust.App, kafka: KafkaAccess, durability: Durability, within: float = 60.0
) -> None:
    """Create the missing changelog topics (compacted, as Faust makes them; replicated as
    `durability` says) and wait until the broker describes every partition of each; raises
    if it has not within `within`."""
    wanted = changelog_topics(app)
    admin = AIOKafkaAdminClient(**kafka.client_options(), request_timeout_ms=10000)
    await admin.start()
    try:
        missing = sorted(set(wanted) - set(await admin.list_topics()))
        if missing:
            new = [
                NewTopic(
                    name,
                    wanted[name],
                    durability.replication_factor,
                    topic_configs={
                        "cleanup.policy": "compact",
                        "min.insync.replicas": str(durability.min_insync_replicas),
                    },
                )
                for name in missing
            ]
            response = await admin.create_topics(new, timeout_ms=30000)
            for name, code, *_ in response.topic_errors:
                # Already there: another worker created it first.
                if code not in (0, TopicAlreadyExistsError.errno):
                    raise RuntimeError(f"cannot create changelog topic {name}: error {code}")
            log.info("changelog topics created", topics=missing)
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
                raise RuntimeError(f"changelog topics without all their partitions: {short}")
            await asyncio.sleep(0.5)
    finally:
        await admin.close()
