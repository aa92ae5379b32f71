"""Events of the national information exchange: data services, rights, transactions.

Requests and answers are signed by the agency system that sends them: `signature` is a
JWS (RFC 7515) in compact form with a detached payload, whose protected header names the
key (`kid`, published on `identity.agency-keys`). What exactly is signed (a canonical
JSON of the other fields) is defined with the exchange client library.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal, Self

from pydantic import AwareDatetime, ConfigDict, Field, model_validator

from shared.envelope import Event
from shared.registry import event
from shared.topics import Topic
from shared.vocabulary import AgencyCode, Localized, PseudonymousId

DataServiceId = str
FinalOutcome = Literal["answered", "denied", "refused", "timed_out", "failed"]

_TX = "7a1e2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b"
_CITIZEN = "5c2d" + "b" * 60
_SIGNATURE = "eyJhbGciOiJFZERTQSIsImtpZCI6ImVkdWNhdGlvbi0yMDI0LTEiLCJiNjQiOmZhbHNlfQ..c2lnbmF0dXJl"


@event
class DataServiceRegistered(Event):
    """A provider's data service and its terms (the latest record per id is its state)."""

    event_type = "DataServiceRegistered"
    schema_version = 1
    topic = Topic.EXCHANGE_DATA_SERVICES
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "data_service": "civil-registration.vital-status",
                    "version": 1,
                    "provider": "civil-registration",
                    "name_fa": "وضعیت حیات",
                    "name_en": "Vital status",
                    "request_schema": {"type": "object", "required": ["citizen"]},
                    "response_schema": {"type": "object", "required": ["alive"]},
                    "timeout_ms": 5000,
                    "purposes": ["benefit-eligibility"],
                    "personal_data": True,
                    "active": True,
                }
            ]
        }
    )

    data_service: DataServiceId = Field(pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9.-]+$")
    version: int = Field(ge=1, description="The data service's own version.")
    provider: AgencyCode
    name_fa: Localized
    name_en: Localized
    request_schema: dict[str, Any] = Field(description="JSON Schema of the request payload.")
    response_schema: dict[str, Any] = Field(description="JSON Schema of the answer payload.")
    timeout_ms: int = Field(ge=100, le=120_000)
    purposes: list[str] = Field(min_length=1)
    personal_data: bool
    active: bool


_RIGHT_EXAMPLE: dict[str, Any] = {
    "right_id": "0a9b8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d",
    "consumer": "social-security",
    "data_service": "civil-registration.vital-status",
    "purposes": ["benefit-eligibility"],
    "legal_basis": "National Data and Information Law, art. 5",
    "valid_from": "2024-03-20T00:00:00Z",
    "valid_until": None,
}
_GRANTOR = "platform-operator.5f0c2a9e71d4b386"
Actor = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        description="Who did it: the subject of the token it was done with (for an agency "
        "system's token, its client id).",
    ),
]


@event
class AccessGranted(Event):
    """A consumer agency may call a data service, for these purposes, in this period;
    granted by `granted_by`."""

    event_type = "AccessGranted"
    schema_version = 2
    topic = Topic.EXCHANGE_ACCESS_RIGHTS
    model_config = ConfigDict(
        json_schema_extra={"examples": [_RIGHT_EXAMPLE | {"granted_by": _GRANTOR}]}
    )

    right_id: uuid.UUID
    consumer: AgencyCode
    data_service: DataServiceId
    purposes: list[str] = Field(min_length=1)
    legal_basis: str = Field(min_length=1)
    valid_from: AwareDatetime
    valid_until: AwareDatetime | None
    granted_by: Actor


@event
class AccessGrantedV1(Event):
    """A right as version 1 recorded it, before grants named who made them: still
    readable from the compacted register."""

    event_type = "AccessGranted"
    schema_version = 1
    topic = Topic.EXCHANGE_ACCESS_RIGHTS
    model_config = ConfigDict(json_schema_extra={"examples": [_RIGHT_EXAMPLE]})

    right_id: uuid.UUID
    consumer: AgencyCode
    data_service: DataServiceId
    purposes: list[str] = Field(min_length=1)
    legal_basis: str = Field(min_length=1)
    valid_from: AwareDatetime
    valid_until: AwareDatetime | None


