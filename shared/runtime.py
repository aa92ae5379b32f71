"""How a service process runs: one HTTP app, its outbox relay and its consumers.

Every service is wired the same way by its `bootstrap.py`: settings, the routers of its
HTTP API, and the handlers of the events it consumes. This module turns those into a
running process, so that no service repeats the plumbing.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Annotated, Any, Protocol, TypeVar

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from opentelemetry import context as otel_context

from shared.auth import IssuerKeys, Principal, require
from shared.db import Connection, Pool, create_pool
from shared.envelope import Envelope, Event
from shared.events.platform import ServiceStarted
from shared.http import install_problem_handlers
from shared.inbox import handle_once
from shared.input_guard import InputGuard, InputLimits
from shared.kafka import EventConsumer, Rejected
from shared.kafka_access import KafkaAccess
from shared.logging import configure_logging, get_logger
from shared.operational_metrics import (
    CONSUMER_LAG,
    OUTBOX_BACKLOG,
    OUTBOX_OLDEST_AGE,
    OUTBOX_PARKED,
    PROCESS_READY,
    HttpMetrics,
    Probe,
    metrics_router,
)
from shared.outbox import OutboxRelay, enqueue
from shared.outbox import backlog as outbox_backlog
from shared.settings import ServiceSettings
from shared.supervision import RestartPolicy, TaskHealth, supervise
from shared.topics import Topic
from shared.tracing import configure_tracing

log = get_logger(__name__)

EventHandler = Callable[[Envelope[Any], Any], Awaitable[None]]
"""A handler gets the event and the connection of the transaction it must work in."""

Handlers = Mapping[type[Event], Sequence[EventHandler]]

BatchApply = Callable[
    [Sequence[Envelope[Any]], Connection, Sequence[otel_context.Context]],
    Awaitable[Mapping[uuid.UUID, str]],
]
"""A batch handler gets a poll's events, the transaction's connection and each event's
trace context; it returns the events it refuses (envelope id → reason)."""

Context = TypeVar("Context")


@dataclass(frozen=True)
class BatchHandling:
    """Events that arrive at volume: each poll is handled at once, in one transaction.

    The refused events go to their dead-letter topic with the reason and the rest commit.
    A poll that keeps failing falls back to one event at a time, through the same handler.
    `members` consumers share the service's group, so their waits on the database overlap.
    """

    topics: Sequence[Topic]
    apply: BatchApply
    members: int = 1
    max_records: int = 500


def release() -> str:
    try:
        return package_version("panjereh")
    except PackageNotFoundError:
        return "unknown"


@dataclass
class Runtime:
    """What a running service holds; routes reach it through `app.state.runtime`."""

    settings: ServiceSettings
    pool: Pool
    relay: OutboxRelay
    consumers: list[EventConsumer] = field(default_factory=list)
    batch_consumers: list[EventConsumer] = field(default_factory=list)
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    supervised: dict[str, TaskHealth] = field(default_factory=dict)
    """The service's own background tasks, restarted when they fail, by name."""
    issuer_keys: IssuerKeys | None = None
    context: Any = None
    """The service's own dependencies, made by its context factory at start."""

    def failed_tasks(self) -> list[str]:
        return [name for name, task in self.tasks.items() if task.done()]

    def failing_background(self) -> list[str]:
        """Background tasks that failed and are being restarted, not yet recovered."""
        return [name for name, health in self.supervised.items() if health.failing]


def dispatcher(
    pool: Pool, consumer: str, handlers: Handlers
) -> Callable[[Envelope[Any]], Awaitable[None]]:
    """One consumer handler that runs every handler of an event once, in one transaction."""

    async def dispatch(envelope: Envelope[Any]) -> None:
        chosen = handlers.get(type(envelope.payload), ())
        if not chosen:
            return

        async def apply(connection: Any) -> None:
            for handler in chosen:
                await handler(envelope, connection)

        await handle_once(pool, consumer, envelope.id, apply)

    return dispatch


def consumed_topics(
    handlers: Handlers, batches: Mapping[str, BatchHandling] | None = None
) -> list[Topic]:
    """The topics a service consumes: its handlers' events' and its batches'."""
    topics = {event.topic for event in handlers}
    for batch in (batches or {}).values():
        topics.update(batch.topics)
    return sorted(topics, key=lambda topic: topic.value)


def batch_consumer(
    pool: Pool, group: str, batch: BatchHandling, kafka: KafkaAccess
) -> EventConsumer:
    """A consumer in the service's group that hands each poll to `batch.apply`."""

    async def take_poll(
        envelopes: Sequence[Envelope[Any]], parents: Sequence[otel_context.Context]
    ) -> Mapping[uuid.UUID, str]:
        async with pool.acquire() as connection, connection.transaction():
            return await batch.apply(envelopes, connection, parents)

    async def take_one(envelope: Envelope[Any]) -> None:
        refused = await take_poll([envelope], [otel_context.get_current()])
        if envelope.id in refused:
            raise Rejected(refused[envelope.id])

    return EventConsumer(
        group=group,
        topics=list(batch.topics),
        handler=take_one,
        batch=take_poll,
        kafka=kafka,
        max_records=batch.max_records,
    )


