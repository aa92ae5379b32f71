"""One trace spans the request that wrote an event and the consumer that handled it, and
reaches an OTLP collector whole."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan
from opentelemetry.sdk.trace import TracerProvider
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
from shared.tracing import configure_tracing, otlp_processor
from tests.otlp import Collector, collecting

pytestmark = pytest.mark.integration


async def request_outbox_kafka_consumer(
    kafka_admin: KafkaAccess, scratch_schema: tuple[str, Pool]
) -> tuple[Envelope[ServiceStarted], trace.SpanContext]:
    """A request span writes an event to the outbox, the relay publishes it, a consumer
    handles it; the event and the request span's context."""
    schema, pool = scratch_schema
    run = uuid.uuid4().hex
    envelope = Envelope.wrap(
        ServiceStarted(service=run, release="test", instance="1"), source="tests", subject=run
    )

    with trace.get_tracer("tests").start_as_current_span("POST /register") as request_span:
        async with pool.acquire() as connection, connection.transaction():
            await enqueue(connection, envelope)

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
    return envelope, request_span.get_span_context()


async def test_one_trace_spans_the_producer_the_outbox_and_the_consumer(
    kafka_admin: KafkaAccess, scratch_schema: tuple[str, Pool]
) -> None:
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    configure_tracing("tests", processors=[processor])
    try:
        envelope, request = await request_outbox_kafka_consumer(kafka_admin, scratch_schema)
    finally:
        processor.shutdown()  # the rest of the session's spans are kept nowhere
    trace_id = request.trace_id

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
    assert producer_span.parent.span_id == request.span_id
    assert consumer_span.parent is not None
    assert consumer_span.parent.span_id == producer_span.context.span_id
    assert consumer_span.attributes is not None
    assert consumer_span.attributes["messaging.destination.name"] == Topic.PLATFORM_LIFECYCLE.value


@pytest.fixture
def collector() -> Iterator[Collector]:
    with collecting() as server:
        yield server


async def test_the_otlp_exporter_sends_the_whole_trace_to_a_collector_with_its_headers(
    kafka_admin: KafkaAccess, scratch_schema: tuple[str, Pool], collector: Collector
) -> None:
    processor = otlp_processor(collector.endpoint, "x-api-key=collector-secret, x-tenant=panjereh")
    configure_tracing("tests", processors=[processor])
    try:
        envelope, request = await request_outbox_kafka_consumer(kafka_admin, scratch_schema)
        assert processor.force_flush(10_000)
    finally:
        processor.shutdown()  # nothing more goes to a collector that is about to stop
    spans = collector.spans_of(request.trace_id)
    kinds = {span.kind for _, span in spans}
    assert {"POST /register"} <= {span.name for _, span in spans}
    assert {OtlpSpan.SPAN_KIND_PRODUCER, OtlpSpan.SPAN_KIND_CONSUMER} <= kinds
    # Named as the process's provider names it (the first service of the session to
    # install one, in a whole suite run).
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    assert {service for service, _ in spans} == {provider.resource.attributes["service.name"]}
    [produced] = [s for _, s in spans if s.kind == OtlpSpan.SPAN_KIND_PRODUCER]
    assert any(a.value.string_value == str(envelope.id) for a in produced.attributes)
    headers = [sent for sent, _ in collector.exports]
    assert all(h["x-api-key"] == "collector-secret" for h in headers)
    assert all(h["x-tenant"] == "panjereh" for h in headers)
    assert all(h["content-type"] == "application/x-protobuf" for h in headers)
