"""A small world for the exchange's use cases: a consumer and a provider agency with
their keys, a data service of the provider's, and the consumer's right to it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from joserfc.jwk import ECKey

from services.exchange.domain.authorisation import AgencyKey
from services.exchange.domain.registers import AccessRight, DataService
from services.exchange.domain.transaction import Transaction
from shared.events.catalog import AgencyRecorded
from shared.events.exchange import DataProvided, DataRefused, DataRequested
from shared.signing import generate_key, public_jwk, sign_event
from tests.unit.exchange.fakes import FakeExchangeWork

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CITIZEN = "ab" * 32
CONSUMER = "social-security"
PROVIDER = "civil-registration"
SERVICE_ID = f"{PROVIDER}.vital-status"
PURPOSE = "benefit-eligibility"
LEGAL_BASIS = "National Data and Information Law, art. 5"


def ended(transaction: Transaction | None, status: str, reason: str) -> Transaction:
    """The transaction, once checked that it ended with `status` for a reason starting `reason`."""
    assert transaction is not None
    assert transaction.status == status
    assert transaction.reason is not None
    assert transaction.reason.startswith(reason)
    return transaction


@dataclass
class Signer:
    """An agency's system and the key it signs with."""

    agency: str
    key: ECKey = field(default_factory=generate_key)
    kid: str = ""

    def __post_init__(self) -> None:
        self.kid = self.kid or f"{self.agency}-1"

    def published(self) -> AgencyKey:
        return AgencyKey(
            kid=self.kid,
            agency=self.agency,
            algorithm="ES256",
            jwk=public_jwk(self.key),
            not_before=NOW - timedelta(days=1),
            expires_at=None,
            revoked_at=None,
        )

    def request(self, **changes: Any) -> DataRequested:
        fields: dict[str, Any] = {
            "transaction_id": uuid.uuid4(),
            "consumer": self.agency,
            "data_service": SERVICE_ID,
            "purpose": PURPOSE,
            "payload": {"citizen": CITIZEN},
            "citizen": CITIZEN,
            "signature": "-",
        } | changes
        request = DataRequested(**fields)
        return request.model_copy(update={"signature": sign_event(request, self.key, self.kid)})

    def provide(self, transaction_id: uuid.UUID, payload: dict[str, Any]) -> DataProvided:
        answer = DataProvided(
            transaction_id=transaction_id, provider=self.agency, payload=payload, signature="-"
        )
        return answer.model_copy(update={"signature": sign_event(answer, self.key, self.kid)})

    def refuse(self, transaction_id: uuid.UUID, reason: str) -> DataRefused:
        refusal = DataRefused(
            transaction_id=transaction_id, provider=self.agency, reason=reason, signature="-"
        )
        return refusal.model_copy(update={"signature": sign_event(refusal, self.key, self.kid)})


def recorded(code: str, *, active: bool = True, revision: int = 1) -> AgencyRecorded:
    return AgencyRecorded(
        code=code,
        name_fa=f"دستگاه {code}",
        name_en=f"Agency {code}",
        ministry_fa=None,
        ministry_en=None,
        province=None,
        window_connected_since=None,
        exchange_connected_since=date(2024, 1, 1),
        active=active,
        revision=revision,
    )


SERVICE = DataService(
    data_service=SERVICE_ID,
    version=1,
    provider=PROVIDER,
    request_schema={"type": "object", "required": ["citizen"]},
    response_schema={
        "type": "object",
        "required": ["alive"],
        "properties": {"alive": {"type": "boolean"}},
    },
    timeout_ms=5000,
    purposes=(PURPOSE,),
    personal_data=True,
    active=True,
)

RIGHT = AccessRight(
    right_id=uuid.UUID("0a9b8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d"),
    consumer=CONSUMER,
    data_service=SERVICE_ID,
    purposes=(PURPOSE,),
    legal_basis=LEGAL_BASIS,
    valid_from=NOW - timedelta(days=30),
    valid_until=None,
    revoked_at=None,
)


@dataclass
class World:
    work: FakeExchangeWork
    consumer: Signer
    provider: Signer


def world() -> World:
    """Both agencies registered with their keys, the data service, the consumer's right."""
    consumer, provider = Signer(CONSUMER), Signer(PROVIDER)
    work = FakeExchangeWork()
    for signer in (consumer, provider):
        work.agencies[signer.agency] = recorded(signer.agency)
        work.keys[signer.kid] = signer.published()
    work.services[SERVICE_ID] = SERVICE
    work.rights[RIGHT.right_id] = RIGHT
    return World(work, consumer, provider)


def pending(**changes: Any) -> Transaction:
    """A transaction forwarded at NOW, due five seconds later."""
    fields: dict[str, Any] = {
        "transaction_id": uuid.uuid4(),
        "consumer": CONSUMER,
        "provider": PROVIDER,
        "data_service": SERVICE_ID,
        "purpose": PURPOSE,
        "citizen": CITIZEN,
        "personal_data": True,
        "request_bytes": 80,
        "requested_at": NOW,
        "forwarded_at": NOW,
        "deadline": NOW + timedelta(seconds=5),
    } | changes
    return Transaction(**fields)