def create_app(
    settings: ServiceSettings,
    *,
    title: str,
    routers: Sequence[APIRouter] = (),
    handlers: Handlers | None = None,
    batches: Mapping[str, BatchHandling] | None = None,
    context: Callable[[Runtime], Any] | None = None,
    verifies_tokens: bool = False,
    background: Mapping[str, Callable[[Runtime], Coroutine[Any, Any, None]]] | None = None,
    restarts: RestartPolicy | None = None,
    limits: InputLimits | None = None,
    probes: Mapping[str, Callable[[Runtime], Awaitable[None]]] | None = None,
) -> FastAPI:
    """The service's ASGI app; its lifespan starts and stops everything the service runs.

    `handlers` are the events the service consumes one at a time (one consumer group,
    named after the service, each event once through the inbox). `batches` are the events
    it consumes a poll at a time (same group), by name. `context` makes the service's own
    dependencies from the running runtime once at start; routes reach them with
    `context_of`. `verifies_tokens` follows identity's issuer keys so routes can use
    `require_scopes`. `background` names long-running tasks of the service's own (each
    gets the runtime and runs until cancelled at shutdown); one that fails or ends is
    restarted with backoff (`restarts`), and `/health` says degraded until it recovers.
    Every route's input is bounded by `limits` (sizes, characters, numbers).
    `GET /metrics` serves the operational metrics (shared/operational_metrics.py): every
    request's, and at each scrape the outbox's backlog, the consumers' lag, readiness,
    and what the service's own `probes` read.
    """
    name = settings.service_name

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(name, settings)
        configure_tracing(
            name,
            settings.trace_exporter,
            otlp_endpoint=settings.otlp_endpoint,
            otlp_headers_text=settings.otlp_headers.get_secret_value(),
        )
        pool = await create_pool(
            settings.database_url, settings.database_schema, max_size=settings.database_pool_size
        )
        relay = OutboxRelay(
            pool,
            schema=settings.database_schema,
            kafka=settings.kafka,
            keep_processed=settings.dedup_horizon,
        )
        runtime = Runtime(settings=settings, pool=pool, relay=relay)
        if context is not None:
            runtime.context = context(runtime)
        if handlers:
            runtime.consumers.append(
                EventConsumer(
                    group=name,
                    topics=consumed_topics(handlers),
                    handler=dispatcher(pool, name, handlers),
                    kafka=settings.kafka,
                )
            )
        for batch_name, batch in (batches or {}).items():
            for member in range(batch.members):
                consumer = batch_consumer(pool, name, batch, settings.kafka)
                label = batch_name if batch.members == 1 else f"{batch_name}-{member}"
                runtime.tasks[label] = asyncio.create_task(consumer.run(), name=label)
                runtime.batch_consumers.append(consumer)
        if verifies_tokens:
            runtime.issuer_keys = IssuerKeys(
                settings.kafka, issuer=settings.token_issuer, reader=name
            )
            runtime.tasks["issuer-keys"] = asyncio.create_task(
                runtime.issuer_keys.run(), name="issuer-keys"
            )
        app.state.runtime = runtime
        await _announce_start(pool, name)
        runtime.tasks["outbox-relay"] = asyncio.create_task(relay.run(), name="outbox-relay")
        for consumer in runtime.consumers:
            runtime.tasks[f"consumer:{consumer.group}"] = asyncio.create_task(
                consumer.run(), name=consumer.group
            )
        for task_name, work in (background or {}).items():
            health = runtime.supervised[task_name] = TaskHealth(task_name)
            runtime.tasks[task_name] = asyncio.create_task(
                supervise(health, functools.partial(work, runtime), restarts), name=task_name
            )
        log.info("service started", port=settings.http_port)
        try:
            yield
        finally:
            for consumer in [*runtime.consumers, *runtime.batch_consumers]:
                await consumer.stop()
            await relay.stop()
            if runtime.issuer_keys is not None:
                await runtime.issuer_keys.stop()
            for task_name in background or {}:
                runtime.tasks[task_name].cancel()
            await asyncio.wait(runtime.tasks.values(), timeout=10)
            await pool.close()
            log.info("service stopped")

    # One server span per request is what our traces need; FastAPI's spans for every
    # dependency, endpoint and serialisation cost more CPU than most requests' own work.
    app = FastAPI(
        title=title,
        version=release(),
        lifespan=lifespan,
        telemetry={"operation_spans": False},
    )
    install_problem_handlers(app)
    app.add_middleware(InputGuard, limits=limits or InputLimits())
    # Outermost, so that what the input guard refuses is counted too.
    app.add_middleware(HttpMetrics)
    app.include_router(_health_router(name))
    service_probes = dict(probes or {})

    def scrape_probes(request: Request) -> list[tuple[str, Probe]]:
        runtime = runtime_of(request)
        return [
            ("readiness", functools.partial(_read_readiness, runtime)),
            ("outbox", functools.partial(_read_outbox, runtime)),
            ("consumer-lag", functools.partial(_read_consumer_lag, runtime)),
            *((probe, functools.partial(read, runtime)) for probe, read in service_probes.items()),
        ]

    app.include_router(
        metrics_router(
            settings.metrics_token.get_secret_value(),
            open_without_token=settings.environment != "production",
            probes=scrape_probes,
        )
    )
    for router in routers:
        app.include_router(router)
    return app


