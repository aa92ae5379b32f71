"""The port: what the exchange's use cases need of a unit of work, and what it hands back.

`services.exchange.storage.ExchangeStorage` implements it on Postgres, in one database
transaction; the unit tests' fake keeps rows in dictionaries.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from services.exchange.domain.audit import AuditEntry
from services.exchange.domain.authorisation import AgencyKey
from services.exchange.domain.registers import AccessRight, Agency, DataService
from services.exchange.domain.transaction import ExchangeSigner, Transaction
from shared.events.catalog import AgencyRecorded
from shared.events.exchange import (
    AccessGranted,
    AccessRevoked,
    DataRequested,
    DataServiceRegistered,
)
from shared.events.identity import AgencyKeyPublished, AgencyKeyRevoked
from shared.unit_of_work import Publisher

SOURCE = "exchange"


@dataclass(frozen=True)
class RequestContext:
    """Everything a request's authorisation reads, and whether its transaction id is taken."""

    taken: bool
    key: AgencyKey | None
    consumer: Agency | None
    service: DataService | None
    rights: Sequence[AccessRight] = field(default_factory=tuple)


@dataclass(frozen=True)
class AnswerContext:
    """The transaction an answer names, the key its signature names, the response schema."""

    transaction: Transaction
    key: AgencyKey | None
    response_schema: dict[str, Any] | None


class ExchangeWork(Publisher, Protocol):
    """The exchange's storage in one transaction (what it writes commits with its events)."""

    # Registers of the exchange's own, and the projections of other services' topics.

    async def agency(self, code: str) -> Agency | None: ...

    async def agency_names(self, codes: Sequence[str]) -> dict[str, tuple[str, str]]:
        """(Persian, English) name of each agency known among `codes`."""
        ...

    async def record_agency(self, agency: AgencyRecorded) -> None:
        """Keep the agency's latest revision (a replayed older record changes nothing)."""
        ...

    async def record_agency_key(self, key: AgencyKeyPublished) -> bool:
        """Keep a published key; False (and no change) if it would move a known kid to
        another agency or another key. A key already revoked stays revoked."""
        ...

    async def revoke_agency_key(self, revoked: AgencyKeyRevoked, at: datetime) -> bool:
        """Revoke a key (the earliest revocation wins); False if the kid is another agency's."""
        ...

    async def data_service(self, data_service: str) -> DataService | None: ...

    async def data_services(self, provider: str | None) -> list[DataService]:
        """Every data service (or one provider's), by id."""
        ...

    async def save_data_service(self, service: DataServiceRegistered) -> None: ...

    async def access_right(self, right_id: uuid.UUID) -> AccessRight | None: ...

    async def save_right(self, right: AccessGranted) -> None: ...

    async def revoke_right(self, revoked: AccessRevoked, at: datetime) -> bool:
        """Mark a right revoked, why and by whom; False if it does not exist or already was."""
        ...

    async def signer(self) -> ExchangeSigner:
        """The exchange's signing key, made on first use and kept."""
        ...

    async def public_keys(self) -> list[tuple[str, dict[str, Any]]]:
        """Every signing key of the exchange: (kid, public JWK), oldest first."""
        ...

    # Transactions. Reads see what this unit of work already wrote.

    async def request_context(self, kid: str, request: DataRequested) -> RequestContext:
        """What authorising `request` reads: the key `kid`, the consumer,
        the data service and the consumer's rights to it; whether its id is taken."""
        ...

    async def answer_context(self, transaction_id: uuid.UUID, kid: str) -> AnswerContext | None:
        """The transaction (locked until commit), the key `kid` and the response schema;
        None if no such transaction was recorded."""
        ...

    async def overdue_transactions(self, now: datetime, limit: int) -> list[Transaction]:
        """Up to `limit` pending transactions past their deadline, locked; others' locks
        are skipped, so that sweepers never wait on each other or on answers."""
        ...

    async def transaction(self, transaction_id: uuid.UUID) -> Transaction | None: ...

    async def open_transaction(self, transaction: Transaction) -> None:
        """Record a new transaction, in whatever state it starts (pending, or denied)."""
        ...

    async def finish_transaction(self, transaction: Transaction) -> None:
        """Record a transaction's final outcome."""
        ...

    async def note_late_response(self, transaction: Transaction) -> None:
        """Record when an answer came for a transaction already final."""
        ...

    async def forget_payloads(
        self, *, delivered_before: datetime, now: datetime, limit: int
    ) -> int:
        """Remove the payload from up to `limit` answered transactions whose outcome was
        delivered (published to the consumer) before `delivered_before`, oldest first,
        keeping its digest; returns how many. Others' locks are skipped."""
        ...

    # The audit log.

    async def append_audit(self, entry: AuditEntry, at: datetime) -> None:
        """Append a record to the hash chain, after every record appended before it."""
        ...

    async def citizen_requests(self, citizen: str, limit: int) -> list[tuple[AuditEntry, datetime]]:
        """The latest record of each transaction about a citizen (late answers and
        unverified records aside), with when it was recorded, newest first."""
        ...
