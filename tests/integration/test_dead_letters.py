"""Dead letters as a tool, on the real broker and database: a handler breaks, its records
are dead-lettered; the platform team lists and shows them, fixes the handler, replays
them, and the state counts each once, however often they are replayed.

The consumer is the platform's own (`EventConsumer`, the services' dispatcher and inbox
on a schema of its own); the tool is `infra/dead_letters.py`, as `panjereh dlq` and the
access manager's operator routes use it.
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from infra.dead_letters import (
    REPLAYED_FROM,
    chosen,
    counts,
    operator_routes,
    read_dead_letters,
    replay,
)
from shared.db import Pool
from shared.envelope import Envelope
from shared.events.platform import ServiceStarted
from shared.http import install_problem_handlers
from shared.kafka_access import KafkaAccess
from shared.registry import decode
from shared.runtime import dispatcher
from tests.integration.exchange.helpers import eventually
from tests.integration.test_consumer import DLQ, TOPIC, consuming, publish_all, started

pytestmark = pytest.mark.integration

EVENTS = 12
OPERATOR = "an-operators-secret-for-the-dead-letter-routes"
HORIZON = timedelta(days=45)


async def ours(kafka: KafkaAccess, run: str, count: int) -> list[Any]:
    """This test's dead letters (their reasons name the run), once there are `count`."""
    letters: list[Any] = []

    async def enough() -> bool:
        letters[:] = chosen(await read_dead_letters(kafka, [DLQ]), reason=run)
        return len(letters) >= count

    await eventually(enough, timeout=60)
    return letters