def runtime_of(request: Request) -> Runtime:
    """The running service's runtime (routes take it as `RuntimeDep`)."""
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _runtime_dependency(request: Request) -> Runtime:
    # Async on purpose: FastAPI runs a plain-function dependency in a thread pool.
    return runtime_of(request)


RuntimeDep = Annotated[Runtime, Depends(_runtime_dependency)]


def context_of(request: Request, kind: type[Context]) -> Context:
    """The service's context (made by its context factory), checked to be a `kind`."""
    context = runtime_of(request).context
    if not isinstance(context, kind):
        raise RuntimeError(f"this service's context is not a {kind.__name__}")
    return context


def _issuer_keys_of(request: Request) -> IssuerKeys:
    keys = runtime_of(request).issuer_keys
    if keys is None:
        raise RuntimeError("this service was not created with verifies_tokens=True")
    return keys


def require_scopes(*scopes: str) -> Callable[[Request], Awaitable[Principal]]:
    """A route dependency: the caller's principal, which must hold every scope named."""
    return require(_issuer_keys_of, *scopes)


def _health_router(service: str) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/health", summary="Whether the service can do its work")
    async def health(request: Request) -> JSONResponse:
        status, checks = await _health_of(request.app.state.runtime)
        return JSONResponse(
            {"service": service, "status": status, "checks": checks},
            status_code=200 if status == "ok" else 503,
        )

    return router


async def _health_of(runtime: Runtime) -> tuple[str, dict[str, str]]:
    """ok, degraded (some background work is failing) or failing; and each check."""
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(runtime.pool.fetchval("SELECT 1"), timeout=2)
        checks["database"] = "ok"
    except Exception as error:  # any failure here is exactly what health reports
        checks["database"] = f"failing: {error!r}"
    stopped = runtime.failed_tasks()
    for task in runtime.tasks:
        if task in runtime.supervised:
            checks[task] = runtime.supervised[task].describe()
        else:
            checks[task] = "stopped" if task in stopped else "running"
    status = "ok"
    if runtime.failing_background():
        # The service answers, but some of its work is not being done: not healthy.
        status = "degraded"
    if checks["database"] != "ok" or any(task not in runtime.supervised for task in stopped):
        status = "failing"
    return status, checks


async def _read_readiness(runtime: Runtime) -> None:
    status, _ = await _health_of(runtime)
    PROCESS_READY.set(1 if status == "ok" else 0)


async def _read_outbox(runtime: Runtime) -> None:
    async with runtime.pool.acquire() as connection:
        waiting = await outbox_backlog(connection)
    OUTBOX_BACKLOG.set(waiting.rows)
    OUTBOX_OLDEST_AGE.set(waiting.oldest_age_seconds)
    OUTBOX_PARKED.set(waiting.parked)


async def _read_consumer_lag(runtime: Runtime) -> None:
    consumers = [*runtime.consumers, *runtime.batch_consumers]
    for consumer, lag in zip(
        consumers, await asyncio.gather(*(c.lag() for c in consumers)), strict=True
    ):
        for tp, records in lag.items():
            CONSUMER_LAG.labels(consumer.group, tp.topic, str(tp.partition)).set(records)


async def _announce_start(pool: Pool, service: str) -> None:
    payload = ServiceStarted(
        service=service, release=release(), instance=f"{socket.gethostname()}:{os.getpid()}"
    )
    async with pool.acquire() as connection, connection.transaction():
        await enqueue(connection, Envelope.wrap(payload, source=service, subject=service))


YOUNG_GENERATION_THRESHOLD = 10_000


def settle_garbage_collector() -> None:
    """Tune the cyclic garbage collector for a long-running server.

    What exists once the app is built (modules, the app, its schemas) lives as long as the
    process: frozen, the collector stops walking it on every full collection. A request
    allocates thousands of short-lived objects, and the default threshold (700) ran a
    young collection several times per request. Together: about 15% less CPU per request
    (identity's benchmark, measured in alternating runs).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, 20, 20)


class Listens(Protocol):
    """Where a process's HTTP app listens."""

    @property
    def http_host(self) -> str: ...

    @property
    def http_port(self) -> int: ...


def serve(app: FastAPI, settings: Listens) -> None:
    """Run the app in the foreground until SIGTERM or SIGINT."""
    settle_garbage_collector()
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
