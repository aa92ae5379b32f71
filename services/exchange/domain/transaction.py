"""A transaction: one request's way from its consumer to exactly one final outcome.

`Transaction` is what the exchange keeps of one request. Its methods decide each step
(a request forwarded or denied, an answer taken, a deadline passed, a late answer
ignored) and return a `Step`: the transaction as it now stands, the audit record of the
step, and the events that announce it, signed by the exchange. Nothing here does I/O;
the use cases load a transaction, ask it, and store what it decided.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, TypeVar

from joserfc.jwk import Key

from services.exchange.domain.audit import AuditEntry, AuditKind, digest
from services.exchange.domain.authorisation import Authorised, Denied, schema_problem
from services.exchange.domain.registers import DataService
from shared.events.exchange import (
    DataProvided,
    DataRefused,
    DataRequestCompleted,
    DataRequested,
    DataRequestForwarded,
    FinalOutcome,
    TransactionRecorded,
)
from shared.signing import canonical, sign_event, signed_content

Outcome = FinalOutcome
Status = Literal["pending", "answered", "denied", "refused", "timed_out", "failed"]
Answer = DataProvided | DataRefused
Announcement = DataRequestForwarded | DataRequestCompleted | TransactionRecorded

TIMED_OUT = "timed_out: the provider did not answer before the deadline"
# The audit outcome of a message whose signature did not hold: what it claims is not
# known to be its sender's.
UNVERIFIED = "unverified"

Signed = TypeVar("Signed", DataRequestForwarded, DataRequestCompleted)


@dataclass(frozen=True)
class ExchangeSigner:
    """The exchange's own signing key: what it forwards and every outcome carry its signature."""

    kid: str
    key: Key

    def sign(self, event: Signed) -> Signed:
        return event.model_copy(update={"signature": sign_event(event, self.key, self.kid)})


def digest_payload(payload: Mapping[str, Any]) -> str:
    """What stays of a payload once it is no longer kept: SHA-256 of its canonical JSON."""
    return digest(canonical(dict(payload)))


def payload_size(payload: Mapping[str, Any] | None) -> int:
    """The size of a payload as monitoring counts it: its canonical JSON, in bytes."""
    return 0 if payload is None else len(canonical(dict(payload)))


@dataclass(frozen=True)
class Step:
    """What one step decided: the transaction after it, its audit record, its events."""

    transaction: Transaction
    audit: AuditEntry
    at: datetime
    events: tuple[Announcement, ...] = ()


