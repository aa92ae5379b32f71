"""Each topic's largest record, and the refusal of an event too large for it."""

from __future__ import annotations

from typing import Any

from shared.envelope import Envelope
from shared.errors import DomainError
from shared.events.platform import ServiceStarted
from shared.kafka import Rejected
from shared.record_limits import EventTooLarge, max_record_bytes, oversize, record_size
from shared.topics import SPECS, TOPICS, Topic, channel, dead_letter_of


def test_every_topic_declares_its_largest_record_to_the_broker() -> None:
    for spec in TOPICS:
        assert spec.broker_config()["max.message.bytes"] == str(spec.max_record_bytes)
        if spec.dead_letter is not None:
            # A refused record of the largest size still fits, with the reason in headers.
            assert SPECS[spec.dead_letter].max_record_bytes > spec.max_record_bytes + 32_000
            # Within a producer's default request size, so the platform's producers send it.
            assert SPECS[spec.dead_letter].max_record_bytes <= 1024 * 1024
    assert max_record_bytes(channel(Topic.AGENCY_REQUESTS, "tax")) == (
        SPECS[Topic.AGENCY_REQUESTS].max_record_bytes
    )
    assert max_record_bytes(dead_letter_of(channel(Topic.AGENCY_REQUESTS, "tax"))) == (
        SPECS[f"{Topic.AGENCY_REQUESTS.value}.dlq"].max_record_bytes
    )


def envelope_of_size(size: int) -> Envelope[Any]:
    return Envelope.wrap(
        ServiceStarted(service="s", release="r", instance="x" * size), source="t", subject="s"
    )


def test_a_record_is_oversize_when_it_exceeds_its_topics_limit() -> None:
    limit = SPECS[Topic.PLATFORM_LIFECYCLE].max_record_bytes
    fitting, over = envelope_of_size(limit - 1000), envelope_of_size(limit)
    assert record_size(fitting.key(), fitting.to_bytes(), []) <= limit
    assert oversize(fitting.destination, fitting.key(), fitting.to_bytes(), []) is None
    size = record_size(over.key(), over.to_bytes(), [])
    assert size > limit
    reason = oversize(over.destination, over.key(), over.to_bytes(), [])
    assert reason == f"the record is {size} bytes; platform.lifecycle takes at most {limit}"


def test_an_event_too_large_is_a_413_for_a_request_and_a_refusal_for_a_consumer() -> None:
    refusal = EventTooLarge("ServiceStarted", "the record is 2000000 bytes")
    assert isinstance(refusal, DomainError)
    assert (refusal.status, refusal.code) == (413, "event_too_large")
    assert isinstance(refusal, Rejected)
    assert refusal.reason == "ServiceStarted: the record is 2000000 bytes"
