"""Every operational metric the platform exports to Prometheus, declared once.

These are for the platform team (is it keeping up, is it failing, where does the time
go), not the programme's figures, which the metrics service publishes for analysts.
Every process serves them at `GET /metrics` in Prometheus's text format; the scrape
config names the process (`job`), so no metric repeats it as a label. Label values are
bounded: route templates, topic names from the register, outcome and reason kinds,
never an id. The alert rules and the dashboard under `deploy/helm/panjereh/files/
monitoring/` use these names only, which a unit test holds them to.

The process's CPU and memory come from prometheus-client's own `process_*` collector.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.http import ProblemError
from shared.logging import get_logger

log = get_logger(__name__)

#: Seconds; from a cached answer to a request that waited for the database.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "panjereh_http_requests",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "panjereh_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by route template and method.",
    ["route", "method"],
    buckets=_LATENCY_BUCKETS,
)
CONSUMER_LAG = Gauge(
    "panjereh_consumer_lag_records",
    "Records a consumer group has yet to commit past on a partition this process holds "
    "(to the last stable offset: a partition whose last record closes a transaction "
    "shows one).",
    ["group", "topic", "partition"],
)
CONSUMER_BATCH_DURATION = Histogram(
    "panjereh_consumer_batch_duration_seconds",
    "Time to handle one poll's records of a consumer group, retries included.",
    ["group"],
    buckets=_LATENCY_BUCKETS,
)
HANDLER_RETRIES = Counter(
    "panjereh_handler_retries",
    "Handler attempts that failed and were tried again, by cause (transient: the "
    "database or the broker; failure: anything else).",
    ["group", "cause"],
)
#: Why a record was dead-lettered, as a bounded label: it could not be decoded, a handler
#: refused it, or a handler kept failing on it.
DeadLetterKind = Literal["undecodable", "rejected", "handler_failed"]
DEAD_LETTERS = Counter(
    "panjereh_dead_letters",
    "Records sent to a dead-letter topic, by the topic they came from and the kind of "
    "reason (undecodable, rejected, handler_failed); the reason itself is in the record.",
    ["topic", "reason"],
)
OUTBOX_BACKLOG = Gauge(
    "panjereh_outbox_backlog_rows",
    "Outbox rows written but not yet published to Kafka.",
)
OUTBOX_OLDEST_AGE = Gauge(
    "panjereh_outbox_oldest_age_seconds",
    "Age of the oldest outbox row not yet published (0 when none waits).",
)
OUTBOX_PARKED = Gauge(
    "panjereh_outbox_parked_rows",
    "Outbox rows the broker will never take, set aside with their reason.",
)
EXCHANGE_ROUND_TRIP = Histogram(
    "panjereh_exchange_round_trip_seconds",
    "From a request reaching the broker to its outcome (decided as of its answer's "
    "arrival), by outcome.",
    ["outcome"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
EXCHANGE_STEP = Histogram(
    "panjereh_exchange_step_seconds",
    "A completed transaction's time by step: provider (forwarded to answered, the "
    "provider's systems and the two hops between) and exchange (the rest).",
    ["step"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
AUDIT_UNANCHORED = Gauge(
    "panjereh_exchange_audit_unanchored_records",
    "Audit records no signed checkpoint covers yet.",
)
AUDIT_UNANCHORED_AGE = Gauge(
    "panjereh_exchange_audit_oldest_unanchored_age_seconds",
    "Age of the oldest audit record no signed checkpoint covers (0 when all are).",
)
SIGN_INS = Counter(
    "panjereh_identity_sign_ins",
    "Citizens' sign-in attempts, by outcome: signed_in, or the refusal's problem code.",
    ["outcome"],
)
WORKER_EVENTS = Counter(
    "panjereh_worker_events",
    "Records the metrics worker read, by topic (dead-lettered ones included).",
    ["topic"],
)
WORKER_LAG = Gauge(
    "panjereh_worker_lag_records",
    "Records the metrics worker has yet to commit past on a partition it holds.",
    ["topic", "partition"],
)
WORKER_RECOVERING = Gauge(
    "panjereh_worker_recovering",
    "1 while the metrics worker restores its tables from their changelogs, else 0.",
)
WORKER_ROCKSDB_MEMORY = Gauge(
    "panjereh_worker_rocksdb_memory_bytes",
    "Bytes of the metrics worker's RocksDB memory budget in use: cached blocks and "
    "memtables of all its tables.",
)
PROCESS_READY = Gauge(
    "panjereh_process_ready",
    "1 when the process's health check passes, else 0.",
)
PROBE_FAILURES = Counter(
    "panjereh_metrics_probe_failures",
    "Scrape-time readings (consumer lag, the outbox, the audit log) that failed or timed "
    "out; the metric they read keeps its last value.",
    ["probe"],
)

#: A reading taken at scrape time (the database or the broker asked): sets gauges.
Probe = Callable[[], Awaitable[None]]
PROBE_TIMEOUT_SECONDS = 2.0


async def exposition(probes: Sequence[tuple[str, Probe]] = ()) -> bytes:
    """The process's metrics in Prometheus's text format, after its probes have read
    what only the database or the broker knows. A probe that fails or is slow leaves its
    gauges as they were and counts in `panjereh_metrics_probe_failures_total`."""

    async def read(name: str, probe: Probe) -> None:
        try:
            await asyncio.wait_for(probe(), PROBE_TIMEOUT_SECONDS)
        except Exception as error:  # a scrape must answer whatever a probe does
            PROBE_FAILURES.labels(name).inc()
            log.warning("metrics probe failed", probe=name, error=repr(error))

    await asyncio.gather(*(read(name, probe) for name, probe in probes))
    return generate_latest(REGISTRY)


#: Prometheus's classic text format, which every Prometheus 2 and 3 reads.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
#: The same without its charset, for aiohttp (Faust's web), which sets that apart.
CONTENT_TYPE_WITHOUT_CHARSET = CONTENT_TYPE.rsplit(";", 1)[0]


def scrape_allowed(authorization: str | None, token: str, *, open_without_token: bool) -> bool:
    """Whether a scrape may read the metrics. With a token, only one that presents it
    (`Authorization: Bearer <token>`). Without one, anyone when `open_without_token`
    (development and test), no one otherwise (production): a platform deployed without
    a scrape secret does not publish its traffic to whoever reaches its port."""
    if not token:
        return open_without_token
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


class HttpMetrics:
    """ASGI middleware counting every request by its route's template and status, with
    its duration; a path no route matched counts as `unmatched` (a scanner's thousand
    paths are one series)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers if the app raises before starting one

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in _METHODS else "other"
            HTTP_REQUESTS.labels(route, method, str(status)).inc()
            HTTP_REQUEST_DURATION.labels(route, method).observe(time.perf_counter() - started)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def metrics_router(
    token: str,
    *,
    open_without_token: bool,
    probes: Callable[[Request], Sequence[tuple[str, Probe]]] = lambda request: (),
) -> APIRouter:
    """`GET /metrics` for a FastAPI process: its probes read, then every metric; who may
    read them is `scrape_allowed`'s rule."""
    router = APIRouter(tags=["operations"])

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        authorization = request.headers.get("authorization")
        if not scrape_allowed(authorization, token, open_without_token=open_without_token):
            raise ProblemError(
                401,
                "unauthenticated",
                "a scrape of /metrics needs the metrics bearer secret (PANJEREH_METRICS_TOKEN)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return Response(await exposition(probes(request)), media_type=CONTENT_TYPE)

    return router
