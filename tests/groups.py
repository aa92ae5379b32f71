"""Waiting for a consumer group to settle: stable, with the topics in question assigned.

A group stands still while it rebalances, as it does when a pattern subscription finds a
new agency's channels; and until then nobody in it reads them. What is timed (a record
handled within a second, a round trip) is timed from a settled group.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import ConsumerGroupState
from confluent_kafka.admin import AdminClient

from shared.kafka_access import KafkaAccess


async def until_settled(
    admin: KafkaAccess, group: str, topics: Iterable[str], timeout: float = 30.0
) -> None:
    """Return once `group` is stable and each of `topics` is assigned to a member of it."""
    client = group_admin(admin)
    wanted = list(topics)
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(is_settled, client, group, wanted):
        assert time.monotonic() < deadline, f"{group} never settled with {sorted(wanted)}"
        await asyncio.sleep(0.1)


def group_admin(admin: KafkaAccess) -> AdminClient:
    """A client that can describe consumer groups, for `is_settled`."""
    config: dict[str, str | int | float | bool] = {**admin.librdkafka_config()}
    return AdminClient(config)


def is_settled(client: AdminClient, group: str, topics: Iterable[str]) -> bool:
    """Whether `group` is stable with each of `topics` assigned to a member of it (blocks)."""
    description = described(client, group)
    assigned = {
        partition.topic
        for member in description.members
        for partition in member.assignment.topic_partitions
    }
    return description.state == ConsumerGroupState.STABLE and set(topics) <= assigned


def holders(client: AdminClient, group: str) -> dict[str, set[str]]:
    """Which member (by client id) holds each topic's partitions in `group` now (blocks)."""
    held: dict[str, set[str]] = {}
    for member in described(client, group).members:
        for partition in member.assignment.topic_partitions:
            held.setdefault(partition.topic, set()).add(member.client_id)
    return held


def member_count(client: AdminClient, group: str) -> int:
    """How many members `group` has now (blocks)."""
    return len(described(client, group).members)


def is_stable_with(client: AdminClient, group: str, members: int) -> bool:
    """Whether `group` is stable with exactly `members` members (blocks): after members
    were killed, once the broker has dropped them and the group has rebalanced."""
    description = described(client, group)
    return description.state == ConsumerGroupState.STABLE and len(description.members) == members


def described(client: AdminClient, group: str) -> Any:
    """`group` as the broker describes it now, a `ConsumerGroupDescription` (blocks)."""
    (future,) = client.describe_consumer_groups([group], request_timeout=5).values()
    return future.result()
