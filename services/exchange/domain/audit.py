"""The audit log's records, its hash chain and the checkpoints that anchor it, pure.

Each record's hash is SHA-256 over the previous record's hash and the canonical JSON of
its own content; payloads are kept only as digests of the signed content. The log is
several such chains, numbered from 0: appends that run at once (two polls, two exchange
processes) each take a chain no other holds, so none waits for another. Each chain is
checked, and checkpointed, on its own.

The chain alone cannot tell a history rewritten with every later hash redone, or a tail
cut with the head moved back, from the real one: whoever can write the database can
redo it all. So the exchange signs checkpoints of the chain (where it stands, and the
hash of each record since the previous checkpoint) and publishes them outside the
database; `ChainCheck` holds the chain to those it is given.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from joserfc.jwk import Key

from shared.events.exchange import AuditCheckpointed, AuditCheckpointedV1
from shared.signing import SignatureInvalid, canonical, key_id_of, sign_event, verify_event

GENESIS_HASH = "0" * 64

AuditKind = Literal["request", "response", "timeout", "late_response"]

#: A checkpoint as the topic holds it: version 1 (the log's chain 0) or 2.
Checkpoint = AuditCheckpointed | AuditCheckpointedV1


def record_named(seq: int, chain: int) -> str:
    """How a record is named to people: chain 0 is the log as it was before it had
    several, so its records keep their plain names."""
    return f"record {seq}" if chain == 0 else f"record {seq} of chain {chain}"


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
    """Where an audit chain stops holding, and why."""

    seq: int
    reason: str
    chain: int = 0

    def named(self) -> str:
        return record_named(self.seq, self.chain)


class ChainCheck:
    """Checks the audit chain one record at a time, in seq order.

    A changed record breaks its own hash; a removed one leaves a gap in seq; a removed
    tail disagrees with the head the appends maintain. Held to the exchange's signed
    checkpoints (`anchors`), a record whose hash differs from the one signed for it
    breaks too, however well every later hash was redone, and so does a log that ends
    before the last record a checkpoint vouches for. `take` returns the first break (and
    every later call returns it again); `finish` checks the end against the head and the
    checkpoints.
    """

    def __init__(self, anchors: Anchors | None = None, chain: int = 0) -> None:
        self.chain = chain
        self.previous_hash = GENESIS_HASH
        self.expected_seq = 1
        self.broken: ChainBreak | None = None
        self.checked = 0
        self.anchors = anchors if anchors is not None else Anchors()

    def take(self, record: Mapping[str, Any]) -> ChainBreak | None:
        if self.broken is not None:
            return self.broken
        seq = int(record["seq"])
        if seq != self.expected_seq:
            self.broken = self._break(
                self.expected_seq, f"{record_named(self.expected_seq, self.chain)} is missing"
            )
        elif record["previous_hash"] != self.previous_hash:
            self.broken = self._break(seq, "its link to the previous record does not match")
        elif chain_hash(self.previous_hash, record) != record["hash"]:
            self.broken = self._break(seq, "its content does not match its hash")
        elif (signed := self.anchors.contradicted(seq, record["hash"])) is not None:
            self.broken = self._break(
                seq, f"its hash is not the one the exchange signed for it {signed.named()}"
            )
        else:
            self.previous_hash, self.expected_seq = record["hash"], seq + 1
            self.checked += 1
        return self.broken

    def finish(self, head_seq: int, head_hash: str) -> ChainBreak | None:
        if self.broken is None and (
            self.expected_seq - 1 != head_seq or self.previous_hash != head_hash
        ):
            self.broken = self._break(
                self.expected_seq,
                f"the log ends at {self.expected_seq - 1}, its head at {head_seq}",
            )
        last = self.anchors.last
        if self.broken is None and last is not None and last.seq >= self.expected_seq:
            self.broken = self._break(
                self.expected_seq,
                f"{record_named(self.expected_seq, self.chain)} is missing: the log ends at "
                f"{self.expected_seq - 1}, but the exchange signed it through {last.named()}",
            )
        return self.broken

    def _break(self, seq: int, reason: str) -> ChainBreak:
        return ChainBreak(seq, reason, self.chain)


def first_break(
    records: Iterable[Mapping[str, Any]],
    head_seq: int,
    head_hash: str,
    anchors: Anchors | None = None,
) -> ChainBreak | None:
    """The first record (by seq) at which the chain fails, or None when it holds."""
    check = ChainCheck(anchors)
    for record in records:
        if check.take(record) is not None:
            break
    return check.finish(head_seq, head_hash)


# Checkpoints: the chain anchored outside the database.

#: How much of each record's hash a checkpoint lists: enough to name the first record
#: that changed; the full hash of its last record is what it vouches for.
RECORD_HASH_PREFIX = 16


@dataclass(frozen=True)
class CheckpointPolicy:
    """When the exchange signs a checkpoint: once `every_records` records wait for one,
    or once `every_seconds` passed since the last while any does. A checkpoint lists at
    most `every_records` records, so a backlog is anchored by several."""

    every_seconds: float
    every_records: int

    def due(self, last: CheckpointMark, head_seq: int, now: datetime) -> bool:
        waiting = head_seq - last.seq
        if waiting <= 0:
            return False
        return waiting >= self.every_records or now - last.signed_at >= timedelta(
            seconds=self.every_seconds
        )


@dataclass(frozen=True)
class CheckpointMark:
    """The last record the exchange's checkpoints reached, and when it signed it."""

    seq: int
    signed_at: datetime