@event
class AccessRevoked(Event):
    """A right ends before its term; revoked by `revoked_by`."""

    event_type = "AccessRevoked"
    schema_version = 2
    topic = Topic.EXCHANGE_ACCESS_RIGHTS
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "right_id": "0a9b8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d",
                    "reason": "agreement ended",
                    "revoked_by": _GRANTOR,
                }
            ]
        }
    )

    right_id: uuid.UUID
    reason: str = Field(min_length=1)
    revoked_by: Actor


@event
class AccessRevokedV1(Event):
    """A revocation as version 1 recorded it, before revocations named who made them."""

    event_type = "AccessRevoked"
    schema_version = 1
    topic = Topic.EXCHANGE_ACCESS_RIGHTS
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"right_id": "0a9b8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d", "reason": "agreement ended"}
            ]
        }
    )

    right_id: uuid.UUID
    reason: str = Field(min_length=1)


@event
class DataRequested(Event):
    """A consumer agency's system asks a data service for data, signed with its key."""

    event_type = "DataRequested"
    schema_version = 1
    topic = Topic.AGENCY_REQUESTS
    agency_field = "consumer"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "transaction_id": _TX,
                    "consumer": "social-security",
                    "data_service": "civil-registration.vital-status",
                    "purpose": "benefit-eligibility",
                    "payload": {"citizen": _CITIZEN},
                    "citizen": _CITIZEN,
                    "signature": _SIGNATURE,
                }
            ]
        }
    )

    transaction_id: uuid.UUID
    consumer: AgencyCode
    data_service: DataServiceId
    purpose: str = Field(min_length=1)
    payload: dict[str, Any]
    citizen: PseudonymousId | None = Field(description="Whose data, for personal data.")
    signature: str = Field(min_length=1)


@event
class DataRequestForwarded(Event):
    """The exchange authorised a request and routes it to its provider."""

    event_type = "DataRequestForwarded"
    schema_version = 1
    topic = Topic.AGENCY_FORWARDED
    agency_field = "provider"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "transaction_id": _TX,
                    "consumer": "social-security",
                    "provider": "civil-registration",
                    "data_service": "civil-registration.vital-status",
                    "purpose": "benefit-eligibility",
                    "payload": {"citizen": _CITIZEN},
                    "citizen": _CITIZEN,
                    "deadline": "2024-03-20T08:30:05Z",
                    "signature": _SIGNATURE,
                }
            ]
        }
    )

    transaction_id: uuid.UUID
    consumer: AgencyCode
    provider: AgencyCode
    data_service: DataServiceId
    purpose: str
    payload: dict[str, Any]
    citizen: PseudonymousId | None
    deadline: AwareDatetime = Field(description="After this the exchange answers timed out.")
    signature: str = Field(description="The exchange's own signature over the request.")


@event
class DataProvided(Event):
    """A provider answers a request, signed with its key."""

    event_type = "DataProvided"
    schema_version = 1
    topic = Topic.AGENCY_ANSWERS
    agency_field = "provider"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "transaction_id": _TX,
                    "provider": "civil-registration",
                    "payload": {"alive": True},
                    "signature": _SIGNATURE,
                }
            ]
        }
    )

    transaction_id: uuid.UUID
    provider: AgencyCode
    payload: dict[str, Any]
    signature: str = Field(min_length=1)


@event
class DataRefused(Event):
    """A provider refuses a request and says why: a reportable event under the law."""

    event_type = "DataRefused"
    schema_version = 1
    topic = Topic.AGENCY_ANSWERS
    agency_field = "provider"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "transaction_id": _TX,
                    "provider": "civil-registration",
                    "reason": "record under judicial seal",
                    "signature": _SIGNATURE,
                }
            ]
        }
    )

    transaction_id: uuid.UUID
    provider: AgencyCode
    reason: str = Field(min_length=1)
    signature: str = Field(min_length=1)


@event
class DataRequestCompleted(Event):
    """The final outcome of a request, for the consumer that sent it; exactly one each."""

    event_type = "DataRequestCompleted"
    schema_version = 1
    topic = Topic.AGENCY_OUTCOMES
    agency_field = "consumer"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "transaction_id": _TX,
                    "consumer": "social-security",
                    "provider": "civil-registration",
                    "data_service": "civil-registration.vital-status",
                    "outcome": "answered",
                    "payload": {"alive": True},
                    "reason": None,
                    "signature": _SIGNATURE,
                }
            ]
        }
    )

    transaction_id: uuid.UUID
    consumer: AgencyCode
    provider: AgencyCode | None = Field(description="None when the data service is unknown.")
    data_service: DataServiceId
    outcome: FinalOutcome
    payload: dict[str, Any] | None = Field(description="The answer, when answered.")
    reason: str | None = Field(description="Why, when denied, refused, timed out or failed.")
    signature: str = Field(description="The exchange's signature over this outcome.")


