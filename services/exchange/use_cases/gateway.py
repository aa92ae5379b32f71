"""The HTTP gateway's use cases, for agencies' systems that cannot speak Kafka.

A request posted to the gateway enters the exchange on the consumer's request topic and
goes through the same checks as any other; its outcome is read back from the transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from services.exchange.use_cases.ports import SOURCE, ExchangeWork
from shared.envelope import Envelope
from shared.errors import Forbidden, Gone, NotFound
from shared.events.exchange import DataRequestCompleted, DataRequested


@dataclass(frozen=True)
class GatewayOutcome:
    """A transaction as its consumer sees it: its status so far (`received` before the
    exchange took the request), and its final outcome once there is one."""

    status: str
    completion: DataRequestCompleted | None = None


async def submit_request(work: ExchangeWork, request: DataRequested, agency: str | None) -> None:
    """Send a signed request on behalf of the caller's own agency; once per transaction id
    (posting it again sends nothing new)."""
    if request.consumer != agency:
        raise Forbidden("exchange_not_your_request", request.consumer)
    if await work.transaction(request.transaction_id) is None:
        envelope = Envelope.wrap(
            request,
            source=SOURCE,
            subject=request.consumer,
            correlation_id=request.transaction_id,
        )
        await work.publish([envelope])


async def gateway_outcome(
    work: ExchangeWork, transaction_id: uuid.UUID, agency: str | None, *, must_exist: bool
) -> GatewayOutcome:
    """The outcome of one of the caller's agency's transactions. Another agency's is
    NotFound, as is one not recorded yet when it `must_exist`; Gone once its payload was
    delivered and its retention period passed (only its digest is kept)."""
    transaction = await work.transaction(transaction_id)
    if transaction is None:
        if must_exist:
            raise NotFound("exchange_unknown_transaction", str(transaction_id))
        return GatewayOutcome("received")
    if transaction.consumer != agency:
        raise NotFound("exchange_unknown_transaction", str(transaction_id))
    if transaction.payload_removed_at is not None:
        # Delivered, and kept its retention period: the signed outcome went with its payload.
        raise Gone(
            "exchange_payload_removed",
            f"{transaction.status}; payload sha256 {transaction.payload_digest}",
        )
    return GatewayOutcome(transaction.status, transaction.completion)