@dataclass(frozen=True)
class Transaction:
    """One request's transaction; `pending` until it reaches one final outcome."""

    transaction_id: uuid.UUID
    consumer: str
    provider: str | None
    data_service: str
    purpose: str
    citizen: str | None
    personal_data: bool
    request_bytes: int
    requested_at: datetime
    status: Status = "pending"
    reason: str | None = None
    forwarded_at: datetime | None = None
    deadline: datetime | None = None
    response_bytes: int = 0
    responded_at: datetime | None = None
    completed_at: datetime | None = None
    late_response_at: datetime | None = None
    completion: DataRequestCompleted | None = None
    # What stays of an answered payload once it has been delivered and kept for the
    # retention period: its digest (SHA-256 of its canonical JSON), and when it went.
    payload_digest: str | None = None
    payload_removed_at: datetime | None = None

    @property
    def final(self) -> bool:
        return self.status != "pending"

    def overdue(self, now: datetime) -> bool:
        """Still pending, and its deadline has passed."""
        return not self.final and self.deadline is not None and self.deadline <= now

    def answered_by(self, provider: str) -> bool:
        return self.provider == provider

    @classmethod
    def receive(
        cls,
        request: DataRequested,
        decision: Authorised | Denied,
        *,
        service: DataService | None,
        now: datetime,
        signer: ExchangeSigner,
    ) -> Step:
        """A consumer's request becomes a transaction: forwarded to its provider, or denied.

        A request whose signature did not hold is recorded as unverified: denied, without
        the citizen it names (it may name anyone), so that it is never shown as a request
        about them. Its consumer is the agency whose channel it came on.
        """
        unverified = isinstance(decision, Denied) and not decision.verified
        received = cls(
            transaction_id=request.transaction_id,
            consumer=request.consumer,
            provider=None if service is None else service.provider,
            data_service=request.data_service,
            purpose=request.purpose,
            citizen=None if unverified else request.citizen,
            personal_data=request.citizen is not None if service is None else service.personal_data,
            request_bytes=payload_size(request.payload),
            requested_at=now,
        )
        if isinstance(decision, Denied):
            denied, events = received._complete("denied", now, signer, reason=decision.reason)
            audit = received._audit(
                "request",
                UNVERIFIED if unverified else "denied",
                reason=decision.reason,
                message=request,
            )
            return Step(denied, audit, now, events)
        forwarded = replace(received, forwarded_at=now, deadline=decision.deadline)
        onward = DataRequestForwarded(
            transaction_id=request.transaction_id,
            consumer=request.consumer,
            provider=decision.service.provider,
            data_service=request.data_service,
            purpose=request.purpose,
            payload=request.payload,
            citizen=request.citizen,
            deadline=decision.deadline,
            signature="-",
        )
        audit = forwarded._audit(
            "request", "forwarded", legal_basis=decision.right.legal_basis, message=request
        )
        return Step(forwarded, audit, now, (signer.sign(onward),))

    def take_answer(
        self,
        answer: Answer,
        *,
        signature_problem: str | None,
        response_schema: dict[str, Any] | None,
        now: datetime,
        signer: ExchangeSigner,
    ) -> Step:
        """The provider's answer ends the transaction: answered or refused as it says, or
        failed when its signature (or, for data, the response schema) does not hold."""
        outcome, payload, reason = _verdict(answer, signature_problem, response_schema or {})
        final, events = self._complete(
            outcome, now, signer, reason=reason, payload=payload, responded_at=now
        )
        return Step(
            final, self._audit("response", outcome, reason=reason, message=answer), now, events
        )

    def time_out(self, now: datetime, signer: ExchangeSigner) -> Step:
        """No answer came by the deadline: the transaction ends timed out."""
        final, events = self._complete("timed_out", now, signer, reason=TIMED_OUT)
        return Step(final, self._audit("timeout", "timed_out", reason=TIMED_OUT), now, events)

    def ignore_late_answer(
        self, answer: Answer, now: datetime, *, signature_problem: str | None
    ) -> Step:
        """An answer to a final transaction changes nothing; the audit log keeps it, as
        the provider's once its signature held, as unverified (and not noted on the
        transaction) when it did not."""
        if signature_problem is not None:
            audit = self._audit(
                "late_response", UNVERIFIED, reason=signature_problem, message=answer
            )
            return Step(self, audit, now)
        noted = replace(self, late_response_at=now)
        reason = f"already {self.status}"
        return Step(
            noted, self._audit("late_response", "ignored", reason=reason, message=answer), now
        )

    def _complete(
        self,
        outcome: Outcome,
        now: datetime,
        signer: ExchangeSigner,
        *,
        reason: str | None = None,
        payload: dict[str, Any] | None = None,
        responded_at: datetime | None = None,
    ) -> tuple[Transaction, tuple[Announcement, ...]]:
        """Final, and announced: to its consumer (signed) and to monitoring."""
        completion = signer.sign(
            DataRequestCompleted(
                transaction_id=self.transaction_id,
                consumer=self.consumer,
                provider=self.provider,
                data_service=self.data_service,
                outcome=outcome,
                payload=payload,
                reason=reason,
                signature="-",
            )
        )
        final = replace(
            self,
            status=outcome,
            reason=reason,
            response_bytes=payload_size(payload),
            responded_at=responded_at,
            completed_at=now,
            completion=completion,
            payload_digest=None if payload is None else digest_payload(payload),
        )
        return final, (completion, final._monitoring(outcome, now))

    def _monitoring(self, outcome: Outcome, completed_at: datetime) -> TransactionRecorded:
        """The operational monitoring record: the exchange's time apart from the provider's."""
        total = (completed_at - self.requested_at).total_seconds() * 1000
        provider_ms: float | None = None
        exchange_ms = total
        if self.responded_at is not None and self.forwarded_at is not None:
            provider_ms = max(0.0, (self.responded_at - self.forwarded_at).total_seconds() * 1000)
            exchange_ms = total - provider_ms
        elif outcome == "timed_out" and self.forwarded_at is not None and self.deadline is not None:
            # Waiting for a silent provider is not the exchange's time.
            exchange_ms = total - (self.deadline - self.forwarded_at).total_seconds() * 1000
        return TransactionRecorded(
            transaction_id=self.transaction_id,
            consumer=self.consumer,
            provider=self.provider,
            data_service=self.data_service,
            purpose=self.purpose,
            outcome=outcome,
            request_bytes=self.request_bytes,
            response_bytes=self.response_bytes,
            requested_at=self.requested_at,
            completed_at=completed_at,
            exchange_ms=max(0.0, exchange_ms),
            provider_ms=provider_ms,
            personal_data=self.personal_data,
        )

    def _audit(
        self,
        kind: AuditKind,
        outcome: str,
        *,
        reason: str | None = None,
        legal_basis: str | None = None,
        message: DataRequested | Answer | None = None,
    ) -> AuditEntry:
        """The audit record of a step; a message is kept as the digest of what was signed."""
        return AuditEntry(
            transaction_id=self.transaction_id,
            kind=kind,
            outcome=outcome,
            consumer=self.consumer,
            provider=self.provider,
            data_service=self.data_service,
            purpose=self.purpose,
            legal_basis=legal_basis,
            citizen=self.citizen,
            reason=reason,
            content_digest=None if message is None else digest(signed_content(message)),
            signature=None if message is None else message.signature,
        )


def _verdict(
    answer: Answer, signature_problem: str | None, response_schema: dict[str, Any]
) -> tuple[Outcome, dict[str, Any] | None, str | None]:
    """(outcome, payload delivered, reason) for a provider's answer."""
    if isinstance(answer, DataRefused):
        if signature_problem is not None:
            return "failed", None, signature_problem
        return "refused", None, f"refused: {answer.reason}"
    problem = signature_problem
    if problem is None:
        invalid = schema_problem(answer.payload, response_schema)
        problem = None if invalid is None else f"invalid_answer: {invalid}"
    if problem is not None:
        return "failed", None, problem
    return "answered", answer.payload, None
