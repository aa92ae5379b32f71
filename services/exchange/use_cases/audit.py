"""Anchoring the audit log: the exchange signs checkpoints of its hash chain and
publishes them (outbox), so the chain can be checked against something outside the
database (`panjereh audit verify`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from services.exchange.domain.audit import (
    CheckpointMark,
    CheckpointPolicy,
    checkpoint_subject,
    checkpoints,
)
from services.exchange.domain.transaction import ExchangeSigner
from services.exchange.use_cases.ports import SOURCE
from shared.envelope import Envelope
from shared.events.exchange import AuditCheckpointed
from shared.unit_of_work import Publisher


class CheckpointWork(Publisher, Protocol):
    """What signing checkpoints needs of a unit of work."""

    async def signer(self) -> ExchangeSigner: ...

    async def last_checkpoint(self) -> CheckpointMark:
        """Where the checkpoints reached; held until the unit of work ends, so two
        processes never sign the same records at once."""
        ...

    async def audit_head_seq(self) -> int: ...

    async def audit_hashes(self, after: int, through: int) -> Sequence[tuple[int, str]]:
        """Each record's seq and hash, in order, after `after` through `through`."""
        ...

    async def save_checkpoint_mark(self, mark: CheckpointMark) -> None: ...


async def sign_checkpoints(
    work: CheckpointWork, policy: CheckpointPolicy, *, now: datetime | None = None
) -> list[AuditCheckpointed]:
    """Sign and publish checkpoints of the records since the last one, when the policy
    says one is due; returns what was published (nothing when none is due)."""
    now = now or datetime.now(UTC)
    last = await work.last_checkpoint()
    head = await work.audit_head_seq()
    if not policy.due(last, head, now):
        return []
    hashes = await work.audit_hashes(last.seq, head)
    signer = await work.signer()
    signed = checkpoints(hashes, last.seq + 1, policy, now, signer.key, signer.kid)
    await work.publish(
        [
            Envelope.wrap(checkpoint, source=SOURCE, subject=checkpoint_subject(checkpoint))
            for checkpoint in signed
        ]
    )
    await work.save_checkpoint_mark(CheckpointMark(head, now))
    return signed
