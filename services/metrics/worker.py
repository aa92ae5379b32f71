"""The metrics stream processor: one Faust worker, `python -m services.metrics.worker`.

It consumes what the other services publish and keeps live aggregates in Faust tables
(backed by changelog topics, so a restarted worker recovers them). Records arrive as raw
bytes and are decoded with the platform's own contracts (pydantic at the boundary, since
Faust records are not validated); what cannot be decoded goes to the topic's dead-letter
topic with the reason.
"""

from __future__ import annotations

import sys
from typing import Any

import faust
from pydantic import Field

from shared.events.platform import ServiceStarted
from shared.kafka import dead_letter_headers
from shared.logging import configure_logging, get_logger
from shared.registry import UndecodableEvent, decode
from shared.settings import PlatformSettings
from shared.topics import Topic, dead_letter_of

log = get_logger(__name__)


class WorkerSettings(PlatformSettings):
    web_port: int = Field(default=8014, validation_alias="PANJEREH_METRICS_WORKER_PORT")


settings = WorkerSettings()

app = faust.App(
    "panjereh-metrics",
    broker=f"kafka://{settings.kafka_bootstrap_servers}",
    store="memory://",
    topic_partitions=3,
    topic_replication_factor=1,
    web_host=settings.http_host,
    web_bind=settings.http_host,
    web_port=settings.web_port,
    consumer_auto_offset_reset="earliest",
)

lifecycle = app.topic(Topic.PLATFORM_LIFECYCLE.value, key_serializer="raw", value_serializer="raw")

service_starts = app.Table("service-starts", default=int, partitions=3)


async def dead_letter(event: Any, reason: str) -> None:
    message = event.message
    headers = dead_letter_headers(
        message.headers,
        reason=reason,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        consumer=app.conf.id,
    )
    await app.producer.send_and_wait(
        dead_letter_of(message.topic),
        message.key,
        event.value or b"",
        partition=None,
        timestamp=None,
        headers=headers,
    )
    log.warning("event dead-lettered", reason=reason, topic=message.topic)


@app.agent(lifecycle)
async def count_service_starts(stream: faust.StreamT[bytes]) -> None:
    async for event in stream.events():
        try:
            envelope = decode(event.value, Topic.PLATFORM_LIFECYCLE.value)
        except UndecodableEvent as error:
            await dead_letter(event, error.reason)
            continue
        if isinstance(envelope.payload, ServiceStarted):
            service_starts[envelope.payload.service] += 1


@app.page("/health")
async def health(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
    return web.json({"service": "metrics-worker", "status": "ok"})


@app.page("/service-starts")
async def starts(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
    return web.json(dict(service_starts.items()))


def main() -> None:
    configure_logging("metrics-worker", settings)
    sys.argv = [sys.argv[0], "worker", "--loglevel", settings.log_level.lower()]
    app.main()


if __name__ == "__main__":
    main()
