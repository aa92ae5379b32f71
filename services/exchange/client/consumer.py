"""A consumer agency's side: sign a request, publish it, await its final outcome."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from joserfc.jwk import Key

from services.exchange.client.signing import (
    SignatureInvalid,
    key_id_of,
    sign_event,
    verify_event,
)
from shared.envelope import Envelope
from shared.events.exchange import DataRequestCompleted, DataRequested
from shared.kafka import new_producer, publish
from shared.kafka_access import KafkaAccess
from shared.logging import get_logger
from shared.registry import UndecodableEvent, decode
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


class ExchangeClient:
    """A consumer agency's connection to the exchange.

    Contract: `start()` (or `async with`) before `request`; outcomes are read from the
    moment `start()` returns, so a request always finds its outcome. Many requests may be
    awaited concurrently. `exchange_keys` (kid → public JWK), when given, makes the client
    refuse outcomes the exchange did not sign.
    """

    def __init__(
        self,
        kafka: KafkaAccess,
        agency: str,
        private_key: Key,
        kid: str,
        *,
        exchange_keys: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:
        self.agency = agency
        self._kafka = kafka
        self._key = private_key
        self._kid = kid
        self._exchange_keys = dict(exchange_keys or {})
        self._waiting: dict[uuid.UUID, asyncio.Future[DataRequestCompleted]] = {}
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._producer = new_producer(self._kafka, client_id=f"exchange-client-{self.agency}")
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            **self._kafka.client_options(),
            isolation_level="read_committed",
            enable_auto_commit=False,
            client_id=f"exchange-client-{self.agency}",
        )
        await self._consumer.start()
        topic = Topic.EXCHANGE_CONSUMER_RESPONSES.value
        partitions = await self._producer.partitions_for(topic)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        self._consumer.assign(tps)
        await self._consumer.seek_to_end(*tps)
        for tp in tps:
            # Resolve the position now: a lazy one could skip an outcome that lands first.
            await self._consumer.position(tp)
        self._reader = asyncio.create_task(self._read(), name=f"exchange-client-{self.agency}")

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

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
            request, source=self.agency, subject=self.agency, correlation_id=request.transaction_id
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

    async def _read(self) -> None:
        assert self._consumer is not None
        mine = self.agency.encode()
        while True:
            batches = await self._consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    if record.key != mine:
                        continue
                    self._take(record.value)

    def _take(self, value: bytes | None) -> None:
        try:
            envelope = decode(value, Topic.EXCHANGE_CONSUMER_RESPONSES)
        except UndecodableEvent as error:
            log.warning("unreadable outcome skipped", reason=error.reason)
            return
        outcome = envelope.payload
        if not isinstance(outcome, DataRequestCompleted):
            return
        future = self._waiting.get(outcome.transaction_id)
        if future is None or future.done():
            return
        if self._exchange_keys and not self._signed_by_exchange(outcome):
            log.warning(
                "outcome not signed by the exchange skipped",
                transaction_id=str(outcome.transaction_id),
            )
            return
        future.set_result(outcome)

    def _signed_by_exchange(self, outcome: DataRequestCompleted) -> bool:
        try:
            jwk = self._exchange_keys.get(key_id_of(outcome.signature))
            if jwk is None:
                return False
            verify_event(outcome, jwk, "ES256")
        except SignatureInvalid:
            return False
        return True
