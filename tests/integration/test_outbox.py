"""The outbox on the real broker and database: nothing lost, nothing published twice.

The relay runs as a real process here, and is killed with SIGKILL: at the worst moment
(after Kafka committed a batch, before Postgres recorded it) and at random moments while
events keep arriving. Several relays run on one outbox, as in the processes of one
service: one holds the lease and publishes, and a standby takes over when it stops, dies,
loses its database connection or is fenced. Readers use read_committed, as every consumer
of the platform does.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from infra.platform.provision import InitReport, ensure_topics
from shared.db import Pool, create_pool
from shared.envelope import Envelope
from shared.events.catalog import DeliveryReported
from shared.events.platform import ServiceStarted
from shared.kafka_access import KafkaAccess
from shared.outbox import LEASE_KEY, Change, OutboxRelay, enqueue, enqueue_many
from shared.topics import Topic, channel
from tests.integration.kafka_helpers import header, read_all
from tests.polling import eventually

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TOPIC = Topic.PLATFORM_LIFECYCLE.value


def event(run: str, number: int) -> Envelope[ServiceStarted]:
    payload = ServiceStarted(service=run, release="test", instance=str(number))
    return Envelope.wrap(payload, source="tests", subject=f"{run}-{number % 7}")


def delivery(agency: str) -> Envelope[DeliveryReported]:
    """A delivery an agency reported over HTTP, which the catalog passes on to the
    agency's own channel."""
    now = datetime.now(UTC)
    report = DeliveryReported(
        report_id=uuid.uuid4(),
        agency=agency,
        service_id=f"{agency}.a-service",
        channel="online",
        province="IR-23",
        started_at=now - timedelta(minutes=2),
        finished_at=now - timedelta(minutes=1),
        outcome="completed",
    )
    return Envelope.wrap(report, source="tests", subject=report.service_id)


async def write_events(
    pool: Pool, run: str, numbers: range, per_transaction: int = 10
) -> list[str]:
    ids: list[str] = []
    batch = list(numbers)
    for start in range(0, len(batch), per_transaction):
        async with pool.acquire() as connection, connection.transaction():
            for number in batch[start : start + per_transaction]:
                envelope = event(run, number)
                await enqueue(connection, envelope)
                ids.append(str(envelope.id))
    return ids


async def published_ids(
    kafka: KafkaAccess, expected: set[str], *, unexpected: frozenset[str] = frozenset()
) -> Counter[str]:
    """How often each of `expected` (awaited) and `unexpected` (counted, not awaited: it
    should never come) was published, read to the topic's end once `expected` all came."""
    records = await read_all(
        kafka,
        TOPIC,
        until=lambda rs: expected <= {header(r, "event-id") for r in rs},
        timeout=60,
    )
    wanted = expected | unexpected
    return Counter(found for r in records if (found := header(r, "event-id")) in wanted)


async def assert_each_published_once(kafka: KafkaAccess, ids: Iterable[str]) -> None:
    """Every one of `ids` on the topic exactly once: none lost, none published twice."""
    expected = set(ids)
    counts = await published_ids(kafka, expected)
    assert set(counts) == expected, f"{len(expected - set(counts))} events were lost"
    assert [i for i, n in counts.items() if n > 1] == [], "an event was published twice"


def start_relay(
    kafka: KafkaAccess, schema: str, relay_id: str, database_url: str, failpoints: str = ""
) -> subprocess.Popen[bytes]:
    """`python -m shared.outbox` on a schema; `database_url` must be able to reach it."""
    env = {
        **os.environ,
        **kafka.environment(),
        "PANJEREH_FAILPOINTS": failpoints,
        "PANJEREH_DATABASE_URL": database_url,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "shared.outbox", schema, "--relay-id", relay_id],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def unpublished(pool: Pool) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
    return count


