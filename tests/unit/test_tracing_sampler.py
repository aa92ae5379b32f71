"""Spans are recorded only once they have somewhere to go; the trace travels either way."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import use_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.tracing import RecordWhenExported


def test_nothing_is_recorded_before_anything_exports_but_the_trace_still_propagates() -> None:
    sampler = RecordWhenExported()
    provider = TracerProvider(sampler=sampler)
    span = provider.get_tracer("t").start_span("request")
    assert not span.is_recording()
    context = span.get_span_context()
    assert context.is_valid
    assert not context.trace_flags.sampled

    carrier: dict[str, str] = {}
    with use_span(span, end_on_exit=True):
        TraceContextTextMapPropagator().inject(carrier)
    assert carrier["traceparent"].split("-")[1] == format(context.trace_id, "032x")


def test_once_spans_are_exported_every_root_is_recorded_and_children_follow_their_parent() -> None:
    sampler = RecordWhenExported()
    provider = TracerProvider(sampler=sampler)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    sampler.exporting = True
    tracer = provider.get_tracer("t")

    with tracer.start_as_current_span("request"), tracer.start_as_current_span("publish"):
        pass
    assert [s.name for s in exporter.get_finished_spans()] == ["publish", "request"]

    verdict = sampler.should_sample(None, trace_id=1, name="root")
    assert verdict.decision == Decision.RECORD_AND_SAMPLE
