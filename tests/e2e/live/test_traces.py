"""One trace, across processes, reaches the collector whole: an operator's HTTP request to
the catalog, the catalog's database statements, its outbox relay publishing the event to
Kafka, and the exchange consuming it on the other side, with its own statements."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from infra.platform import LocalPlatform
from shared.topics import Topic
from tests.e2e.live.conftest import bearer
from tests.otlp import Collector
from tests.slots import e2e_ports

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

PORTS = e2e_ports()


def attribute(span: Span, key: str) -> str | None:
    for found in span.attributes:
        if found.key == key:
            value: Any = found.value
            return str(getattr(value, value.WhichOneof("value")))
    return None


async def test_an_operators_request_is_one_trace_through_the_outbox_kafka_and_the_exchange(
    platform: LocalPlatform, collector: Collector, key: ECKey
) -> None:
    # The operator's own system starts the trace: its traceparent, sampled.
    trace_id, parent_id = secrets.randbits(128) or 1, secrets.randbits(64) or 1
    traceparent = f"00-{trace_id:032x}-{parent_id:016x}-01"
    code = f"traced-{uuid.uuid4().hex[:8]}"
    body = {"code": code, "name_fa": "دستگاه ردیابی", "name_en": "Traced agency"}
    headers = bearer(key, "ito", "catalog:write") | {"traceparent": traceparent}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORTS.catalog}") as client:
        deadline = time.monotonic() + 60
        while True:  # until the catalog has read the key just published (401 before)
            response = await client.post("/agencies", json=body, headers=headers)
            if response.status_code != 401 or time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
    assert response.status_code == 201, response.text

    def whole() -> bool:
        # Each process exports on its own schedule: wait for every part, not the last.
        seen = {(service, span.kind) for service, span in collector.spans_of(trace_id)}
        return {
            ("catalog", Span.SPAN_KIND_SERVER),
            ("catalog", Span.SPAN_KIND_CLIENT),
            ("catalog", Span.SPAN_KIND_PRODUCER),
            ("exchange", Span.SPAN_KIND_CONSUMER),
            ("exchange", Span.SPAN_KIND_CLIENT),
        } <= seen

    deadline = time.monotonic() + 90
    while not whole() and time.monotonic() < deadline:
        await asyncio.sleep(1)
    spans = collector.spans_of(trace_id)
    by_id = {span.span_id: (service, span) for service, span in spans}

    def of(service: str, kind: int) -> list[Span]:
        return [s for name, s in spans if name == service and s.kind == kind]

    # The catalog's HTTP server span continues the operator's trace.
    [server] = of("catalog", Span.SPAN_KIND_SERVER)
    assert server.parent_span_id == parent_id.to_bytes(8, "big")
    assert "POST" in server.name
    # Its statements, as the asyncpg instrumentation records them, without parameters.
    statements = of("catalog", Span.SPAN_KIND_CLIENT)
    assert any(attribute(s, "db.system") == "postgresql" for s in statements), statements
    # The relay's publish of the agency's record, a child of the request's context.
    [published] = [
        s
        for s in of("catalog", Span.SPAN_KIND_PRODUCER)
        if attribute(s, "messaging.destination.name") == Topic.CATALOG_AGENCIES.value
    ]
    # The exchange's projection of it, a child of that publish, with statements of its own.
    consumed = [
        s
        for s in of("exchange", Span.SPAN_KIND_CONSUMER)
        if attribute(s, "messaging.destination.name") == Topic.CATALOG_AGENCIES.value
    ]
    assert consumed, [(service, s.name) for service, s in spans]
    assert all(s.parent_span_id == published.span_id for s in consumed)
    exchange_statements = [
        s for s in of("exchange", Span.SPAN_KIND_CLIENT) if s.parent_span_id in by_id
    ]
    assert exchange_statements, "the exchange's handler wrote nothing under the trace"
    # Every span but the first hangs off another span of the same trace.
    orphans = [s.name for _, s in spans if s.parent_span_id not in by_id and s is not server]
    assert not orphans, orphans
