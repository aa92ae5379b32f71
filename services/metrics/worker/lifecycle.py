"""How often each service started, from `platform.lifecycle`."""

from __future__ import annotations

import faust

from services.metrics.worker.app import app, decoded, source_topic, table
from shared.events.platform import ServiceStarted
from shared.topics import Topic

lifecycle = source_topic(Topic.PLATFORM_LIFECYCLE)
service_starts = table("service-starts", default=int, partitions=3)


@app.agent(lifecycle)
async def count_service_starts(stream: faust.StreamT[bytes]) -> None:
    async for event in stream.events():
        envelope = await decoded(event)
        if envelope is not None and isinstance(envelope.payload, ServiceStarted):
            service_starts[envelope.payload.service] += 1


@app.page("/service-starts")
async def starts(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
    return web.json(dict(service_starts.items()))
