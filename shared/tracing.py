"""OpenTelemetry tracing whose traces continue across Kafka.

A producer injects W3C trace context (`traceparent`, `tracestate`) into the record
headers; a consumer extracts it and starts its span as a child, so one trace spans the
HTTP request, the outbox, the relay and every consumer downstream. Span attributes follow
the OpenTelemetry messaging conventions.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

Headers = Sequence[tuple[str, bytes]]

_PROPAGATOR = TraceContextTextMapPropagator()
_TRACE_HEADERS = frozenset({"traceparent", "tracestate"})

tracer = trace.get_tracer("panjereh")


def configure_tracing(
    service: str, exporter: str = "none", processors: Sequence[SpanProcessor] = ()
) -> TracerProvider:
    """Install the process-wide tracer provider, once; later calls add processors."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        provider = current
    else:
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        if exporter == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        trace.set_tracer_provider(provider)
    for processor in processors:
        provider.add_span_processor(processor)
    return provider


def trace_headers() -> list[tuple[str, bytes]]:
    """The current trace context as Kafka headers (empty outside any span)."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return [(name, value.encode()) for name, value in carrier.items()]


def context_from(headers: Headers | None) -> otel_context.Context:
    carrier = {
        name: value.decode("latin-1")
        for name, value in headers or ()
        if name in _TRACE_HEADERS and value is not None
    }
    return _PROPAGATOR.extract(carrier)


@contextmanager
def producing(topic: str, event_id: str) -> Iterator[Span]:
    """A PRODUCER span for creating one event; inject `trace_headers()` inside it."""
    with tracer.start_as_current_span(
        f"{topic} publish",
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "publish",
            "messaging.destination.name": topic,
            "messaging.message.id": event_id,
        },
    ) as span:
        yield span


@contextmanager
def consuming(
    headers: Headers | None, *, topic: str, partition: int, offset: int, group: str
) -> Iterator[Span]:
    """A CONSUMER span for processing one record, a child of its producer's span."""
    with tracer.start_as_current_span(
        f"{topic} process",
        context=context_from(headers),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.destination.name": topic,
            "messaging.destination.partition.id": str(partition),
            "messaging.kafka.offset": offset,
            "messaging.consumer.group.name": group,
        },
    ) as span:
        yield span
