"""The exchange's rules, pure: who may ask what, whether a signature holds, the audit chain.

Nothing here does I/O. Handlers load what a decision needs (the consumer agency, the key
a signature names, the data service, the consumer's rights), call these functions, and
store what they decide.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel

from shared.events.exchange import DataRequested
from shared.signing import SignatureInvalid, canonical, verify_event

GENESIS_HASH = "0" * 64

Outcome = Literal["answered", "denied", "refused", "timed_out", "failed"]


@dataclass(frozen=True)
class Agency:
    code: str
    active: bool


@dataclass(frozen=True)
class AgencyKey:
    """A key an agency signs with, as identity published it (jwk None: only its revocation)."""

    kid: str
    agency: str
    algorithm: str | None
    jwk: dict[str, Any] | None
    not_before: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class DataService:
    data_service: str
    version: int
    provider: str
    request_schema: dict[str, Any]
    response_schema: dict[str, Any]
    timeout_ms: int
    purposes: tuple[str, ...]
    personal_data: bool
    active: bool


@dataclass(frozen=True)
class AccessRight:
    right_id: uuid.UUID
    consumer: str
    data_service: str
    purposes: tuple[str, ...]
    legal_basis: str
    valid_from: datetime
    valid_until: datetime | None
    revoked_at: datetime | None

    def allows(self, purpose: str, at: datetime) -> bool:
        return (
            purpose in self.purposes
            and self.valid_from <= at
            and (self.valid_until is None or at < self.valid_until)
            and (self.revoked_at is None or at < self.revoked_at)
        )


@dataclass(frozen=True)
class Authorised:
    """The request may go to its provider, under this right, until the deadline."""

    service: DataService
    right: AccessRight
    deadline: datetime


@dataclass(frozen=True)
class Denied:
    """The request is refused by the exchange itself; `reason` says why (`code: detail`)."""

    reason: str


def signature_problem(
    event: BaseModel, signer: str, key: AgencyKey | None, kid: str, now: datetime
) -> str | None:
    """Why `event`'s signature cannot be trusted as `signer`'s, or None when it holds."""
    if key is None or key.jwk is None or key.algorithm is None:
        if key is not None and key.revoked_at is not None:
            return f"key_revoked: key {kid} was revoked"
        return f"unknown_key: no key {kid} is published"
    if key.agency != signer:
        return f"wrong_key: key {kid} belongs to {key.agency}, not {signer}"
    if key.revoked_at is not None and key.revoked_at <= now:
        return f"key_revoked: key {kid} was revoked"
    if key.not_before is not None and now < key.not_before:
        return f"key_not_yet_valid: key {kid} is valid from {key.not_before.isoformat()}"
    if key.expires_at is not None and key.expires_at <= now:
        return f"key_expired: key {kid} expired at {key.expires_at.isoformat()}"
    try:
        verify_event(event, key.jwk, key.algorithm)
    except SignatureInvalid as error:
        return f"bad_signature: {error.reason}"
    return None


def schema_problem(document: dict[str, Any], schema: dict[str, Any]) -> str | None:
    """The first way `document` breaks `schema`, or None when it conforms."""
    try:
        validator_class = jsonschema.validators.validator_for(schema)
        error = jsonschema.exceptions.best_match(validator_class(schema).iter_errors(document))
    except jsonschema.exceptions.SchemaError as invalid:
        return f"the data service's schema is invalid: {invalid.message}"
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "(root)"
    return f"{where}: {error.message}"


def authorise(
    request: DataRequested,
    *,
    consumer: Agency | None,
    key: AgencyKey | None,
    kid: str,
    service: DataService | None,
    rights: Sequence[AccessRight],
    now: datetime,
) -> Authorised | Denied:
    """Whether the exchange forwards a request: signature, agency, service, right, payload.

    The signature is checked first: nothing else is worth believing before it holds.
    """
    problem = signature_problem(request, request.consumer, key, kid, now)
    if problem is not None:
        return Denied(problem)
    if consumer is None:
        return Denied(f"unknown_agency: {request.consumer} is not in the register")
    if not consumer.active:
        return Denied(f"inactive_agency: {request.consumer} is not active")
    if service is None or not service.active:
        return Denied(f"unknown_data_service: {request.data_service} is not offered")
    if request.purpose not in service.purposes:
        return Denied(f"purpose_not_served: {request.data_service} does not serve this purpose")
    right = next((r for r in rights if r.allows(request.purpose, now)), None)
    if right is None:
        return Denied(
            f"no_access_right: {request.consumer} holds no valid right to "
            f"{request.data_service} for {request.purpose}"
        )
    if service.personal_data and request.citizen is None:
        return Denied("citizen_required: personal data is asked for without naming whose")
    invalid = schema_problem(request.payload, service.request_schema)
    if invalid is not None:
        return Denied(f"invalid_request: {invalid}")
    return Authorised(service, right, now + timedelta(milliseconds=service.timeout_ms))


def digest(content: bytes) -> str:
    """SHA-256, hex: what the audit log keeps instead of a payload."""
    return hashlib.sha256(content).hexdigest()


def payload_size(payload: Mapping[str, Any] | None) -> int:
    """The size of a payload as monitoring counts it: its canonical JSON, in bytes."""
    return 0 if payload is None else len(canonical(dict(payload)))


# The audit log.

AUDIT_FIELDS = (
    "seq",
    "recorded_at",
    "transaction_id",
    "kind",
    "outcome",
    "consumer",
    "provider",
    "data_service",
    "purpose",
    "legal_basis",
    "citizen",
    "reason",
    "content_digest",
    "signature",
)


@dataclass(frozen=True)
class AuditEntry:
    """One record of the audit log, before it is chained."""

    transaction_id: uuid.UUID
    kind: Literal["request", "response", "timeout", "late_response"]
    outcome: str
    consumer: str
    provider: str | None
    data_service: str
    purpose: str
    legal_basis: str | None
    citizen: str | None
    reason: str | None
    content_digest: str | None
    signature: str | None


def _normal(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def audit_content(record: Mapping[str, Any]) -> bytes:
    """The canonical bytes of an audit record's content (every field but the hashes)."""
    return canonical({name: _normal(record[name]) for name in AUDIT_FIELDS})


