"""The envelope every integration event travels in, and the base of every payload.

An integration event is a fact one service announces to the others over Kafka. The
record value is the envelope as JSON; the record key is the envelope's subject, so every
event about one subject lands on one partition, in order. W3C trace context travels in
the record headers, not in the envelope.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Self, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from shared.topics import Topic, channel


class Event(BaseModel):
    """Base of every event payload.

    Subclasses name themselves in the past tense, declare `event_type`, `schema_version` and
    the `topic` they travel on, and register with `shared.registry.event`. Payloads are
    validated strictly: a string never becomes a number, and unknown fields are refused.
    """

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    event_type: ClassVar[str]
    schema_version: ClassVar[int]
    topic: ClassVar[Topic]
    #: For events on a per-agency topic: the field naming the agency whose channel it is.
    agency_field: ClassVar[str | None] = None

    def channel_agency(self) -> str | None:
        """The agency whose channel this event travels on (None off the channels)."""
        if self.agency_field is None:
            return None
        agency: str = getattr(self, self.agency_field)
        return agency

    def destination(self) -> str:
        """The concrete topic this event is published to."""
        agency = self.channel_agency()
        return self.topic.value if agency is None else channel(self.topic, agency)


P = TypeVar("P", bound=Event)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel, Generic[P]):
    """Metadata common to every event, around its payload."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    id: uuid.UUID = Field(description="Unique per event; consumers deduplicate on it.")
    type: str = Field(description="The event type, e.g. `ServiceStarted`.")
    schema_version: int = Field(ge=1, description="Version of the payload's schema.")
    source: str = Field(min_length=1, description="The service or agency that produced it.")
    occurred_at: AwareDatetime = Field(description="When it happened, in UTC.")
    subject: str = Field(min_length=1, description="What it is about; also the record key.")
    correlation_id: uuid.UUID = Field(
        description="Shared by every event caused by one original request."
    )
    payload: P

    @field_validator("occurred_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        if value.utcoffset() != UTC.utcoffset(None):
            raise ValueError("occurred_at must be in UTC")
        return value

    @classmethod
    def wrap(
        cls,
        payload: P,
        *,
        source: str,
        subject: str,
        correlation_id: uuid.UUID | None = None,
        occurred_at: datetime | None = None,
        event_id: uuid.UUID | None = None,
    ) -> Envelope[P]:
        """A new envelope for `payload`, typed from the payload's class."""
        kind = type(payload)
        new_id = event_id or uuid.uuid4()
        return Envelope[kind](  # type: ignore[valid-type]
            id=new_id,
            type=kind.event_type,
            schema_version=kind.schema_version,
            source=source,
            occurred_at=(occurred_at or utc_now()).astimezone(UTC),
            subject=subject,
            correlation_id=correlation_id or new_id,
            payload=payload,
        )

    @property
    def topic(self) -> Topic:
        """The topic (or per-agency family) the payload's type travels on."""
        return type(self.payload).topic

    @property
    def destination(self) -> str:
        """The concrete topic to publish to: for an agency's channel, that agency's."""
        return self.payload.destination()

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    def key(self) -> bytes:
        return self.subject.encode()

    @classmethod
    def example(cls, payload: P) -> Self:
        """A fixed, reproducible envelope around `payload`, for documentation."""
        return cls.model_validate(
            {
                "id": uuid.UUID("00000000-0000-4000-8000-000000000001"),
                "type": type(payload).event_type,
                "schema_version": type(payload).schema_version,
                "source": "example",
                "occurred_at": datetime(2024, 3, 20, 8, 30, tzinfo=UTC),
                "subject": "example-subject",
                "correlation_id": uuid.UUID("00000000-0000-4000-8000-000000000002"),
                "payload": payload,
            }
        )


def peek_kind(document: dict[str, Any]) -> tuple[str, int]:
    """The (type, schema_version) an undecoded envelope claims, or ValueError."""
    kind, version = document.get("type"), document.get("schema_version")
    if not isinstance(kind, str) or not isinstance(version, int) or isinstance(version, bool):
        raise ValueError("the envelope has no string `type` and integer `schema_version`")
    return kind, version
