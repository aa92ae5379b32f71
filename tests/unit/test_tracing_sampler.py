"""Spans are recorded only once they have somewhere to go; the trace travels either way."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import INVALID_SPAN_CONTEXT, get_current_span, use_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.tracing import RecordWhenExported, _unrecorded_child_headers


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


def test_an_unrecorded_events_headers_are_those_of_a_dropped_child_span_of_its_parent() -> None:
    propagator = TraceContextTextMapPropagator()
    parent = propagator.extract(
        {
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
            "tracestate": "agency=ito",
        }
    )
    provider = TracerProvider(sampler=RecordWhenExported())
    by_the_sdk: dict[str, str] = {}
    with use_span(provider.get_tracer("t").start_span("publish", context=parent)):
        propagator.inject(by_the_sdk)

    ours = dict(_unrecorded_child_headers(get_current_span(parent).get_span_context()))

    version, trace_id, span_id, flags = ours["traceparent"].decode().split("-")
    assert [version, trace_id, flags] == [
        part for index, part in enumerate(by_the_sdk["traceparent"].split("-")) if index != 2
    ]
    assert trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert len(span_id) == 16
    assert span_id not in {"b7ad6b7169203331", "0" * 16}
    # A dropped span keeps no trace state, so neither does its record.
    assert set(ours) == set(by_the_sdk) == {"traceparent"}


def test_an_unrecorded_event_without_a_parent_starts_a_trace_of_its_own() -> None:
    first = dict(_unrecorded_child_headers(INVALID_SPAN_CONTEXT))
    second = dict(_unrecorded_child_headers(INVALID_SPAN_CONTEXT))
    _, trace_id, span_id, flags = first["traceparent"].decode().split("-")
    assert trace_id != "0" * 32
    assert span_id != "0" * 16
    assert flags == "00"
    assert first["traceparent"] != second["traceparent"]
    assert "tracestate" not in first
