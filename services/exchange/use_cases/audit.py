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

    async def audit_chains(self) -> Sequence[int]:
        """Every chain of the audit log."""
        ...

    async def last_checkpoint(self, chain: int) -> CheckpointMark | None:
        """Where a chain's checkpoints reached, held until the unit of work ends so that
        two processes never sign the same records at once; None when another process
        holds it (and signs that chain now)."""
        ...

    async def audit_head_seq(self, chain: int) -> int: ...

    async def audit_hashes(self, chain: int, after: int, through: int) -> Sequence[tuple[int, str]]:
        """Each record's seq and hash in `chain`, in order, after `after` through `through`."""
        ...

    async def save_checkpoint_mark(self, chain: int, mark: CheckpointMark) -> None: ...


async def sign_checkpoints(
    work: CheckpointWork, policy: CheckpointPolicy, *, now: datetime | None = None
) -> list[AuditCheckpointed]:
    """Sign and publish checkpoints of each chain's records since its last one, where the
    policy says one is due; returns what was published (nothing when none is due)."""
    now = now or datetime.now(UTC)
    signed: list[AuditCheckpointed] = []
    for chain in await work.audit_chains():
        last = await work.last_checkpoint(chain)
        if last is None:
            continue
        head = await work.audit_head_seq(chain)
        if not policy.due(last, head, now):
            continue
        hashes = await work.audit_hashes(chain, last.seq, head)
        signer = await work.signer()
        signed.extend(checkpoints(hashes, last.seq + 1, policy, now, signer.key, signer.kid, chain))
        await work.save_checkpoint_mark(chain, CheckpointMark(head, now))
    if signed:
        await work.publish(
            [
                Envelope.wrap(checkpoint, source=SOURCE, subject=checkpoint_subject(checkpoint))
                for checkpoint in signed
            ]
        )
    return signed
