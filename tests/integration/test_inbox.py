"""The inbox on the real database: a redelivered event changes nothing for as long as the
dedup horizon, and rows older than it are deleted, by `prune_processed` and by the schema's
outbox relay on its schedule, so the inbox does not grow with every event ever."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from shared.db import Pool
from shared.inbox import first_deliveries, prune_processed
from shared.kafka_access import KafkaAccess
from shared.outbox import OutboxRelay
from tests.integration.exchange.helpers import eventually

pytestmark = pytest.mark.integration

HORIZON = timedelta(days=45)
CONSUMER = "test-consumer"


async def handled(pool: Pool, events: list[uuid.UUID], days_ago: int) -> None:
    """Record `events` as handled `days_ago` days ago."""
    async with pool.acquire() as connection, connection.transaction():
        assert await first_deliveries(connection, CONSUMER, events) == set(events)
        await connection.execute(
            "UPDATE processed_events SET processed_at = now() - make_interval(days => $1)"
            " WHERE event_id = ANY($2::uuid[])",
            days_ago,
            events,
        )


async def first_of(pool: Pool, events: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of `events` the inbox takes as first deliveries (in a transaction rolled back)."""
    async with pool.acquire() as connection:
        transaction = connection.transaction()
        await transaction.start()
        try:
            return await first_deliveries(connection, CONSUMER, events)
        finally:
            await transaction.rollback()


async def test_rows_past_the_horizon_are_pruned_and_younger_ones_still_stop_a_redelivery(
    scratch_schema: tuple[str, Pool],
) -> None:
    _, pool = scratch_schema
    old = [uuid.uuid4() for _ in range(25)]
    young = [uuid.uuid4() for _ in range(5)]
    await handled(pool, old, days_ago=46)
    await handled(pool, young, days_ago=44)

    assert await prune_processed(pool, HORIZON, chunk=7) == 25
    assert await pool.fetchval("SELECT count(*) FROM processed_events") == 5
    # Inside the horizon a redelivery is still known, and changes nothing.
    assert await first_of(pool, young) == set()
    # Past it the event is forgotten: what the horizon is documented to mean.
    assert await first_of(pool, old[:3]) == set(old[:3])
    assert await prune_processed(pool, HORIZON, chunk=7) == 0


async def test_the_outbox_relay_prunes_its_schemas_inbox_while_it_runs(
    scratch_schema: tuple[str, Pool], kafka_admin: KafkaAccess
) -> None:
    schema, pool = scratch_schema
    old, young = [uuid.uuid4() for _ in range(10)], [uuid.uuid4() for _ in range(4)]
    await handled(pool, old, days_ago=50)
    await handled(pool, young, days_ago=1)
    relay = OutboxRelay(
        pool,
        schema=schema,
        kafka=kafka_admin,
        relay_id=f"test-{uuid.uuid4().hex}",
        keep_processed=HORIZON,
        prune_every=0.0,
        poll_interval=0.1,
    )
    running = asyncio.create_task(relay.run())
    try:

        async def only_the_young_left() -> bool:
            left = await pool.fetch("SELECT event_id FROM processed_events")
            return {row["event_id"] for row in left} == set(young)

        await eventually(only_the_young_left, timeout=30)
    finally:
        await relay.stop()
        await running
