"""Outbox rows the broker refuses for good, taken out of the relay's way with the reason.

A row larger than its topic takes cannot be published by any retry; left in the outbox it
would hold up every row behind it forever. The relay moves it to `outbox_parked` (its
bytes kept, for the platform team) and logs it as an error, then goes on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shared.db import Pool
from shared.logging import get_logger
from shared.record_limits import oversize

log = get_logger(__name__)


def refused_for_size(rows: Sequence[Mapping[str, Any]]) -> dict[int, str]:
    """Outbox rows (id, topic, key, value, headers) too large for their topic, by id."""
    refused: dict[int, str] = {}
    for row in rows:
        headers = [(name, value.encode()) for name, value in row["headers"]]
        reason = oversize(row["topic"], row["key"], row["value"], headers)
        if reason is not None:
            refused[row["id"]] = reason
    return refused


async def park(pool: Pool, relay: str, reasons: Mapping[int, str]) -> None:
    """Move these unpublished outbox rows to `outbox_parked`, each with its reason."""
    if not reasons:
        return
    ids, why = list(reasons), list(reasons.values())
    async with pool.acquire() as connection, connection.transaction():
        parked = await connection.fetch(
            "WITH moved AS (DELETE FROM outbox WHERE id = ANY($1::bigint[])"
            " AND published_at IS NULL RETURNING *)"
            " INSERT INTO outbox_parked"
            " (id, event_id, topic, key, value, headers, created_at, reason)"
            " SELECT m.id, m.event_id, m.topic, m.key, m.value, m.headers, m.created_at, r.reason"
            " FROM moved m JOIN unnest($1::bigint[], $2::text[]) AS r(id, reason) USING (id)"
            " RETURNING id, event_id, topic, reason",
            ids,
            why,
        )
    for row in parked:
        log.error(
            "outbox row parked: the broker will never take it",
            relay=relay,
            outbox_id=row["id"],
            event_id=str(row["event_id"]),
            topic=row["topic"],
            reason=row["reason"],
        )
