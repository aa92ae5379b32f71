"""An OTLP/HTTP traces receiver on loopback, standing in for a collector in tests."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


class Collector(ThreadingHTTPServer):
    """An OTLP/HTTP traces receiver on loopback: what every export carried."""

    def __init__(self) -> None:
        self.exports: list[tuple[dict[str, str], ExportTraceServiceRequest]] = []
        # Spans by trace id as they arrive: a platform exports thousands a minute, and a
        # test that looked through all of them every second starved this server's
        # threads until the exporters gave up.
        self._traces: dict[int, list[tuple[str, Any]]] = defaultdict(list)
        received, traces = self.exports, self._traces

        class Receive(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                received.append(({k.lower(): v for k, v in self.headers.items()}, request))
                for resource_spans in request.resource_spans:
                    service = next(
                        a.value.string_value
                        for a in resource_spans.resource.attributes
                        if a.key == "service.name"
                    )
                    for scope in resource_spans.scope_spans:
                        for span in scope.spans:
                            traces[int.from_bytes(span.trace_id, "big")].append((service, span))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Receive)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1/traces"

    def spans_of(self, trace_id: int) -> list[tuple[str, Any]]:
        """(service.name, span) of every span received of this trace."""
        return list(self._traces.get(trace_id, ()))


@contextmanager
def collecting() -> Iterator[Collector]:
    """A collector serving on a thread of its own until the block ends."""
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
