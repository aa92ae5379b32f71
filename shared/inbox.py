"""The inbox: what makes every consumer idempotent.

A handler records the event id in `processed_events` in the same transaction as its
state change. A redelivered event finds its row, and the handler skips it: the change
happens once, and counts stay exact.

A row is kept for the dedup horizon (`PANJEREH_DEDUP_HORIZON_DAYS`), the longest an event
can come again: a crash's redelivery takes seconds, a dead letter's replay up to the
dead-letter topics' retention, which the horizon must cover. Older rows are deleted by the
schema's outbox relay (`prune_processed`), so the inbox holds the horizon's events, not
every event ever.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from shared.db import Connection, Pool


async def first_delivery(connection: Connection, consumer: str, event_id: uuid.UUID) -> bool:
    """Record the event as processed by `consumer`; False if it already was.

    Must run inside the transaction that applies the event's effects.
    """
    return event_id in await first_deliveries(connection, consumer, [event_id])


async def first_deliveries(
    connection: Connection, consumer: str, event_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """`first_delivery` for a batch, in one statement: the ids not processed before."""
    if not connection.is_in_transaction():
        raise RuntimeError("the inbox must be written in the handler's transaction")
    rows = await connection.fetch(
        "INSERT INTO processed_events (consumer, event_id)"
        " SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING RETURNING event_id",
        consumer,
        list(event_ids),
    )
    return {row["event_id"] for row in rows}


async def forget_deliveries(
    connection: Connection, consumer: str, event_ids: Sequence[uuid.UUID]
) -> None:
    """Take events back out of the inbox, in the caller's transaction.

    For the events a batch refuses: recorded as processed, a redelivery (the process died
    before dead-lettering them) would be skipped instead of refused again.
    """
    if event_ids:
        await connection.execute(
            "DELETE FROM processed_events WHERE consumer = $1 AND event_id = ANY($2::uuid[])",
            consumer,
            list(event_ids),
        )


async def handle_once(
    pool: Pool,
    consumer: str,
    event_id: uuid.UUID,
    apply: Callable[[Connection], Awaitable[None]],
) -> bool:
    """Run `apply` in a transaction, once per (consumer, event); False for a redelivery."""
    async with pool.acquire() as connection, connection.transaction():
        if not await first_delivery(connection, consumer, event_id):
            return False
        await apply(connection)
        return True


async def prune_processed(pool: Pool, older_than: timedelta, chunk: int = 5000) -> int:
    """Delete the inbox rows of events handled more than `older_than` ago; how many.

    In chunks, each its own short transaction, so handlers inserting meanwhile never wait
    long on it.
    """
    deleted = 0
    while True:
        async with pool.acquire() as connection:
            status = await connection.execute(
                "DELETE FROM processed_events WHERE ctid = ANY(ARRAY("
                " SELECT ctid FROM processed_events"
                " WHERE processed_at < now() - $1::interval LIMIT $2))",
                older_than,
                chunk,
            )
        count = int(status.split()[-1])
        deleted += count
        if count < chunk:
            return deleted
