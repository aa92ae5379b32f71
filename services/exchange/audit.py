"""Verifying the audit log: what `panjereh audit verify` runs.

Each hash chain of the log is walked in seq order from the database and held to the
exchange's signed checkpoints of it, read from `exchange.audit-checkpoints` (outside the
database) and believed only when one of the exchange's public keys (its `/keys`)
verifies them. So a record rewritten with every later hash redone, a tail cut with the
head moved back, or a head moved back with a new history written over it, is named as
the first record whose hash differs from the one the exchange signed, or the first one
missing.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka.errors import KafkaError

from services.exchange import storage
from services.exchange.domain.audit import (
    Anchors,
    ChainBreak,
    ChainCheck,
    Checkpoint,
    LastAnchored,
    Trusted,
    trusted,
)
from shared.db import Connection, create_pool
from shared.events.exchange import AuditCheckpointed, AuditCheckpointedV1
from shared.kafka import read_to_end
from shared.kafka_access import KafkaAccess
from shared.registry import UndecodableEvent, decode
from shared.topics import Topic

BATCH = 5000


@dataclass(frozen=True)
class ChainVerified:
    """How far one chain was checked."""

    chain: int
    checked: int
    head_seq: int
    #: The last record a trusted checkpoint vouches for (None: none does, or not asked).
    anchored: LastAnchored | None
    #: When a restore from backup closed the chain (None: it is open), and how many
    #: records past its head checkpoints had vouched for: lost with the database.
    restored: storage.RestoredChain | None = None
    lost_to_restore: int = 0

    @property
    def waiting(self) -> int:
        """Records past the last checkpoint: they wait for theirs."""
        return self.head_seq - (self.anchored.seq if self.anchored is not None else 0)


@dataclass(frozen=True)
class Verification:
    chains: tuple[ChainVerified, ...]
    #: The first broken record, of the lowest chain that has one.
    broken: ChainBreak | None
    checkpoints: int = 0
    #: Why checkpoints read from the topic were not believed.
    left_out: tuple[str, ...] = field(default=())

    @property
    def checked(self) -> int:
        return sum(chain.checked for chain in self.chains)


async def verify_audit_log(
    database_url: str, schema: str = "exchange", checkpoints: Trusted | None = None
) -> Verification:
    """Walk every chain in seq order, each held to its checkpoints when given; the first
    broken record, if any. A chain a restore closed is held to them up to the head it
    was restored with; what they vouched for past it is counted as lost, not a break
    (the restore is recorded by the administrator, which the exchange's role cannot do).

    The chains are those with a head or a record in the database, and those a trusted
    checkpoint names: a chain removed whole is missing from its first signed record on.
    Heads are read before records, in one repeatable-read snapshot, so appends running
    meanwhile never look like a break.
    """
    anchors = Anchors.by_chain(checkpoints.checkpoints if checkpoints is not None else ())
    pool = await create_pool(database_url, schema, max_size=1)
    verified: list[ChainVerified] = []
    broken: ChainBreak | None = None
    try:
        async with (
            pool.acquire() as connection,
            connection.transaction(isolation="repeatable_read", readonly=True),
        ):
            restored = await storage.restored_chains(connection)
            for chain in sorted({*await storage.audit_chains(connection), *anchors}):
                chain_anchors, lost = anchors.get(chain, Anchors()), 0
                if chain in restored:
                    chain_anchors, lost = chain_anchors.through(restored[chain].head_seq)
                check, head_seq = await _verify_chain(connection, chain, chain_anchors)
                verified.append(
                    ChainVerified(
                        chain,
                        check.checked,
                        head_seq,
                        chain_anchors.last,
                        restored.get(chain),
                        lost,
                    )
                )
                if broken is None:
                    broken = check.broken
        return Verification(
            tuple(verified),
            broken,
            checkpoints=sum(chain_anchors.count for chain_anchors in anchors.values()),
            left_out=tuple(checkpoints.left_out) if checkpoints is not None else (),
        )
    finally:
        await pool.close()


async def _verify_chain(
    connection: Connection, chain: int, anchors: Anchors
) -> tuple[ChainCheck, int]:
    """The chain checked against its head and `anchors`; and its head's seq."""
    head_seq, head_hash = await storage.audit_head(connection, chain)
    check, after = ChainCheck(anchors, chain), 0
    while True:
        records = await storage.audit_records(connection, after, BATCH, chain)
        for record in records:
            if check.take(record) is not None:
                break
        if check.broken is not None or len(records) < BATCH:
            break
        after = records[-1]["seq"]
    check.finish(head_seq, head_hash)
    return check, head_seq


def load_public_keys(source: str) -> dict[str, dict[str, Any]]:
    """The exchange's public keys by kid, from its `/keys` (a URL) or a copy (a file),
    both a JWKS document."""
    if source.startswith(("http://", "https://")):
        response = httpx.get(source, timeout=10)
        response.raise_for_status()
        document = response.json()
    else:
        document = json.loads(Path(source).read_text("utf-8"))
    return {key["kid"]: key for key in document["keys"]}


async def read_checkpoints(
    kafka: KafkaAccess, topic: str = Topic.EXCHANGE_AUDIT_CHECKPOINTS
) -> tuple[list[Checkpoint], list[str]]:
    """Every checkpoint on the topic, from its beginning to its end as it is now (only
    what committed), and why records that are no checkpoint were left out."""
    found: list[Checkpoint] = []
    left_out: list[str] = []
    client_id = f"audit-verify-{uuid.uuid4().hex[:8]}"
    for record in await read_to_end(kafka, [topic], client_id=client_id):
        try:
            payload = decode(record.value, topic).payload
        except UndecodableEvent as error:
            left_out.append(f"record at offset {record.offset}: {error.reason}")
            continue
        if isinstance(payload, AuditCheckpointed | AuditCheckpointedV1):
            found.append(payload)
    return found, left_out


class CheckpointsUnavailable(Exception):
    """The exchange's keys or its checkpoints could not be read: nothing was verified."""


async def read_trusted_checkpoints(kafka: KafkaAccess, keys_source: str) -> Trusted:
    """The checkpoints on the topic that the exchange's public keys verify."""
    try:
        keys = await asyncio.to_thread(load_public_keys, keys_source)
    except (httpx.HTTPError, OSError, ValueError, KeyError, TypeError) as error:
        raise CheckpointsUnavailable(
            f"cannot read the exchange's public keys from {keys_source}: {error!r}"
        ) from None
    try:
        candidates, undecodable = await read_checkpoints(kafka)
    except KafkaError as error:
        raise CheckpointsUnavailable(f"cannot read the checkpoints: {error!r}") from None
    believed = trusted(candidates, keys)
    return Trusted(believed.checkpoints, undecodable + believed.left_out)
