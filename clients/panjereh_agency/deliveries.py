"""An agency's service deliveries, reported on its own delivery channel.

The catalog checks each report against the register, records a valid one exactly once
(however often it is sent: the report id decides) and dead-letters the others, with the
reason, on the channel's dead-letter topic, which the agency may read.
"""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from panjereh_agency.lifecycle import Started
from shared.envelope import Envelope
from shared.events.catalog import DeliveryReported
from shared.kafka import new_producer, publish
from shared.kafka_access import KafkaAccess


class DeliveryReporter(Started):
    """Publishes an agency's `DeliveryReported` events. Contract: `start()` (or `async
    with`) first; `report` returns once the broker has the report (safe to send again)."""

    def __init__(self, kafka: KafkaAccess, agency: str) -> None:
        self.agency = agency
        self._kafka = kafka
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self._producer = new_producer(self._kafka, client_id=f"deliveries-{self.agency}")
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def report(self, delivery: DeliveryReported) -> None:
        """Send one report; it must be this agency's (its channel would refuse it)."""
        if delivery.agency != self.agency:
            raise ValueError(f"{self.agency} cannot report {delivery.agency}'s deliveries")
        assert self._producer is not None, "start() the reporter first"
        await publish(
            self._producer, Envelope.wrap(delivery, source=self.agency, subject=delivery.service_id)
        )