@event
class TransactionRecorded(Event):
    """Operational monitoring of one finished transaction (never its payloads)."""

    event_type = "TransactionRecorded"
    schema_version = 1
    topic = Topic.EXCHANGE_TRANSACTIONS
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "transaction_id": _TX,
                    "consumer": "social-security",
                    "provider": "civil-registration",
                    "data_service": "civil-registration.vital-status",
                    "purpose": "benefit-eligibility",
                    "outcome": "answered",
                    "request_bytes": 212,
                    "response_bytes": 96,
                    "requested_at": "2024-03-20T08:30:00Z",
                    "completed_at": "2024-03-20T08:30:00.140Z",
                    "exchange_ms": 12.5,
                    "provider_ms": 127.5,
                    "personal_data": True,
                }
            ]
        }
    )

    transaction_id: uuid.UUID
    consumer: AgencyCode
    provider: AgencyCode | None
    data_service: DataServiceId
    purpose: str
    outcome: FinalOutcome
    request_bytes: int = Field(ge=0)
    response_bytes: int = Field(ge=0)
    requested_at: AwareDatetime
    completed_at: AwareDatetime
    exchange_ms: float = Field(ge=0, description="Time spent in the exchange itself.")
    provider_ms: float | None = Field(ge=0, description="The provider's time, if it answered.")
    personal_data: bool


ChainHash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
RecordHashPrefix = Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
_CHAIN_HASH = "3f6c" + "a" * 60


class _AuditCheckpointFields(Event):
    """What every version of a checkpoint lists (not an event by itself)."""

    first_seq: int = Field(
        ge=1, description="The first record it lists: the one after the previous checkpoint's last."
    )
    seq: int = Field(ge=1, description="The chain's last record when it was signed.")
    hash: ChainHash = Field(description="That record's hash: what the checkpoint vouches for.")
    record_hashes: list[RecordHashPrefix] = Field(
        min_length=1,
        max_length=10_000,
        description="The first 16 hex digits of each record's hash from `first_seq` to `seq`, "
        "in order: they name the first record that changed.",
    )
    signed_at: AwareDatetime
    signature: str = Field(description="The exchange's signature over the checkpoint.")

    @model_validator(mode="after")
    def _lists_each_record_once(self) -> Self:
        if len(self.record_hashes) != self.seq - self.first_seq + 1:
            raise ValueError("record_hashes must list each record from first_seq to seq")
        if self.record_hashes[-1] != self.hash[:16]:
            raise ValueError("the last of record_hashes must begin the checkpoint's hash")
        return self


_CHECKPOINT_EXAMPLE: dict[str, Any] = {
    "first_seq": 4999,
    "seq": 5000,
    "hash": _CHAIN_HASH,
    "record_hashes": ["9b1e0c4d2a7f3e58", _CHAIN_HASH[:16]],
    "signed_at": "2024-03-20T08:30:05Z",
    "signature": _SIGNATURE,
}


@event
class AuditCheckpointed(_AuditCheckpointFields):
    """The exchange signs where one of its audit log's hash chains stands, to anchor it
    outside the database: a history rewritten later, even with every hash redone,
    disagrees. The log is several chains (appends running at once take different ones);
    each is checkpointed on its own."""

    event_type = "AuditCheckpointed"
    schema_version = 2
    topic = Topic.EXCHANGE_AUDIT_CHECKPOINTS
    model_config = ConfigDict(json_schema_extra={"examples": [_CHECKPOINT_EXAMPLE | {"chain": 1}]})

    chain: int = Field(ge=0, description="The chain it anchors (0: the log's first chain).")


@event
class AuditCheckpointedV1(_AuditCheckpointFields):
    """A checkpoint as version 1 signed it, when the log was one chain (chain 0 now):
    still read from the topic, which keeps checkpoints for ever."""

    event_type = "AuditCheckpointed"
    schema_version = 1
    topic = Topic.EXCHANGE_AUDIT_CHECKPOINTS
    model_config = ConfigDict(json_schema_extra={"examples": [_CHECKPOINT_EXAMPLE]})

    @property
    def chain(self) -> int:
        return 0