async def test_a_broken_handlers_records_are_listed_shown_and_replayed_once_fixed_counting_once(
    kafka_admin: KafkaAccess,
    scratch_schema: tuple[str, Pool],
    credentials_file: Callable[[str], str],
    admin_database_url: str,
) -> None:
    _, pool = scratch_schema
    await pool.execute("CREATE TABLE starts (service text PRIMARY KEY, count int NOT NULL)")
    run, group = uuid.uuid4().hex, f"test-{uuid.uuid4().hex}"
    events = [started(run, f"start-{index}") for index in range(EVENTS)]
    failure: list[str] = [f"the starts table is away ({run})"]
    delivered: list[uuid.UUID] = []

    async def count_start(envelope: Envelope[Any], connection: Any) -> None:
        if envelope.subject != run:
            return
        if failure:
            raise RuntimeError(failure[0])
        await connection.execute(
            "INSERT INTO starts VALUES ($1, 1)"
            " ON CONFLICT (service) DO UPDATE SET count = starts.count + 1",
            envelope.payload.instance,
        )

    dispatch = dispatcher(pool, group, {ServiceStarted: [count_start]})

    async def handle(envelope: Envelope[Any]) -> None:
        try:
            await dispatch(envelope)
        finally:
            if envelope.subject == run:
                delivered.append(envelope.id)  # every delivery, whatever the inbox says

    dead_lettered_before = dead_letters_counted()
    async with consuming(kafka_admin, handle, group):
        await publish_all(kafka_admin, events)
        letters = await ours(kafka_admin, run, EVENTS)
        # Counted for Prometheus by the topic they came from and the reason's kind, and
        # each retried twice before that (three attempts).
        await counted_at(dead_lettered_before + EVENTS)
        assert (
            REGISTRY.get_sample_value(
                "panjereh_handler_retries_total", {"group": group, "cause": "failure"}
            )
            == 2 * EVENTS
        )

        # Listed by reason, shown with the original bytes.
        [row] = counts(letters)
        assert (row.topic, row.count) == (DLQ, EVENTS)
        assert row.reason == f"handler failed 3 times: RuntimeError('{failure[0]}')"
        by_id = {event.id: event for event in events}
        for letter in letters:
            assert letter.source_topic == TOPIC.value
            assert letter.consumer == group
            original = decode(letter.value)
            assert letter.value == by_id[original.id].to_bytes()

        # Replayed while still broken (differently): each goes back with its new reason.
        failure[0] = f"the starts table is still away ({run})"
        assert await replay(kafka_admin, letters) == EVENTS
        again = await ours(kafka_admin, failure[0], EVENTS)
        assert len(again) == EVENTS
        await counted_at(dead_lettered_before + 2 * EVENTS)
        assert {dict(letter.original_headers)[REPLAYED_FROM].decode() for letter in again} == {
            letter.address for letter in letters
        }

        # Fixed, then replayed twice: each start counts once.
        failure.clear()
        before = len(delivered)
        assert await replay(kafka_admin, letters) == EVENTS
        assert await replay(kafka_admin, letters) == EVENTS

        async def all_delivered() -> bool:
            return len(delivered) >= before + 2 * EVENTS

        await eventually(all_delivered, timeout=60)
    rows = await pool.fetch("SELECT service, count FROM starts ORDER BY service")
    assert {row["service"]: row["count"] for row in rows} == {
        f"start-{index}": 1 for index in range(EVENTS)
    }

    # The command operators run says the same.
    listed = await asyncio.to_thread(
        subprocess.run,
        [str(Path(sys.executable).parent / "panjereh"), "dlq", "list", TOPIC.value],
        env={
            **os.environ,
            "PANJEREH_KAFKA_CREDENTIALS_FILE": credentials_file("admin"),
            "PANJEREH_DATABASE_URL": admin_database_url,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    [line] = [line for line in listed.stdout.splitlines() if run in line and "still" not in line]
    assert f"{DLQ}  {EVENTS:>6}  oldest" in line


async def test_the_operator_routes_need_the_operators_secret_and_replay_by_reason(
    kafka_admin: KafkaAccess,
) -> None:
    run = uuid.uuid4().hex
    group = f"test-{uuid.uuid4().hex}"
    event = started(run, "refused")

    async def refuse(envelope: Envelope[Any]) -> None:
        if envelope.subject == run:
            raise RuntimeError(f"refused on purpose ({run})")

    async with consuming(kafka_admin, refuse, group):
        await publish_all(kafka_admin, [event])
        [letter] = await ours(kafka_admin, run, 1)

    # The letter says when its original reached the broker: its replay is judged by it.
    assert letter.original_at is not None
    assert letter.original_at <= letter.at
    operator = {"authorization": f"Bearer {OPERATOR}"}
    async with operator_client(kafka_admin, HORIZON) as http:
        refused = await http.get("/operator/dead-letters", headers={"authorization": "Bearer x"})
        assert refused.status_code == 401
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert (await http.get("/operator/dead-letters")).status_code == 401

        listed = await http.get("/operator/dead-letters", params={"topic": DLQ}, headers=operator)
        assert listed.status_code == 200
        [row] = [row for row in listed.json() if run in row["reason"]]
        assert row["count"] == 1

        path = f"/operator/dead-letters/{DLQ}/{letter.partition}/{letter.offset}"
        shown = await http.get(path, headers=operator)
        assert shown.status_code == 200
        assert base64.b64decode(shown.json()["value_base64"]) == event.to_bytes()
        assert shown.json()["reason"] == letter.reason
        beyond = f"/operator/dead-letters/{DLQ}/{letter.partition}/{10**12}"
        assert (await http.get(beyond, headers=operator)).status_code == 404

        unknown = await http.get(
            "/operator/dead-letters", params={"topic": "nope"}, headers=operator
        )
        assert unknown.status_code == 404

        replayed = await http.post(
            f"/operator/dead-letters/{DLQ}/replay", json={"reason": run}, headers=operator
        )
        assert replayed.status_code == 200
        assert replayed.json() == {
            "topic": DLQ,
            "replayed": 1,
            "refused_past_dedup_horizon": 0,
        }
        naive = await http.post(
            f"/operator/dead-letters/{DLQ}/replay",
            json={"since": "2026-01-01T00:00:00"},
            headers=operator,
        )
        assert naive.status_code == 422  # a time without its zone is refused, not guessed

    # With a horizon the original is already past, the consumers that handled it would no
    # longer know it: it is refused, not replayed.
    async with operator_client(kafka_admin, timedelta(0)) as http:
        refused_late = await http.post(
            f"/operator/dead-letters/{DLQ}/replay", json={"reason": run}, headers=operator
        )
        assert refused_late.json() == {
            "topic": DLQ,
            "replayed": 0,
            "refused_past_dedup_horizon": 1,
        }


@asynccontextmanager
async def operator_client(
    kafka: KafkaAccess, horizon: timedelta
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the access manager's operator routes with this dedup horizon."""
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(operator_routes(kafka, OPERATOR, horizon))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://access") as http:
        yield http


def dead_letters_counted() -> float:
    """`panjereh_dead_letters_total` of the test topic's records whose handler kept failing."""
    counted = REGISTRY.get_sample_value(
        "panjereh_dead_letters_total", {"topic": TOPIC.value, "reason": "handler_failed"}
    )
    return counted or 0.0


async def counted_at(expected: float) -> None:
    """Wait for the count: a letter is counted just after the broker has it, so a reader
    may see the letter a moment before."""

    async def reached() -> bool:
        return dead_letters_counted() >= expected

    await eventually(reached, timeout=10)
    assert dead_letters_counted() == expected
