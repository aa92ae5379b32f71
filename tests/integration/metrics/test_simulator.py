"""The simulator reports deliveries on each agency's own channel, as the agency's system,
with the credentials the platform issued that agency."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from services.metrics.domain.reference import load_reference
from shared.envelope import Envelope
from shared.events.catalog import DeliveryReported
from shared.kafka_access import KafkaAccess
from shared.registry import decode
from shared.topics import Topic, channel
from simulator.actors import issued_credentials
from simulator.app import (
    SERVICES,
    Adapters,
    AgencyReporters,
    Simulator,
    SimulatorSettings,
    channel_delivery_reports,
)
from tests.integration.exchange.helpers import AgencySystem, announce
from tests.integration.kafka_helpers import read_all


async def test_simulated_deliveries_reach_each_agencys_delivery_channel(
    kafka_admin: KafkaAccess,
    agency_kafka: Callable[[str], Awaitable[KafkaAccess]],
    infrastructure: Any,
) -> None:
    agencies = sorted({agency for agency, _ in SERVICES})
    # The catalog records the agencies (here: as it would); the platform issues each its
    # channel and credentials.
    await announce(kafka_admin, *((AgencySystem(a).recorded(), a) for a in agencies))
    for agency in agencies:
        await agency_kafka(agency)
    started = datetime.now(UTC)
    instance = f"simulator-test-{uuid.uuid4().hex[:8]}"
    settings = SimulatorSettings(
        PANJEREH_SIMULATOR_DELIVERIES_PER_SECOND=40.0,
        PANJEREH_SIMULATOR_INSTANCE=instance,
        PANJEREH_SIMULATOR_SEED=3,
    )
    reporters = AgencyReporters(issued_credentials(infrastructure.home / "credentials"))
    simulator = Simulator(
        settings,
        Adapters(report_delivery=channel_delivery_reports(reporters, load_reference())),
    )
    task = asyncio.create_task(simulator.run())
    try:
        await asyncio.sleep(1.5)
    finally:
        simulator.stop()
        await task
        await reporters.stop()
    sent = simulator.sent.get("report_delivery", 0)

    ours: list[Envelope[Any]] = []
    for agency in agencies:
        topic = channel(Topic.AGENCY_DELIVERIES, agency)
        records = await read_all(kafka_admin, topic, timeout=10)
        for record in records:
            envelope = decode(record.value, topic)
            if envelope.occurred_at >= started:
                assert isinstance(envelope.payload, DeliveryReported)
                assert record.key == envelope.payload.service_id.encode()
                ours.append(envelope)

    assert sent > 0
    assert len(ours) == sent
    assert all(isinstance(e.payload, DeliveryReported) for e in ours)
    # Each on its own agency's channel, sent as that agency.
    assert {e.source for e in ours} <= set(agencies)
