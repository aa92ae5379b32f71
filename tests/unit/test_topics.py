"""The topic declarations hold together."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared import registry
from shared.settings import PlatformSettings
from shared.topics import SINGLE_BROKER, SPECS, TOPICS, Durability, Topic


def test_every_topic_is_declared_exactly_once_with_its_dead_letter_twin() -> None:
    names = [spec.name for spec in TOPICS]
    assert len(names) == len(set(names))
    twins = {spec.dead_letter for spec in TOPICS if spec.dead_letter is not None}
    assert set(names) == set(Topic) | twins
    assert all(twin == f"{spec.name}.dlq" for spec in TOPICS if (twin := spec.dead_letter))


def test_sensitive_topics_keep_their_dead_letters_sensitive() -> None:
    for spec in TOPICS:
        if spec.sensitive and spec.dead_letter is not None:
            assert SPECS[spec.dead_letter].sensitive


def test_dead_letter_topics_are_declared_topics_that_keep_records_a_month() -> None:
    for spec in TOPICS:
        if spec.dead_letter is not None:
            dead = SPECS[spec.dead_letter]
            assert dead.cleanup_policy == "delete"
            assert dead.retention_ms is not None
            assert dead.retention_ms >= 30 * 24 * 3600 * 1000


def test_every_topic_that_carries_events_has_a_dead_letter_topic() -> None:
    for event in registry.registered():
        assert SPECS[event.topic].dead_letter is not None, event.topic


def test_compacted_topics_keep_their_records() -> None:
    for spec in TOPICS:
        if spec.cleanup_policy == "compact":
            assert spec.broker_config()["retention.ms"] == "-1"


def test_topics_are_made_with_the_clusters_durability_one_broker_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = SPECS[Topic.EXCHANGE_TRANSACTIONS]
    assert spec.broker_config()["min.insync.replicas"] == "1"
    assert PlatformSettings().durability == SINGLE_BROKER
    monkeypatch.setenv("PANJEREH_KAFKA_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("PANJEREH_KAFKA_MIN_INSYNC_REPLICAS", "2")
    three = PlatformSettings().durability
    assert three == Durability(replication_factor=3, min_insync_replicas=2)
    assert spec.broker_config(three)["min.insync.replicas"] == "2"


def test_more_replicas_in_sync_than_there_are_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="between 1 and the replication factor 1"):
        Durability(replication_factor=1, min_insync_replicas=2)
    monkeypatch.setenv("PANJEREH_KAFKA_MIN_INSYNC_REPLICAS", "2")
    with pytest.raises(ValidationError, match=r"min\.insync\.replicas 2"):
        PlatformSettings()
