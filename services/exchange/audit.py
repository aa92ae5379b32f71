"""Verifying the audit log's hash chain: what `panjereh audit verify` runs."""

from __future__ import annotations

from dataclasses import dataclass

from services.exchange import storage
from services.exchange.domain.audit import ChainBreak, ChainCheck
from shared.db import create_pool

BATCH = 5000


@dataclass(frozen=True)
class Verification:
    checked: int
    head_seq: int
    broken: ChainBreak | None


async def verify_audit_log(database_url: str, schema: str = "exchange") -> Verification:
    """Walk the whole chain in seq order; the first broken record, if any.

    The head is read before the records, in one repeatable-read snapshot, so appends
    running meanwhile never look like a break.
    """
    pool = await create_pool(database_url, schema, max_size=1)
    try:
        async with (
            pool.acquire() as connection,
            connection.transaction(isolation="repeatable_read", readonly=True),
        ):
            head_seq, head_hash = await storage.audit_head(connection)
            check, after = ChainCheck(), 0
            while True:
                records = await storage.audit_records(connection, after, BATCH)
                for record in records:
                    if check.take(record) is not None:
                        break
                if check.broken is not None or len(records) < BATCH:
                    break
                after = records[-1]["seq"]
            broken = check.finish(head_seq, head_hash)
        return Verification(check.checked, head_seq, broken)
    finally:
        await pool.close()
