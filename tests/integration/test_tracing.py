"""One trace spans the request that wrote an event and the consumer that handled it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared.db import Pool
from shared.envelope import Envelope
from shared.events.platform import ServiceStarted
from shared.kafka import EventConsumer
from shared.kafka_access import KafkaAccess
from shared.outbox import OutboxRelay, enqueue
from shared.topics import Topic
from shared.tracing import configure_tracing

pytestmark = pytest.mark.integration


async def test_one_trace_spans_the_producer_the_outbox_and_the_consumer(
    kafka_admin: KafkaAccess, scratch_schema: tuple[str, Pool]
) -> None:
    exporter = InMemorySpanExporter()
    configure_tracing("tests", processors=[SimpleSpanProcessor(exporter)])
    schema, pool = scratch_schema
    run = uuid.uuid4().hex
    envelope = Envelope.wrap(
        ServiceStarted(service=run, release="test", instance="1"), source="tests", subject=run
    )

    with trace.get_tracer("tests").start_as_current_span("POST /register") as request_span:
        async with pool.acquire() as connection, connection.transaction():
            await enqueue(connection, envelope)
    trace_id = request_span.get_span_context().trace_id

    relay = OutboxRelay(pool, schema=schema, kafka=kafka_admin, relay_id=f"test-{run}")
    await relay.publish_pending()
    await relay.stop()
    await relay.run()

    seen = asyncio.Event()

    async def handler(received: Envelope[Any]) -> None:
        if received.id == envelope.id:
            seen.set()

    consumer = EventConsumer(
        group=f"test-{run}",
        topics=[Topic.PLATFORM_LIFECYCLE],
        handler=handler,
        kafka=kafka_admin,
    )
    task = asyncio.create_task(consumer.run())
    await asyncio.wait_for(seen.wait(), timeout=60)
    await consumer.stop()
    await task

    spans = exporter.get_finished_spans()
    [producer_span] = [
        s
        for s in spans
        if s.kind == SpanKind.PRODUCER
        and s.attributes is not None
        and s.attributes.get("messaging.message.id") == str(envelope.id)
    ]
    [consumer_span] = [
        s for s in spans if s.kind == SpanKind.CONSUMER and s.context.trace_id == trace_id
    ]
    assert producer_span.context.trace_id == trace_id
    assert producer_span.parent is not None
    assert producer_span.parent.span_id == request_span.get_span_context().span_id
    assert consumer_span.parent is not None
    assert consumer_span.parent.span_id == producer_span.context.span_id
    assert consumer_span.attributes is not None
    assert consumer_span.attributes["messaging.destination.name"] == Topic.PLATFORM_LIFECYCLE.value