def chain_hash(previous_hash: str, record: Mapping[str, Any]) -> str:
    """A record's hash: SHA-256 over the previous record's hash and its own content."""
    return hashlib.sha256(previous_hash.encode() + b"\n" + audit_content(record)).hexdigest()


@dataclass(frozen=True)
class ChainBreak:
    """Where the audit chain stops holding, and why."""

    seq: int
    reason: str


class ChainCheck:
    """Checks the audit chain one record at a time, in seq order.

    A changed record breaks its own hash; a removed one leaves a gap in seq; a removed
    tail disagrees with the head the appends maintain. `take` returns the first break
    (and every later call returns it again); `finish` checks the end against the head.
    """

    def __init__(self) -> None:
        self.previous_hash = GENESIS_HASH
        self.expected_seq = 1
        self.broken: ChainBreak | None = None
        self.checked = 0

    def take(self, record: Mapping[str, Any]) -> ChainBreak | None:
        if self.broken is not None:
            return self.broken
        seq = int(record["seq"])
        if seq != self.expected_seq:
            self.broken = ChainBreak(self.expected_seq, f"record {self.expected_seq} is missing")
        elif record["previous_hash"] != self.previous_hash:
            self.broken = ChainBreak(seq, "its link to the previous record does not match")
        elif chain_hash(self.previous_hash, record) != record["hash"]:
            self.broken = ChainBreak(seq, "its content does not match its hash")
        else:
            self.previous_hash, self.expected_seq = record["hash"], seq + 1
            self.checked += 1
        return self.broken

    def finish(self, head_seq: int, head_hash: str) -> ChainBreak | None:
        if self.broken is None and (
            self.expected_seq - 1 != head_seq or self.previous_hash != head_hash
        ):
            self.broken = ChainBreak(
                self.expected_seq,
                f"the log ends at {self.expected_seq - 1}, its head at {head_seq}",
            )
        return self.broken


def first_break(
    records: Iterable[Mapping[str, Any]], head_seq: int, head_hash: str
) -> ChainBreak | None:
    """The first record (by seq) at which the chain fails, or None when it holds."""
    check = ChainCheck()
    for record in records:
        if check.take(record) is not None:
            break
    return check.finish(head_seq, head_hash)