def checkpoints(
    hashes: Sequence[tuple[int, str]],
    first_seq: int,
    policy: CheckpointPolicy,
    now: datetime,
    key: Key,
    kid: str,
    chain: int = 0,
) -> list[AuditCheckpointed]:
    """Signed checkpoints of one chain's records since its last one (`hashes`: each
    record's seq and hash, in order, from `first_seq`), at most `policy.every_records`
    records each."""
    signed: list[AuditCheckpointed] = []
    size = policy.every_records
    for start in range(0, len(hashes), size):
        chunk = hashes[start : start + size]
        seq, last_hash = chunk[-1]
        unsigned = AuditCheckpointed(
            chain=chain,
            first_seq=first_seq + start,
            seq=seq,
            hash=last_hash,
            record_hashes=[record_hash[:RECORD_HASH_PREFIX] for _, record_hash in chunk],
            signed_at=now,
            signature="-",
        )
        signed.append(unsigned.model_copy(update={"signature": sign_event(unsigned, key, kid)}))
    return signed


def checkpoint_subject(checkpoint: Checkpoint) -> str:
    """Its record key: a second head signed for the same seq (a rewritten history) has
    another key, so compaction never takes the first one away. Chain 0's keep the form
    they had when the log was one chain."""
    if checkpoint.chain == 0:
        return f"{checkpoint.seq}:{checkpoint.hash}"
    return f"{checkpoint.chain}:{checkpoint.seq}:{checkpoint.hash}"


@dataclass(frozen=True)
class Trusted:
    """Checkpoints whose signature one of the exchange's keys verifies, and why the others
    were left out."""

    checkpoints: list[Checkpoint]
    left_out: list[str]


def trusted(
    candidates: Iterable[Checkpoint], public_keys: Mapping[str, Mapping[str, Any]]
) -> Trusted:
    """Only what the exchange signed counts: a checkpoint under an unknown key, or whose
    signature does not verify, is left out (and said why), never believed."""
    kept: list[Checkpoint] = []
    left_out: list[str] = []
    for checkpoint in candidates:
        try:
            kid = key_id_of(checkpoint.signature)
            jwk = public_keys.get(kid)
            if jwk is None:
                raise SignatureInvalid(f"signed with key {kid}, not one of the exchange's")
            verify_event(checkpoint, dict(jwk), str(jwk.get("alg", "ES256")))
        except SignatureInvalid as error:
            left_out.append(
                f"checkpoint through {record_named(checkpoint.seq, checkpoint.chain)}:"
                f" {error.reason}"
            )
            continue
        kept.append(checkpoint)
    return Trusted(kept, left_out)


@dataclass(frozen=True)
class Anchor:
    """What one checkpoint says of one record: the start of its hash (all of it for the
    checkpoint's last record)."""

    hash_start: str
    checkpoint: Checkpoint

    def named(self) -> str:
        return (
            f"in its checkpoint through {record_named(self.checkpoint.seq, self.checkpoint.chain)}"
            f" signed at {self.checkpoint.signed_at.astimezone(UTC).isoformat()}"
        )


@dataclass
class Anchors:
    """What trusted checkpoints of one chain say of each of its records; every one must
    hold."""

    by_seq: dict[int, list[Anchor]] = field(default_factory=dict)
    last_checkpoint: Checkpoint | None = None
    count: int = 0

    @classmethod
    def by_chain(cls, checkpoints: Iterable[Checkpoint]) -> dict[int, Anchors]:
        """Each chain's anchors, from checkpoints of any chains."""
        of_chain: dict[int, list[Checkpoint]] = {}
        for checkpoint in checkpoints:
            of_chain.setdefault(checkpoint.chain, []).append(checkpoint)
        return {chain: cls.of(listed) for chain, listed in of_chain.items()}

    @classmethod
    def of(cls, checkpoints: Iterable[Checkpoint]) -> Anchors:
        """Anchors from checkpoints of one chain."""
        anchors = cls()
        for checkpoint in checkpoints:
            anchors.count += 1
            for offset, hash_start in enumerate(checkpoint.record_hashes):
                seq = checkpoint.first_seq + offset
                if seq == checkpoint.seq:
                    hash_start = checkpoint.hash
                anchors.by_seq.setdefault(seq, []).append(Anchor(hash_start, checkpoint))
            last = anchors.last_checkpoint
            if last is None or checkpoint.seq > last.seq:
                anchors.last_checkpoint = checkpoint
        return anchors

    def through(self, seq: int) -> tuple[Anchors, int]:
        """What these anchors say of records up to `seq` (a restored chain's head), and
        how many records past it they vouched for: records the restore lost."""
        kept = Anchors(
            by_seq={at: anchors for at, anchors in self.by_seq.items() if at <= seq},
            count=self.count,
        )
        whole = [
            anchor.checkpoint
            for anchors in kept.by_seq.values()
            for anchor in anchors
            if anchor.checkpoint.seq <= seq
        ]
        kept.last_checkpoint = max(whole, key=lambda checkpoint: checkpoint.seq, default=None)
        return kept, sum(1 for at in self.by_seq if at > seq)

    @property
    def last(self) -> LastAnchored | None:
        checkpoint = self.last_checkpoint
        if checkpoint is None:
            return None
        return LastAnchored(checkpoint.seq, checkpoint.signed_at, checkpoint.chain)

    def contradicted(self, seq: int, record_hash: str) -> Anchor | None:
        """The first checkpoint that signed another hash for record `seq`, if any."""
        for anchor in self.by_seq.get(seq, ()):
            if not record_hash.startswith(anchor.hash_start):
                return anchor
        return None


@dataclass(frozen=True)
class LastAnchored:
    """The last record a checkpoint vouches for, and when it was signed."""

    seq: int
    signed_at: datetime
    chain: int = 0

    def named(self) -> str:
        moment = self.signed_at.astimezone(UTC).isoformat()
        return f"{record_named(self.seq, self.chain)} at {moment}"
