"""A consumer agency's side: sign a request, publish it on the agency's request channel,
await its final outcome from the agency's outcome channel."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from joserfc.jwk import Key

from panjereh_agency.channel import ChannelReader
from panjereh_agency.exchange_keys import ExchangeKeys
from panjereh_agency.lifecycle import Started
from shared.envelope import Envelope, Event
from shared.events.exchange import DataRequestCompleted, DataRequested
from shared.kafka import new_producer, publish
from shared.kafka_access import KafkaAccess
from shared.logging import get_logger
from shared.signing import sign_event
from shared.topics import Topic

log = get_logger(__name__)


class ExchangeError(Exception):
    """A request that did not end in an answer; `reason` is the exchange's or provider's."""

    def __init__(self, transaction_id: uuid.UUID, reason: str | None) -> None:
        super().__init__(f"{transaction_id}: {reason}")
        self.transaction_id = transaction_id
        self.reason = reason or ""


class Denied(ExchangeError):
    """The exchange refused the request: bad signature, no right, unknown data service…"""


class Refused(ExchangeError):
    """The provider refused, with its stated reason."""


class TimedOut(ExchangeError):
    """The provider did not answer in time (or no outcome arrived within the wait)."""


class Failed(ExchangeError):
    """The provider's answer could not be accepted (bad signature, schema mismatch)."""


_ERRORS: dict[str, type[ExchangeError]] = {
    "denied": Denied,
    "refused": Refused,
    "timed_out": TimedOut,
    "failed": Failed,
}


OutcomeHandler = Callable[[DataRequestCompleted], Awaitable[None]]


class ExchangeClient(Started):
    """A consumer agency's connection to the exchange.

    Contract: `start()` (or `async with`) before `request`. Outcomes are read from the
    agency's own channel in a consumer group of this `instance` of the agency's system:
    an outcome is delivered even if it arrived while the instance was down, to the
    request still awaiting it or else to `on_outcome` (outcomes of requests sent before a
    restart). Several instances of one agency's system each read every outcome, so each
    needs its own `instance` name, kept across restarts. Every outcome must carry the
    exchange's signature; one that does not is dead-lettered, never delivered. Many
    requests may be awaited concurrently.
    """

    def __init__(
        self,
        kafka: KafkaAccess,
        agency: str,
        private_key: Key,
        kid: str,
        *,
        exchange_keys: ExchangeKeys,
        on_outcome: OutcomeHandler | None = None,
        instance: str = "main",
    ) -> None:
        self.agency = agency
        self._kafka = kafka
        self._key = private_key
        self._kid = kid
        self._on_outcome = on_outcome
        self._waiting: dict[uuid.UUID, asyncio.Future[DataRequestCompleted]] = {}
        self._producer: AIOKafkaProducer | None = None
        self._outcomes = ChannelReader(
            kafka, agency, Topic.AGENCY_OUTCOMES, f"outcomes-{instance}", exchange_keys
        )
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect; returns once the client reads its outcome channel."""
        self._producer = new_producer(self._kafka, client_id=f"exchange-client-{self.agency}")
        await self._producer.start()
        self._reader = asyncio.create_task(
            self._outcomes.run(self._take), name=f"exchange-client-{self.agency}"
        )
        ready = asyncio.create_task(self._outcomes.ready.wait())
        await asyncio.wait({ready, self._reader}, return_when=asyncio.FIRST_COMPLETED)
        if self._reader.done():
            ready.cancel()
            self._reader.result()  # a reader that could not start says why

    async def stop(self) -> None:
        await self._outcomes.stop()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._reader, 10)
        if self._producer is not None:
            await self._producer.stop()

    @property
    def refused(self) -> int:
        """Records on the outcome channel refused (unsigned, undecodable) so far."""
        return self._outcomes.refused

    def sign(self, request: DataRequested) -> DataRequested:
        """The request with this agency's signature over it."""
        return request.model_copy(update={"signature": sign_event(request, self._key, self._kid)})

    async def send(
        self,
        data_service: str,
        purpose: str,
        payload: dict[str, Any],
        citizen: str | None = None,
        transaction_id: uuid.UUID | None = None,
    ) -> tuple[uuid.UUID, asyncio.Future[DataRequestCompleted]]:
        """Publish a signed request: its transaction id, and a future of its final outcome.

        The caller owns the future; `forget(transaction_id)` once it is no longer awaited.
        """
        assert self._producer is not None, "start() the client first"
        request = self.sign(
            DataRequested(
                transaction_id=transaction_id or uuid.uuid4(),
                consumer=self.agency,
                data_service=data_service,
                purpose=purpose,
                payload=payload,
                citizen=citizen,
                signature="-",
            )
        )
        future: asyncio.Future[DataRequestCompleted] = asyncio.get_running_loop().create_future()
        self._waiting[request.transaction_id] = future
        envelope = Envelope.wrap(
            request,
            source=self.agency,
            subject=str(request.transaction_id),
            correlation_id=request.transaction_id,
        )
        try:
            await publish(self._producer, envelope)
        except BaseException:
            self._waiting.pop(request.transaction_id, None)
            raise
        return request.transaction_id, future

    def forget(self, transaction_id: uuid.UUID) -> None:
        """Stop waiting for a transaction's outcome."""
        self._waiting.pop(transaction_id, None)

    async def request(
        self,
        data_service: str,
        purpose: str,
        payload: dict[str, Any],
        citizen: str | None = None,
        timeout: float = 30.0,  # noqa: ASYNC109 (the library's documented interface)
    ) -> dict[str, Any]:
        """The provider's answer, or the typed error of the transaction's final outcome.

        `timeout` bounds the wait on this side: past it, `TimedOut` is raised even if the
        exchange has not yet declared the transaction timed out.
        """
        transaction_id, future = await self.send(data_service, purpose, payload, citizen)
        try:
            outcome = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise TimedOut(transaction_id, "no outcome arrived within the wait") from None
        finally:
            self.forget(transaction_id)
        return self.result_of(outcome)

    @staticmethod
    def result_of(outcome: DataRequestCompleted) -> dict[str, Any]:
        """The answer of an outcome, or its typed error."""
        if outcome.outcome == "answered":
            return outcome.payload or {}
        raise _ERRORS[outcome.outcome](outcome.transaction_id, outcome.reason)

    async def _take(self, event: Event) -> None:
        if not isinstance(event, DataRequestCompleted):
            return
        future = self._waiting.get(event.transaction_id)
        if future is not None and not future.done():
            future.set_result(event)
        elif self._on_outcome is not None:
            await self._on_outcome(event)
        else:
            log.info("outcome of a request no one awaits", transaction_id=str(event.transaction_id))
