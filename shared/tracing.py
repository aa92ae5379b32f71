"""OpenTelemetry tracing whose traces continue across Kafka.

A producer injects W3C trace context (`traceparent`, `tracestate`) into the record
headers; a consumer extracts it and starts its span as a child, so one trace spans the
HTTP request, the outbox, the relay and every consumer downstream. Span attributes follow
the OpenTelemetry messaging conventions.

HTTP server spans are FastAPI's own (its built-in telemetry); database spans are the
OpenTelemetry contrib instrumentation of asyncpg, switched on only when spans are
exported (statements without their parameters: no personal data in a trace).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, Span, SpanContext, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

Headers = Sequence[tuple[str, bytes]]

_PROPAGATOR = TraceContextTextMapPropagator()
_TRACE_HEADERS = frozenset({"traceparent", "tracestate"})

tracer = trace.get_tracer("panjereh")


class RecordWhenExported(Sampler):
    """`ParentBased(ALWAYS_ON)` once spans have somewhere to go, and nothing recorded before.

    A recorded span that no processor exports is pure cost (a good part of a small
    request's CPU). Unrecorded spans still have trace and span ids, so logs and Kafka
    headers carry the trace either way; their flag says "not sampled", so downstream
    services follow the root's decision, as OpenTelemetry intends: turn export on
    everywhere to see whole traces. `OTEL_TRACES_SAMPLER`, when set, overrides this.
    """

    def __init__(self) -> None:
        self.exporting = False
        self._when_exporting = ParentBased(ALWAYS_ON)

    def should_sample(
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        if not self.exporting:
            return SamplingResult(Decision.DROP)
        return self._when_exporting.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return "RecordWhenExported"


_SAMPLER = RecordWhenExported()


def otlp_headers(text: str) -> dict[str, str]:
    """`name=value,name=value` (as OTEL_EXPORTER_OTLP_HEADERS spells them) as a mapping."""
    headers: dict[str, str] = {}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        name, separator, value = pair.partition("=")
        if not separator or not name.strip():
            raise ValueError(f"an OTLP header is name=value, not {pair!r}")
        headers[name.strip()] = value.strip()
    return headers


def otlp_processor(endpoint: str, headers: str = "") -> SpanProcessor:
    """Finished spans batched to an OTLP/HTTP collector at `endpoint`."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return BatchSpanProcessor(
        OTLPSpanExporter(endpoint=endpoint, headers=otlp_headers(headers), timeout=10)
    )


def configure_tracing(
    service: str,
    exporter: str = "none",
    processors: Sequence[SpanProcessor] = (),
    *,
    otlp_endpoint: str = "",
    otlp_headers_text: str = "",
) -> TracerProvider:
    """Install the process-wide tracer provider, once; later calls add processors."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        provider = current
    else:
        sampler = None if os.environ.get("OTEL_TRACES_SAMPLER") else _SAMPLER
        provider = TracerProvider(
            resource=Resource.create({"service.name": service}), sampler=sampler
        )
        if exporter == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
            _SAMPLER.exporting = True
        elif exporter == "otlp":
            provider.add_span_processor(otlp_processor(otlp_endpoint, otlp_headers_text))
            _SAMPLER.exporting = True
        trace.set_tracer_provider(provider)
    for processor in processors:
        provider.add_span_processor(processor)
        _SAMPLER.exporting = True
    if _SAMPLER.exporting:
        instrument_database()
    return provider


def instrument_database() -> None:
    """A CLIENT span for each asyncpg statement, from now on in this process (once)."""
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    instrumentor = AsyncPGInstrumentor(capture_parameters=False)  # type: ignore[no-untyped-call]
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


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


def producer_headers(
    topic: str, event_id: str, parent: otel_context.Context | None = None
) -> list[tuple[str, bytes]]:
    """The trace headers of one event being created: those of a PRODUCER span for it
    (`producing`), a child of `parent`, else of the current context.

    While spans are not recorded (nothing exports), the same ids come without building
    the span: the parent's trace, a new span id, "not sampled". Building an unrecorded span
    and its context was a third of the cost of writing an outbox row.
    """
    if _records_spans():
        token = otel_context.attach(parent) if parent is not None else None
        try:
            with producing(topic, event_id):
                return trace_headers()
        finally:
            if token is not None:
                otel_context.detach(token)
    return _unrecorded_child_headers(trace.get_current_span(parent).get_span_context())


_IDS = RandomIdGenerator()


def _records_spans() -> bool:
    """Whether a span started now may be recorded: unless this module's sampler decides,
    and decides against (`RecordWhenExported` before anything exports)."""
    provider = trace.get_tracer_provider()
    return not (
        isinstance(provider, TracerProvider)
        and provider.sampler is _SAMPLER
        and not _SAMPLER.exporting
    )


def _unrecorded_child_headers(parent: SpanContext) -> list[tuple[str, bytes]]:
    """What the W3C propagator injects for a child of `parent` that `RecordWhenExported`
    drops (a new trace when `parent` is no span): no `tracestate`, as a dropped span
    keeps none."""
    trace_id = parent.trace_id if parent.is_valid else _IDS.generate_trace_id()
    span_id = _IDS.generate_span_id()
    return [("traceparent", f"00-{trace_id:032x}-{span_id:016x}-00".encode())]


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
    headers: Headers | None,
    *,
    topic: str,
    partition: int,
    offset: int,
    group: str,
    context: otel_context.Context | None = None,
) -> Iterator[Span]:
    """A CONSUMER span for processing one record, a child of its producer's span (in
    `context`, when given: the record's delivery context, which carries more)."""
    with tracer.start_as_current_span(
        f"{topic} process",
        context=context if context is not None else context_from(headers),
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
