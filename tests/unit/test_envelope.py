"""The envelope: what every event carries, and what it refuses."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from shared.envelope import Envelope
from shared.events.platform import ServiceStarted


def started(service: str = "catalog") -> ServiceStarted:
    return ServiceStarted(service=service, release="1.0", instance="host:1")


def test_wrapped_event_carries_type_version_and_utc_time() -> None:
    envelope = Envelope.wrap(started(), source="catalog", subject="catalog")
    assert envelope.type == "ServiceStarted"
    assert envelope.schema_version == 1
    assert envelope.occurred_at.utcoffset() == timedelta(0)
    assert envelope.correlation_id == envelope.id
    assert envelope.key() == b"catalog"


def test_correlation_id_is_kept_when_given() -> None:
    correlation = uuid.uuid4()
    envelope = Envelope.wrap(started(), source="x", subject="x", correlation_id=correlation)
    assert envelope.correlation_id == correlation


def test_local_time_is_converted_to_utc() -> None:
    tehran = timezone(timedelta(hours=3, minutes=30))
    at = datetime(2024, 3, 20, 12, 0, tzinfo=tehran)
    envelope = Envelope.wrap(started(), source="x", subject="x", occurred_at=at)
    assert envelope.occurred_at == at
    assert envelope.occurred_at.tzinfo == UTC


def test_round_trip_through_bytes_is_lossless() -> None:
    envelope = Envelope.wrap(started(), source="catalog", subject="catalog")
    again = Envelope[ServiceStarted].model_validate_json(envelope.to_bytes())
    assert again == envelope


def _document(**changes: object) -> dict[str, object]:
    document: dict[str, object] = json.loads(
        Envelope.wrap(started(), source="x", subject="x").to_bytes()
    )
    document.update(changes)
    return document


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("occurred_at", "2024-03-20T08:30:00"),  # naive: no timezone
        ("occurred_at", "2024-03-20T12:00:00+03:30"),  # aware but not UTC
        ("schema_version", "1"),  # a string is not a number under strict validation
        ("schema_version", 0),
        ("source", ""),
        ("id", "not-a-uuid"),
    ],
)
def test_envelope_refuses_invalid_metadata(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        Envelope[ServiceStarted].model_validate_json(json.dumps(_document(**{field: value})))


def test_payload_refuses_unknown_fields() -> None:
    document = _document()
    document["payload"] = {**document["payload"], "surprise": 1}  # type: ignore[dict-item]
    with pytest.raises(ValidationError, match="surprise"):
        Envelope[ServiceStarted].model_validate_json(json.dumps(document))
