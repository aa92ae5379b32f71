"""A provider agency's side: answer (or refuse) the requests the exchange forwards."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from joserfc.jwk import Key

from services.exchange.client.signing import sign_event
from shared.envelope import Envelope, Event
from shared.events.exchange import DataProvided, DataRefused, DataRequestForwarded
from shared.kafka import new_producer, publish
from shared.kafka_access import KafkaAccess
from shared.logging import get_logger
from shared.registry import UndecodableEvent, decode
from shared.topics import Topic

log = get_logger(__name__)

RequestHandler = Callable[[DataRequestForwarded], Awaitable[dict[str, Any]]]
"""Answers one forwarded request with the response payload, or raises RefuseRequest."""


class RefuseRequest(Exception):
    """Raised by a handler to refuse a request; the reason goes to the consumer and the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ProviderWorker:
    """Serves a provider agency's data services from `exchange.provider-requests`.

    Contract: `run()` blocks until `stop()`. Records keyed with this agency are handled
    concurrently per batch; offsets are committed only after every answer of the batch is
    acknowledged by the broker, so a crash means answering again (the exchange records a
    second answer and changes nothing), never not answering. A request past its deadline
    is skipped: the exchange has already timed it out. A handler that raises anything but
    `RefuseRequest` leaves the request unanswered (logged), and the exchange times it out.
    """

    def __init__(
        self,
        kafka: KafkaAccess,
        agency: str,
        private_key: Key,
        kid: str,
        handlers: Mapping[str, RequestHandler],
        *,
        group: str | None = None,
    ) -> None:
        self.agency = agency
        self._kafka = kafka
        self._key = private_key
        self._kid = kid
        self._handlers = dict(handlers)
        self._group = group or f"provider-{agency}"
        self._stopping = asyncio.Event()
        self._ready = asyncio.Event()
        self.answered = 0
        self.refused = 0

    async def wait_ready(self) -> None:
        """Returns once the worker holds its partitions and reads."""
        await self._ready.wait()

    async def run(self) -> None:
        producer = new_producer(self._kafka, client_id=f"provider-{self.agency}")
        consumer = AIOKafkaConsumer(
            Topic.EXCHANGE_PROVIDER_REQUESTS.value,
            **self._kafka.client_options(),
            group_id=self._group,
            client_id=f"provider-{self.agency}",
            enable_auto_commit=False,
            auto_offset_reset="latest",
            isolation_level="read_committed",
        )
        await producer.start()
        await consumer.start()
        try:
            mine = self.agency.encode()
            while not self._stopping.is_set():
                batches = await consumer.getmany(timeout_ms=200, max_records=500)
                if not self._ready.is_set() and consumer.assignment():
                    # Resolve where reading starts before saying ready: nothing forwarded
                    # after this moment can be missed.
                    for tp in consumer.assignment():
                        await consumer.position(tp)
                    self._ready.set()
                records = [r for part in batches.values() for r in part if r.key == mine]
                if records:
                    await asyncio.gather(*(self._serve(producer, r) for r in records))
                if batches:
                    await consumer.commit({tp: part[-1].offset + 1 for tp, part in batches.items()})
        finally:
            await consumer.stop()
            await producer.stop()

    async def stop(self) -> None:
        self._stopping.set()

    async def _serve(
        self, producer: AIOKafkaProducer, record: ConsumerRecord[bytes, bytes]
    ) -> None:
        try:
            envelope = decode(record.value, Topic.EXCHANGE_PROVIDER_REQUESTS)
        except UndecodableEvent as error:
            log.warning("unreadable forwarded request skipped", reason=error.reason)
            return
        request = envelope.payload
        if not isinstance(request, DataRequestForwarded) or request.provider != self.agency:
            return
        if request.deadline <= datetime.now(UTC):
            log.warning(
                "request past its deadline skipped", transaction_id=str(request.transaction_id)
            )
            return
        handler = self._handlers.get(request.data_service)
        answer: Event
        try:
            if handler is None:
                raise RefuseRequest(f"this system does not serve {request.data_service}")
            payload = await handler(request)
        except RefuseRequest as refusal:
            answer = self._signed(
                DataRefused(
                    transaction_id=request.transaction_id,
                    provider=self.agency,
                    reason=refusal.reason,
                    signature="-",
                )
            )
            self.refused += 1
        except Exception as error:  # the handler's failure must not stop the others
            log.error("handler failed; request left unanswered", error=repr(error))
            return
        else:
            answer = self._signed(
                DataProvided(
                    transaction_id=request.transaction_id,
                    provider=self.agency,
                    payload=payload,
                    signature="-",
                )
            )
            self.answered += 1
        await publish(
            producer,
            Envelope.wrap(
                answer,
                source=self.agency,
                subject=str(request.transaction_id),
                correlation_id=request.transaction_id,
            ),
        )

    def _signed(self, event: DataProvided | DataRefused) -> Event:
        return event.model_copy(update={"signature": sign_event(event, self._key, self._kid)})
