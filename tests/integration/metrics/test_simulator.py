"""The simulator reports deliveries on the catalog's intake topic, as agencies do."""

from __future__ import annotations

import asyncio
import uuid

from services.metrics.domain.reference import load_reference
from services.metrics.simulator import (
    Adapters,
    Simulator,
    SimulatorSettings,
    kafka_delivery_reports,
)
from shared.events.catalog import DeliveryReported
from shared.kafka import new_producer
from shared.kafka_access import KafkaAccess
from shared.registry import decode
from shared.topics import Topic
from tests.integration.kafka_helpers import read_all


async def test_simulated_deliveries_reach_catalog_delivery_reports(
    kafka_admin: KafkaAccess,
) -> None:
    instance = f"simulator-test-{uuid.uuid4().hex[:8]}"
    settings = SimulatorSettings(
        PANJEREH_SIMULATOR_DELIVERIES_PER_SECOND=40.0,
        PANJEREH_SIMULATOR_INSTANCE=instance,
        PANJEREH_SIMULATOR_SEED=3,
    )
    producer = new_producer(kafka_admin, client_id=instance)
    await producer.start()
    simulator = Simulator(
        settings,
        Adapters(report_delivery=kafka_delivery_reports(producer, load_reference(), instance)),
    )
    task = asyncio.create_task(simulator.run())
    try:
        await asyncio.sleep(1.5)
    finally:
        simulator.stop()
        await task
        await producer.stop()
    sent = simulator.sent.get("report_delivery", 0)

    records = await read_all(
        kafka_admin,
        Topic.CATALOG_DELIVERY_REPORTS.value,
        until=lambda rs: sum(1 for r in rs if instance.encode() in (r.value or b"")) >= sent,
    )
    mine = [r for r in records if instance.encode() in (r.value or b"")]
    ours = [decode(r.value) for r in mine]

    assert sent > 0
    assert len(ours) == sent
    assert all(isinstance(e.payload, DeliveryReported) for e in ours)
    assert {e.source for e in ours} == {instance}
    # Keyed by the reporting agency, as the topic's spec says.
    agencies = [e.payload.agency for e in ours if isinstance(e.payload, DeliveryReported)]
    assert [r.key for r in mine] == [agency.encode() for agency in agencies]
