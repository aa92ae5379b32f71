"""A provider agency's side: answer (or refuse) the requests the exchange forwards."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from joserfc.jwk import Key

from panjereh_agency.channel import ChannelReader
from panjereh_agency.exchange_keys import ExchangeKeys
from shared.envelope import Envelope, Event
from shared.events.exchange import DataProvided, DataRefused, DataRequestForwarded
from shared.kafka import new_producer, publish
from shared.kafka_access import KafkaAccess
from shared.logging import get_logger
from shared.signing import sign_event
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
    """Serves a provider agency's data services from its forwarded-requests channel.

    Contract: `run()` blocks until `stop()`. Only requests the exchange signed reach a
    handler; others are dead-lettered with the reason. Requests are handled concurrently
    per batch; offsets are committed only after every answer of the batch is acknowledged
    by the broker, so a crash means answering again (the exchange records a second answer
    and changes nothing), never not answering. Requests forwarded while the worker was
    down are served when it comes back, unless past their deadline (the exchange has
    timed them out). A handler that raises anything but `RefuseRequest` leaves the
    request unanswered (logged), and the exchange times it out.
    """

    def __init__(
        self,
        kafka: KafkaAccess,
        agency: str,
        private_key: Key,
        kid: str,
        handlers: Mapping[str, RequestHandler],
        *,
        exchange_keys: ExchangeKeys,
    ) -> None:
        self.agency = agency
        self._kafka = kafka
        self._key = private_key
        self._kid = kid
        self._handlers = dict(handlers)
        self._requests = ChannelReader(
            kafka, agency, Topic.AGENCY_FORWARDED, "provider", exchange_keys
        )
        self._producer: AIOKafkaProducer | None = None
        self.answered = 0
        self.refused = 0

    async def wait_ready(self) -> None:
        """Returns once the worker holds its partitions and reads."""
        await self._requests.ready.wait()

    @property
    def unsigned(self) -> int:
        """Forwarded records refused because the exchange had not signed them."""
        return self._requests.refused

    async def run(self) -> None:
        self._producer = new_producer(self._kafka, client_id=f"provider-{self.agency}")
        await self._producer.start()
        try:
            await self._requests.run(self._serve)
        finally:
            await self._producer.stop()

    async def stop(self) -> None:
        await self._requests.stop()

    async def _serve(self, request: Event) -> None:
        if not isinstance(request, DataRequestForwarded):
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
        assert self._producer is not None
        await publish(
            self._producer,
            Envelope.wrap(
                answer,
                source=self.agency,
                subject=str(request.transaction_id),
                correlation_id=request.transaction_id,
            ),
        )

    def _signed(self, event: DataProvided | DataRefused) -> Event:
        return event.model_copy(update={"signature": sign_event(event, self._key, self._kid)})
