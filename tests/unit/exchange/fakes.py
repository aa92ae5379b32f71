"""A fake unit of work for the exchange's use cases: rows in dictionaries, events in a list.

It keeps the same rules as the SQL of `services.exchange.storage.ExchangeStorage` where
a use case relies on them (a kid stays with its agency and key, a transaction id is
taken once, the latest agency revision wins), and nothing about how the SQL is fast.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from services.exchange.domain.audit import AuditEntry
from services.exchange.domain.authorisation import SIGNATURE_PROBLEM_CODES, AgencyKey
from services.exchange.domain.registers import AccessRight, Agency, DataService
from services.exchange.domain.transaction import ExchangeSigner, Transaction
from services.exchange.use_cases.ports import AnswerContext, RequestContext
from shared.events.catalog import AgencyRecorded
from shared.events.exchange import (
    AccessGranted,
    AccessRevoked,
    DataRequested,
    DataServiceRegistered,
)
from shared.events.identity import AgencyKeyPublished, AgencyKeyRevoked
from shared.signing import generate_key, public_jwk
from tests.unit.fake_outbox import FakeOutbox


def _unsigned_before_it_was_told_apart(entry: AuditEntry) -> bool:
    return (
        entry.kind == "request"
        and entry.outcome == "denied"
        and (entry.reason or "").split(":")[0] in SIGNATURE_PROBLEM_CODES
    )


@dataclass
class FakeExchangeWork(FakeOutbox):
    agencies: dict[str, AgencyRecorded] = field(default_factory=dict)
    keys: dict[str, AgencyKey] = field(default_factory=dict)
    services: dict[str, DataService] = field(default_factory=dict)
    rights: dict[uuid.UUID, AccessRight] = field(default_factory=dict)
    transactions: dict[uuid.UUID, Transaction] = field(default_factory=dict)
    audit: list[tuple[AuditEntry, datetime]] = field(default_factory=list)
    signing_keys: list[ExchangeSigner] = field(default_factory=list)

    # Registers and projections.

    async def agency(self, code: str) -> Agency | None:
        recorded = self.agencies.get(code)
        return None if recorded is None else Agency(recorded.code, recorded.active)

    async def agency_names(self, codes: Sequence[str]) -> dict[str, tuple[str, str]]:
        return {
            code: (self.agencies[code].name_fa, self.agencies[code].name_en)
            for code in codes
            if code in self.agencies
        }

    async def record_agency(self, agency: AgencyRecorded) -> None:
        known = self.agencies.get(agency.code)
        if known is None or known.revision < agency.revision:
            self.agencies[agency.code] = agency

    async def record_agency_key(self, key: AgencyKeyPublished) -> bool:
        known = self.keys.get(key.kid)
        if known is not None and (
            known.agency != key.agency
            or (known.jwk is not None and (known.jwk, known.algorithm) != (key.jwk, key.algorithm))
        ):
            return False
        self.keys[key.kid] = AgencyKey(
            kid=key.kid,
            agency=key.agency,
            algorithm=key.algorithm,
            jwk=key.jwk,
            not_before=key.not_before,
            expires_at=key.expires_at,
            revoked_at=None if known is None else known.revoked_at,
        )
        return True

    async def revoke_agency_key(self, revoked: AgencyKeyRevoked, at: datetime) -> bool:
        known = self.keys.get(revoked.kid)
        if known is None:
            self.keys[revoked.kid] = AgencyKey(
                revoked.kid, revoked.agency, None, None, None, None, revoked_at=at
            )
            return True
        if known.agency != revoked.agency:
            return False
        earliest = at if known.revoked_at is None else min(known.revoked_at, at)
        self.keys[revoked.kid] = replace(known, revoked_at=earliest)
        return True

    async def data_service(self, data_service: str) -> DataService | None:
        return self.services.get(data_service)

    async def data_services(self, provider: str | None) -> list[DataService]:
        return [
            service
            for _, service in sorted(self.services.items())
            if provider is None or service.provider == provider
        ]

    async def save_data_service(self, service: DataServiceRegistered) -> None:
        self.services[service.data_service] = DataService(
            data_service=service.data_service,
            version=service.version,
            provider=service.provider,
            request_schema=service.request_schema,
            response_schema=service.response_schema,
            timeout_ms=service.timeout_ms,
            purposes=tuple(service.purposes),
            personal_data=service.personal_data,
            active=service.active,
        )

    async def access_right(self, right_id: uuid.UUID) -> AccessRight | None:
        return self.rights.get(right_id)

    async def save_right(self, right: AccessGranted) -> None:
        self.rights[right.right_id] = AccessRight(
            right_id=right.right_id,
            consumer=right.consumer,
            data_service=right.data_service,
            purposes=tuple(right.purposes),
            legal_basis=right.legal_basis,
            valid_from=right.valid_from,
            valid_until=right.valid_until,
            revoked_at=None,
            granted_by=right.granted_by,
        )

    async def revoke_right(self, revoked: AccessRevoked, at: datetime) -> bool:
        right = self.rights.get(revoked.right_id)
        if right is None or right.revoked_at is not None:
            return False
        self.rights[revoked.right_id] = replace(
            right, revoked_at=at, revoked_by=revoked.revoked_by, revoked_reason=revoked.reason
        )
        return True

    async def signer(self) -> ExchangeSigner:
        if not self.signing_keys:
            self.signing_keys.append(ExchangeSigner("exchange-test-1", generate_key()))
        return self.signing_keys[-1]

    async def public_keys(self) -> list[tuple[str, dict[str, Any]]]:
        return [(signer.kid, public_jwk(signer.key)) for signer in self.signing_keys]

    # Transactions.

    async def request_context(self, kid: str, request: DataRequested) -> RequestContext:
        recorded = self.agencies.get(request.consumer)
        return RequestContext(
            taken=request.transaction_id in self.transactions,
            key=self.keys.get(kid),
            consumer=None if recorded is None else Agency(recorded.code, recorded.active),
            service=self.services.get(request.data_service),
            rights=sorted(
                (
                    right
                    for right in self.rights.values()
                    if (right.consumer, right.data_service)
                    == (request.consumer, request.data_service)
                ),
                key=lambda right: right.valid_from,
            ),
        )

    async def answer_context(self, transaction_id: uuid.UUID, kid: str) -> AnswerContext | None:
        transaction = self.transactions.get(transaction_id)
        if transaction is None:
            return None
        service = self.services.get(transaction.data_service)
        return AnswerContext(
            transaction=transaction,
            key=self.keys.get(kid),
            response_schema=None if service is None else service.response_schema,
        )

    async def overdue_transactions(self, now: datetime, limit: int) -> list[Transaction]:
        overdue = [t for t in self.transactions.values() if t.overdue(now)]
        return sorted(overdue, key=lambda t: t.deadline or now)[:limit]

    async def transaction(self, transaction_id: uuid.UUID) -> Transaction | None:
        return self.transactions.get(transaction_id)

    async def open_transaction(self, transaction: Transaction) -> None:
        if transaction.transaction_id in self.transactions:
            raise AssertionError("a transaction id is unique: the database would refuse this")
        self.transactions[transaction.transaction_id] = transaction

    async def finish_transaction(self, transaction: Transaction) -> None:
        assert transaction.final
        self.transactions[transaction.transaction_id] = transaction

    async def note_late_response(self, transaction: Transaction) -> None:
        self.transactions[transaction.transaction_id] = transaction

    async def forget_payloads(
        self, *, delivered_before: datetime, now: datetime, limit: int
    ) -> int:
        # Every outcome here counts as delivered when it completed (the fake publishes at once).
        due = sorted(
            (
                t
                for t in self.transactions.values()
                if t.status == "answered"
                and t.payload_removed_at is None
                and t.completed_at is not None
                and t.completed_at < delivered_before
            ),
            key=lambda t: t.completed_at or now,
        )[:limit]
        for t in due:
            assert t.completion is not None
            self.transactions[t.transaction_id] = replace(
                t,
                completion=t.completion.model_copy(update={"payload": None}),
                payload_removed_at=now,
            )
        return len(due)

    # The audit log and the outbox.

    async def append_audit(self, entry: AuditEntry, at: datetime) -> None:
        self.audit.append((entry, at))

    async def citizen_requests(self, citizen: str, limit: int) -> list[tuple[AuditEntry, datetime]]:
        latest: dict[uuid.UUID, tuple[AuditEntry, datetime]] = {}
        for entry, at in self.audit:
            if (
                entry.citizen == citizen
                and entry.kind != "late_response"
                and entry.outcome != "unverified"
                and not _unsigned_before_it_was_told_apart(entry)
            ):
                latest[entry.transaction_id] = (entry, at)
        newest_first = sorted(
            latest.values(), key=lambda record: self.audit.index(record), reverse=True
        )
        return newest_first[:limit]

    def audit_of(self, transaction_id: uuid.UUID) -> list[tuple[str, str, str | None]]:
        """(kind, outcome, reason) of a transaction's audit records, in order."""
        return [
            (entry.kind, entry.outcome, entry.reason)
            for entry, _ in self.audit
            if entry.transaction_id == transaction_id
        ]
