"""The audit log's records and its hash chain, pure.

Each record's hash is SHA-256 over the previous record's hash and the canonical JSON of
its own content; payloads are kept only as digests of the signed content.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from shared.signing import canonical

GENESIS_HASH = "0" * 64

AuditKind = Literal["request", "response", "timeout", "late_response"]

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
    kind: AuditKind
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


def digest(content: bytes) -> str:
    """SHA-256, hex: what the audit log keeps instead of a payload."""
    return hashlib.sha256(content).hexdigest()


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
