"""Decoding records into registered events, and the reasons given when that fails."""

from __future__ import annotations

import json
from typing import ClassVar

import pytest

from shared import registry
from shared.envelope import Envelope, Event
from shared.events.exchange import DataRequested
from shared.events.platform import ServiceStarted
from shared.registry import UndecodableEvent, decode, example_envelopes
from shared.topics import Topic, channel, dead_letter_of


def good_record() -> bytes:
    payload = ServiceStarted(service="exchange", release="1.0", instance="h:2")
    return Envelope.wrap(payload, source="exchange", subject="exchange").to_bytes()


def test_a_valid_record_decodes_to_its_registered_type() -> None:
    envelope = decode(good_record(), Topic.PLATFORM_LIFECYCLE.value)
    assert isinstance(envelope.payload, ServiceStarted)
    assert envelope.payload.service == "exchange"


def _with(**changes: object) -> bytes:
    document = json.loads(good_record())
    document.update(changes)
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "no value"),
        (b"\xff\xfe", "not JSON"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"payload": {}}', "no string `type`"),
        (_with(type="NoSuchEvent"), "no event 'NoSuchEvent' version 1"),
        (_with(schema_version=99), "version 99 is registered"),
        (_with(schema_version=True), "integer `schema_version`"),
        (_with(payload={"service": "x"}), "payload.release: Field required"),
        (_with(subject=""), "subject"),
    ],
)
def test_undecodable_records_are_refused_with_a_reason(value: bytes | None, reason: str) -> None:
    with pytest.raises(UndecodableEvent) as refused:
        decode(value)
    assert reason in refused.value.reason


def test_an_event_on_the_wrong_topic_is_refused() -> None:
    with pytest.raises(UndecodableEvent, match=r"does not belong on platform\.lifecycle\.dlq"):
        decode(good_record(), dead_letter_of(Topic.PLATFORM_LIFECYCLE))


def test_registering_a_second_class_for_one_type_and_version_fails() -> None:
    class Impostor(Event):
        event_type: ClassVar[str] = "ServiceStarted"
        schema_version: ClassVar[int] = 1
        topic: ClassVar[Topic] = Topic.PLATFORM_LIFECYCLE

    with pytest.raises(ValueError, match="registered twice"):
        registry.event(Impostor)


def test_every_registered_event_has_examples_that_validate_and_round_trip() -> None:
    for event in registry.registered():
        examples = registry.example_envelopes(event)
        assert examples, f"{event.event_type} v{event.schema_version} documents no example"
        for example in examples:
            # Read where it is published: an agency's channel for per-agency events.
            assert decode(example.to_bytes(), example.destination) == example


def test_an_event_on_an_agencys_channel_must_name_that_agency() -> None:
    (example,) = example_envelopes(DataRequested)
    own = channel(Topic.AGENCY_REQUESTS, example.payload.consumer)
    assert decode(example.to_bytes(), own) == example
    with pytest.raises(UndecodableEvent, match="wrong_channel"):
        decode(example.to_bytes(), channel(Topic.AGENCY_REQUESTS, "someone-else"))
    with pytest.raises(UndecodableEvent, match="does not belong"):
        decode(example.to_bytes(), channel(Topic.AGENCY_ANSWERS, example.payload.consumer))
