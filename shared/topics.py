"""Every Kafka topic of the platform, declared once.

Topics are the platform's public API. This module is the single declarative source for
them: the local platform and the compose file create topics from it, the event registry
binds event types to these names, and the AsyncAPI document is generated from it.
Adding a topic means adding a `TopicSpec` here; nothing else names a topic by string.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DAY_MS = 24 * 60 * 60 * 1000


class Topic(StrEnum):
    """Names of the platform's topics; the values are what the broker sees."""

    PLATFORM_LIFECYCLE = "platform.lifecycle"
    PLATFORM_LIFECYCLE_DLQ = "platform.lifecycle.dlq"
    PLATFORM_OUTBOX_PROGRESS = "platform.outbox-progress"


class TopicSpec(BaseModel):
    """What a topic is for, who writes and reads it, and how the broker keeps it."""

    model_config = ConfigDict(frozen=True)

    name: Topic
    description: str
    key: str = Field(description="What the record key is; it decides the partition.")
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    partitions: int = Field(ge=1)
    cleanup_policy: Literal["delete", "compact"] = "delete"
    # None keeps records forever (compacted state topics, audit-grade streams).
    retention_ms: int | None = 7 * DAY_MS
    dead_letter: Topic | None = Field(
        default=None, description="Where consumers send what they cannot decode or accept."
    )
    internal: bool = Field(
        default=False, description="Plumbing of the platform, not part of its public API."
    )

    def broker_config(self) -> dict[str, str]:
        """Topic-level broker configuration for creating or altering this topic."""
        return {
            "cleanup.policy": self.cleanup_policy,
            "retention.ms": str(self.retention_ms if self.retention_ms is not None else -1),
            "min.insync.replicas": "1",
        }


def _dead_letter_spec(of: Topic, name: Topic) -> TopicSpec:
    return TopicSpec(
        name=name,
        description=(
            f"Records from `{of.value}` that a consumer could not decode or accept: the "
            "original bytes as the value, the reason and origin in headers."
        ),
        key="the original record's key",
        producers=("any consumer of " + of.value,),
        consumers=("the platform team",),
        partitions=1,
        retention_ms=30 * DAY_MS,
    )


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        name=Topic.PLATFORM_LIFECYCLE,
        description="Each service announces here that it started, with its version.",
        key="the service name",
        producers=("identity", "catalog", "exchange", "metrics"),
        consumers=("metrics-worker",),
        partitions=3,
        dead_letter=Topic.PLATFORM_LIFECYCLE_DLQ,
    ),
    _dead_letter_spec(Topic.PLATFORM_LIFECYCLE, Topic.PLATFORM_LIFECYCLE_DLQ),
    TopicSpec(
        name=Topic.PLATFORM_OUTBOX_PROGRESS,
        description=(
            "Each outbox relay writes, in the same Kafka transaction as the events it "
            "publishes, which outbox rows that transaction carried; after a crash the relay "
            "reads its last marker to learn what is already published."
        ),
        key="the relay's transactional id",
        producers=("every outbox relay",),
        consumers=("the same relay, on restart",),
        partitions=1,
        cleanup_policy="compact",
        retention_ms=None,
        internal=True,
    ),
)

SPECS: dict[Topic, TopicSpec] = {spec.name: spec for spec in TOPICS}


def spec(topic: Topic) -> TopicSpec:
    """The spec of a declared topic."""
    return SPECS[topic]
