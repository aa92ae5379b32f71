"""Events identity, the catalog and the exchange would publish, made up for metrics tests.

The metrics service builds against the contracts only; tests stand in for the services
that produce these events.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.envelope import Envelope
from shared.events.catalog import (
    AgencyRecorded,
    DeliveryRecorded,
    Outcome,
    ServiceRecorded,
    ServiceStatus,
)
from shared.events.exchange import FinalOutcome, TransactionRecorded
from shared.events.identity import (
    AuthenticationFailed,
    CitizenAuthenticated,
    CitizenLockedOut,
    CitizenRegistered,
    FailureReason,
)
from shared.vocabulary import AuthenticationChannel, Channel, Maturity

AT = datetime(2024, 3, 20, 8, 30, tzinfo=UTC)  # 1403-01-01 12:00 in Tehran


def citizen(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def transaction(
    consumer: str,
    *,
    provider: str = "civil-registration",
    data_service: str = "civil-registration.vital-status",
    purpose: str = "benefit-eligibility",
    outcome: FinalOutcome = "answered",
    at: datetime = AT,
    exchange_ms: float = 10.0,
    provider_ms: float | None = 90.0,
) -> Envelope[Any]:
    tx = uuid.uuid4()
    payload = TransactionRecorded(
        transaction_id=tx,
        consumer=consumer,
        provider=provider,
        data_service=data_service,
        purpose=purpose,
        outcome=outcome,
        request_bytes=200,
        response_bytes=100,
        requested_at=at - timedelta(milliseconds=exchange_ms + (provider_ms or 0)),
        completed_at=at,
        exchange_ms=exchange_ms,
        provider_ms=provider_ms,
        personal_data=True,
    )
    return Envelope.wrap(payload, source="exchange", subject=str(tx), occurred_at=at)


def authenticated(
    who: str,
    *,
    province: str = "IR-15",
    channel: AuthenticationChannel = "web",
    birth_year: int = 1985,
    at: datetime = AT,
) -> Envelope[Any]:
    payload = CitizenAuthenticated(
        citizen=who,
        channel=channel,
        level_of_assurance=2,
        province=province,
        birth_year=birth_year,
    )
    return Envelope.wrap(payload, source="identity", subject=who, occurred_at=at)


def registered(who: str, *, province: str = "IR-15", at: datetime = AT) -> Envelope[Any]:
    payload = CitizenRegistered(citizen=who, province=province, birth_year=1985)
    return Envelope.wrap(payload, source="identity", subject=who, occurred_at=at)


def failed(who: str, *, reason: FailureReason = "wrong_code", at: datetime = AT) -> Envelope[Any]:
    payload = AuthenticationFailed(citizen=who, channel="web", reason=reason)
    return Envelope.wrap(payload, source="identity", subject=who, occurred_at=at)


def locked_out(who: str, *, at: datetime = AT) -> Envelope[Any]:
    payload = CitizenLockedOut(
        citizen=who, until=at + timedelta(minutes=30), failed_attempts=5, scope="citizen"
    )
    return Envelope.wrap(payload, source="identity", subject=who, occurred_at=at)


def delivery(
    agency: str,
    *,
    service: str | None = None,
    channel: Channel = "online",
    province: str = "IR-15",
    outcome: Outcome = "completed",
    at: datetime = AT,
    report_id: uuid.UUID | None = None,
) -> Envelope[Any]:
    from shared.events.catalog import delivery_event_id

    report = report_id or uuid.uuid4()
    service_id = service or f"{agency}.service"
    payload = DeliveryRecorded(
        report_id=report,
        agency=agency,
        service_id=service_id,
        channel=channel,
        province=province,
        started_at=at - timedelta(minutes=1),
        finished_at=at,
        outcome=outcome,
        maturity=4,
    )
    return Envelope.wrap(
        payload,
        source="catalog",
        subject=service_id,
        occurred_at=at,
        event_id=delivery_event_id(report),
    )


def service(
    agency: str,
    number: int,
    *,
    maturity: Maturity,
    status: ServiceStatus = "published",
    revision: int = 1,
) -> Envelope[Any]:
    service_id = f"{agency}.service-{number}"
    payload = ServiceRecorded(
        service_id=service_id,
        agency=agency,
        title_fa="خدمت آزمایشی",
        title_en="A test service",
        description_fa="برای آزمون",
        description_en="For tests",
        category="test",
        audiences=["citizens"],
        channels=["online"],
        maturity=maturity,
        data_needs=[],
        status=status,
        revision=revision,
    )
    return Envelope.wrap(payload, source="catalog", subject=service_id)


def agency(
    code: str, *, window: bool = True, exchange: bool = True, revision: int = 1
) -> Envelope[Any]:
    payload = AgencyRecorded(
        code=code,
        name_fa="سازمان آزمایشی",
        name_en="A test agency",
        ministry_fa=None,
        ministry_en=None,
        province=None,
        window_connected_since=AT.date() if window else None,
        exchange_connected_since=AT.date() if exchange else None,
        active=True,
        revision=revision,
    )
    return Envelope.wrap(payload, source="catalog", subject=code)


def unique_agency(prefix: str = "ag") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def shuffled(items: list[Any], seed: int = 7) -> list[Any]:
    copy = list(items)
    random.Random(seed).shuffle(copy)
    return copy