async def wait_until_drained(pool: Pool, timeout: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await unpublished(pool) and loop.time() < deadline:
        await asyncio.sleep(0.2)
    assert await unpublished(pool) == 0, "the relay did not publish everything in time"


def relay_of(pool: Pool, schema: str, kafka: KafkaAccess, run: str) -> OutboxRelay:
    """A relay of the run's outbox, as each process of one service has: the same id."""
    return OutboxRelay(
        pool, schema=schema, kafka=kafka, relay_id=f"test-{run}", standby_interval=0.2
    )


@asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[OutboxRelay]:
    """The relay's `run()` for the block; stopped after it, and must end then."""
    task = asyncio.create_task(relay.run())
    try:
        yield relay
    finally:
        await relay.stop()
        await asyncio.wait_for(task, 30)


@asynccontextmanager
async def another_process_pool(admin_database_url: str, schema: str) -> AsyncIterator[Pool]:
    """A pool of the schema's own, as a second process of the service would have."""
    pool = await create_pool(admin_database_url, schema, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


async def lease_holder(pool: Pool, schema: str) -> int | None:
    """The server process of the connection holding the schema's relay lease, if any."""
    pid: int | None = await pool.fetchval(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
        f" AND ((classid::bigint << 32) | objid::bigint) = ({LEASE_KEY})::bigint",
        schema,
    )
    return pid


@asynccontextmanager
async def queued_for_the_lease(
    admin_database_url: str, pool: Pool, schema: str
) -> AsyncIterator[asyncio.Task[str]]:
    """A connection of the test's own waiting for the schema's relay lease: Postgres
    hands the lease to it the moment its holder lets go, before any relay can try again.
    The task ends once it holds the lease, which it keeps until the block ends."""
    connection = await asyncpg.connect(admin_database_url)
    taken = asyncio.create_task(connection.execute(f"SELECT pg_advisory_lock({LEASE_KEY})", schema))
    try:
        waiting = (
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND pid = $1"
        )
        pid = connection.get_server_pid()
        while not await pool.fetchval(waiting, pid) and not taken.done():
            await asyncio.sleep(0.05)
        assert not taken.done(), "the lease was free: nobody to wait for"
        yield taken
    finally:
        connection.terminate()  # a closed session holds no lock
        await asyncio.gather(taken, return_exceptions=True)


async def test_committed_events_are_published_once_in_order_per_subject(
    scratch_schema: tuple[str, Pool], kafka_admin: KafkaAccess
) -> None:
    schema, pool = scratch_schema
    run = uuid.uuid4().hex
    ids = await write_events(pool, run, range(120))
    relay = OutboxRelay(
        pool,
        schema=schema,
        kafka=kafka_admin,
        relay_id=f"test-{run}",
        batch_size=50,
    )
    while await relay.publish_pending():
        pass
    await relay.stop()
    await relay.run()  # returns at once: stopped; closes the producer

    counts = await published_ids(kafka_admin, set(ids))
    assert set(counts) == set(ids)
    assert set(counts.values()) == {1}
    records = await read_all(kafka_admin, TOPIC)
    mine = [r for r in records if header(r, "event-id") in set(ids)]
    for subject in {r.key for r in mine}:
        numbers = [
            int(r.value.split(b'"instance":"')[1].split(b'"')[0]) for r in mine if r.key == subject
        ]
        assert numbers == sorted(numbers), "events of one subject arrived out of order"
    assert await unpublished(pool) == 0


async def test_an_event_rolled_back_with_its_state_is_never_published(
    scratch_schema: tuple[str, Pool], kafka_admin: KafkaAccess
) -> None:
    schema, pool = scratch_schema
    run = uuid.uuid4().hex
    rolled_back = event(run, 1)
    async with pool.acquire() as connection:
        transaction = connection.transaction()
        await transaction.start()
        await enqueue(connection, rolled_back)
        await transaction.rollback()  # the state change failed; its event goes with it
    kept = await write_events(pool, run, range(2, 3))
    relay = OutboxRelay(pool, schema=schema, kafka=kafka_admin, relay_id=f"test-{run}")
    await relay.publish_pending()
    await relay.stop()
    await relay.run()

    # The relay is done: once the later event is on the topic, the earlier one would be.
    counts = await published_ids(
        kafka_admin, set(kept), unexpected=frozenset({str(rolled_back.id)})
    )
    assert counts == Counter({kept[0]: 1})


async def test_enqueue_outside_a_transaction_is_refused(scratch_schema: tuple[str, Pool]) -> None:
    _, pool = scratch_schema
    async with pool.acquire() as connection:
        with pytest.raises(RuntimeError, match="inside the transaction"):
            await enqueue(connection, event("x", 1))


async def test_a_change_written_along_its_event_commits_and_rolls_back_with_it(
    scratch_schema: tuple[str, Pool],
) -> None:
    _, pool = scratch_schema
    await pool.execute("CREATE TABLE notes (id uuid PRIMARY KEY, said text NOT NULL)")
    kept, dropped = event("along", 1), event("along", 2)

    def noting(envelope: Envelope[ServiceStarted]) -> Change:
        return Change(
            "noted AS (INSERT INTO notes (id, said) VALUES ($1, $2))", (envelope.id, "hello")
        )

    async with pool.acquire() as connection, connection.transaction():
        await enqueue(connection, kept, along=noting(kept))
    async with pool.acquire() as connection:
        transaction = connection.transaction()
        await transaction.start()
        await enqueue(connection, dropped, along=noting(dropped))
        await transaction.rollback()

    notes = {row["id"] for row in await pool.fetch("SELECT id FROM notes")}
    events = {row["event_id"] for row in await pool.fetch("SELECT event_id FROM outbox")}
    assert notes == {kept.id}
    assert events == {kept.id}


async def test_a_guarded_change_writes_itself_and_its_events_only_if_its_guard_finds_a_row(
    scratch_schema: tuple[str, Pool],
) -> None:
    _, pool = scratch_schema
    await pool.execute("CREATE TABLE versions (name text PRIMARY KEY, version int NOT NULL)")
    await pool.execute("INSERT INTO versions VALUES ('thing', 1)")
    await pool.execute("CREATE TABLE notes (id uuid PRIMARY KEY)")

    def noting(envelope: Envelope[ServiceStarted], judged_on: int) -> Change:
        return Change(
            "moved AS (UPDATE versions SET version = version + 1"
            " WHERE name = 'thing' AND version = $2 RETURNING 1),"
            " noted AS (INSERT INTO notes (id) SELECT $1 FROM moved)",
            (envelope.id, judged_on),
            guard="moved",
        )

    first, stale = event("guard", 1), event("guard", 2)
    async with pool.acquire() as connection:
        # No transaction around them: each statement is atomic by itself.
        assert await enqueue(connection, first, along=noting(first, 1))
        assert not await enqueue(connection, stale, along=noting(stale, 1))

    assert {row["id"] for row in await pool.fetch("SELECT id FROM notes")} == {first.id}
    assert {row["event_id"] for row in await pool.fetch("SELECT event_id FROM outbox")} == {
        first.id
    }
    assert await pool.fetchval("SELECT version FROM versions") == 2


async def test_a_change_along_no_events_is_refused(scratch_schema: tuple[str, Pool]) -> None:
    _, pool = scratch_schema
    async with pool.acquire() as connection, connection.transaction():
        with pytest.raises(ValueError, match="at least one event"):
            await enqueue_many(connection, [], along=Change("x AS (SELECT 1)"))


async def test_relay_killed_after_kafka_commit_does_not_publish_again_on_restart(
    scratch_schema: tuple[str, Pool], kafka_admin: KafkaAccess, admin_database_url: str
) -> None:
    schema, pool = scratch_schema
    run = uuid.uuid4().hex
    relay_id = f"test-{run}"
    ids = await write_events(pool, run, range(30))

    crashing = start_relay(
        kafka_admin, schema, relay_id, admin_database_url, failpoints="outbox.after_kafka_commit"
    )
    assert await asyncio.to_thread(crashing.wait, 60) == -signal.SIGKILL
    # Kafka has the batch; Postgres was never told.
    assert await unpublished(pool) == 30

    restarted = start_relay(kafka_admin, schema, relay_id, admin_database_url)
    try:
        await wait_until_drained(pool)
    finally:
        restarted.terminate()
        await asyncio.to_thread(restarted.wait, 30)

    await assert_each_published_once(kafka_admin, ids)


async def test_a_starting_relay_reads_its_last_marker_and_stops_that_reader_with_no_fetch_due(
    scratch_schema: tuple[str, Pool], kafka_admin: KafkaAccess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A consumer stopped just as it sends a fetch can wait 30 s for the broker to close its
    TLS connection. The relay reads its last marker on every start, so that reader fetches
    only while it scans: it must stop with its partition paused, and still find the marker.
    """
    schema, pool = scratch_schema
    run = uuid.uuid4().hex
    relay_id = f"test-{run}"
    ids = await write_events(pool, run, range(5))
    first = OutboxRelay(pool, schema=schema, kafka=kafka_admin, relay_id=relay_id)
    assert await first.publish_pending() == 5
    await first.stop()
    await first.run()
    # As after a crash between Kafka's commit and Postgres's stamp.
    await pool.execute("UPDATE outbox SET published_at = NULL")

    stopped: list[tuple[frozenset[TopicPartition], frozenset[TopicPartition]]] = []
    stop = AIOKafkaConsumer.stop

    async def recording_stop(consumer: AIOKafkaConsumer) -> None:
        stopped.append((frozenset(consumer.assignment()), frozenset(consumer.paused())))
        await stop(consumer)

    monkeypatch.setattr(AIOKafkaConsumer, "stop", recording_stop)
    successor = OutboxRelay(pool, schema=schema, kafka=kafka_admin, relay_id=relay_id)
    assert await successor.publish_pending() == 0, "the marker was missed: rows went out again"
    await successor.stop()
    await successor.run()
    monkeypatch.undo()

    marker_readers = [
        (assigned, paused)
        for assigned, paused in stopped
        if {tp.topic for tp in assigned} == {Topic.PLATFORM_OUTBOX_PROGRESS.value}
    ]
    assert len(marker_readers) == 1
    assigned, paused = marker_readers[0]
    assert paused == assigned
    assert await unpublished(pool) == 0
    counts = await published_ids(kafka_admin, set(ids))
    assert set(counts.values()) == {1}


async def test_relay_killed_at_random_moments_loses_and_duplicates_nothing(
    scratch_schema: tuple[str, Pool], kafka_admin: KafkaAccess, admin_database_url: str
) -> None:
    schema, pool = scratch_schema
    run = uuid.uuid4().hex
    relay_id = f"test-{run}"
    chance = random.Random(run)
    ids: list[str] = []
    for round_number in range(5):
        relay = start_relay(kafka_admin, schema, relay_id, admin_database_url)
        written = write_events(pool, run, range(round_number * 400, (round_number + 1) * 400))
        writer = asyncio.create_task(written)
        await asyncio.sleep(chance.uniform(0.5, 2.5))
        relay.send_signal(signal.SIGKILL)
        await asyncio.to_thread(relay.wait, 30)
        ids += await writer

    final = start_relay(kafka_admin, schema, relay_id, admin_database_url)
    try:
        await wait_until_drained(pool, timeout=120)
    finally:
        final.terminate()
        await asyncio.to_thread(final.wait, 30)

    counts = await published_ids(kafka_admin, set(ids))
    assert len(ids) == 2000
    assert set(counts) == set(ids), f"{len(set(ids) - set(counts))} events were lost"
    assert [i for i, n in counts.items() if n > 1] == [], "an event was published twice"


async def test_of_two_running_relays_one_publishes_and_the_other_stands_by(
    scratch_schema: tuple[str, Pool], kafka_admin: KafkaAccess, admin_database_url: str
) -> None:
    schema, pool = scratch_schema
    run = uuid.uuid4().hex
    ids: list[str] = []
    async with (
        another_process_pool(admin_database_url, schema) as other_pool,
        running(relay_of(pool, schema, kafka_admin, run)) as first,
        running(relay_of(other_pool, schema, kafka_admin, run)) as second,
    ):
        for round_number in range(3):
            numbers = range(round_number * 40, (round_number + 1) * 40)
            ids += await write_events(pool, run, numbers)
            await wait_until_drained(pool)
            assert [first.active, second.active].count(True) == 1
        standby = second if first.active else first
        assert standby.published == 0, "the standby published"

    await assert_each_published_once(kafka_admin, ids)


async def test_a_standby_takes_over_from_a_stopped_relay_and_publishes_what_follows_once(
    scratch_schema: tuple[str, Pool], kafka_admin: KafkaAccess, admin_database_url: str
) -> None:
    schema, pool = scratch_schema
    run = uuid.uuid4().hex
    first = relay_of(pool, schema, kafka_admin, run)
    async with another_process_pool(admin_database_url, schema) as other_pool:
        second = relay_of(other_pool, schema, kafka_admin, run)
        async with running(first):
            before = await write_events(pool, run, range(30))
            await wait_until_drained(pool)
            assert first.active
            async with running(second):
                await asyncio.sleep(1)  # a few standby rounds beside an active relay
                assert not second.active
                await first.stop()
                after = await write_events(pool, run, range(30, 60))
                await wait_until_drained(pool)
                assert second.active
                assert second.published == len(after)

    await assert_each_published_once(kafka_admin, before + after)


async def test_a_standby_takes_over_from_a_killed_relay_and_loses_and_duplicates_nothing(
    scratch_schema: tuple[str, Pool], kafka_admin: KafkaAccess, admin_database_url: str
) -> None:
    schema, pool = scratch_schema
    run = uuid.uuid4().hex
    chance = random.Random(run)
    killed = start_relay(kafka_admin, schema, f"test-{run}", admin_database_url)
    try:
        ids = await write_events(pool, run, range(20))
        await wait_until_drained(pool)  # the process holds the lease now
        standby = relay_of(pool, schema, kafka_admin, run)
        async with running(standby):
            writer = asyncio.create_task(write_events(pool, run, range(20, 1020)))
            await asyncio.sleep(chance.uniform(0.5, 1.5))
            assert not standby.active, "the standby took the lease from a live relay"
            assert standby.published == 0
            killed.send_signal(signal.SIGKILL)  # while events keep coming, most likely
            ids += await writer
            after = await write_events(pool, run, range(1020, 1040))
            ids += after
            await wait_until_drained(pool, timeout=120)
            assert standby.active
            assert standby.published >= len(after)
    finally:
        killed.kill()
        await asyncio.to_thread(killed.wait, 30)

    await assert_each_published_once(kafka_admin, ids)


async def test_a_relay_that_loses_its_lease_connection_publishes_nothing_until_it_leases_again(
    scratch_schema: tuple[str, Pool], kafka_admin: KafkaAccess, admin_database_url: str
) -> None:
    schema, pool = scratch_schema
    run = uuid.uuid4().hex
    relay = relay_of(pool, schema, kafka_admin, run)
    async with running(relay):
        before = await write_events(pool, run, range(5))
        await wait_until_drained(pool)
        holder = await lease_holder(pool, schema)
        assert holder is not None
        async with queued_for_the_lease(admin_database_url, pool, schema) as taken:
            # As if the relay's database connection broke: Postgres frees its lease.
            assert await pool.fetchval("SELECT pg_terminate_backend($1)", holder)
            await asyncio.wait_for(taken, 30)
            await eventually(lambda: not relay.active, timeout=30)
            during = await write_events(pool, run, range(5, 10))
            await asyncio.sleep(2)  # many standby rounds
            assert await unpublished(pool) == len(during), "published without the lease"
        await wait_until_drained(pool)
        assert relay.active

    await assert_each_published_once(kafka_admin, before + during)


@pytest.mark.allows_error_logs  # asyncio reports the fenced producer's unread errors
async def test_a_fenced_relay_stands_by_and_takes_the_lease_again_once_it_is_free(
    scratch_schema: tuple[str, Pool], kafka_admin: KafkaAccess, admin_database_url: str
) -> None:
    schema, pool = scratch_schema
    run = uuid.uuid4().hex
    relay = relay_of(pool, schema, kafka_admin, run)
    # Not running, so holding no lease: it only starts a producer with the same id.
    intruder = relay_of(pool, schema, kafka_admin, run)
    async with running(relay):
        before = await write_events(pool, run, range(3))
        await wait_until_drained(pool)
        assert relay.active
        async with queued_for_the_lease(admin_database_url, pool, schema) as taken:
            assert await intruder.publish_pending() == 0  # its producer fences the relay's
            during = await write_events(pool, run, range(3, 6))
            # The relay finds itself fenced as it publishes these, and gives the lease up.
            await asyncio.wait_for(taken, 30)
            await eventually(lambda: not relay.active, timeout=30)
            await asyncio.sleep(2)  # many standby rounds
            assert await unpublished(pool) == len(during), "published without the lease"
        await wait_until_drained(pool)
        assert relay.active
    await intruder.stop()
    await intruder.run()  # returns at once: stopped; closes the producer
    # aiokafka leaves the fenced producer's fatal error in futures nobody awaits; collect
    # them now so asyncio reports them within this test, which expects error logs.
    gc.collect()

    await assert_each_published_once(kafka_admin, before + during)


@pytest.mark.allows_error_logs  # aiokafka logs the missing topic as an error
async def test_rows_for_a_topic_not_made_yet_wait_and_hold_up_no_other_topic(
    scratch_schema: tuple[str, Pool], kafka_admin: KafkaAccess
) -> None:
    # An agency's channel is made once the catalog's record of the agency is out: a
    # delivery queued for that channel before then must not hold the record up.
    schema, pool = scratch_schema
    run = uuid.uuid4().hex
    agency = f"a{run[:12]}"
    before, after = event(run, 1), event(run, 2)
    reports = [delivery(agency) for _ in range(3)]
    async with pool.acquire() as connection, connection.transaction():
        await enqueue(connection, before)
        await enqueue_many(connection, reports)
        await enqueue(connection, after)
    relay = OutboxRelay(pool, schema=schema, kafka=kafka_admin, relay_id=f"test-{run}")
    try:
        assert await relay.publish_pending() == 2
        counts = await published_ids(kafka_admin, {str(before.id), str(after.id)})
        assert counts == {str(before.id): 1, str(after.id): 1}
        assert await unpublished(pool) == len(reports)

        await ensure_topics(kafka_admin, InitReport(), agencies=[agency])
        assert await relay.publish_pending() == len(reports)
    finally:
        await relay.stop()
        await relay.run()
    records = await read_all(
        kafka_admin,
        channel(Topic.AGENCY_DELIVERIES, agency),
        until=lambda rs: len(rs) >= len(reports),
    )
    # One service, one partition: in the order they were queued.
    assert [header(r, "event-id") for r in records] == [str(r.id) for r in reports]


async def test_published_rows_are_pruned_after_the_retention_and_pending_rows_never(
    scratch_schema: tuple[str, Pool], kafka_admin: KafkaAccess
) -> None:
    schema, pool = scratch_schema
    run = uuid.uuid4().hex
    await write_events(pool, run, range(0, 30))
    relay = OutboxRelay(
        pool,
        schema=schema,
        kafka=kafka_admin,
        relay_id=f"test-{run}",
        keep_published=timedelta(hours=1),
    )
    await relay.publish_pending()
    await relay.stop()
    await relay.run()
    # The oldest 20 were published two hours ago; then 5 more events wait, unpublished.
    await pool.execute(
        "UPDATE outbox SET published_at = now() - interval '2 hours'"
        " WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT 20)"
    )
    await write_events(pool, run, range(30, 35))

    assert await relay.prune_published(chunk=7) == 20
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL") == 10
    assert await unpublished(pool) == 5
    assert await relay.prune_published(chunk=7) == 0
