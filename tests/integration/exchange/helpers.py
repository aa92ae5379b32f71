"""A small world for exchange tests: two agencies with keys, an issuer of tokens.

Identity and the catalog are other services: tests announce what those would (agencies,
agency keys, the token issuer's key) by publishing their events straight to Kafka.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from joserfc import jwt
from joserfc.jwk import ECKey

from services.exchange.domain.audit import AuditEntry
from shared.envelope import Envelope, Event
from shared.events.catalog import AgencyRecorded
from shared.events.identity import AgencyKeyPublished, IssuerKeyPublished
from shared.kafka import new_producer, publish
from shared.kafka_access import KafkaAccess
from shared.signing import generate_key, public_jwk, sign_event
from tests.tokens import access_claims

ISSUER = "https://identity.exchange-tests"
T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 60) -> T:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert loop.time() < deadline, "timed out waiting"
        await asyncio.sleep(0.1)


@dataclass
class Issuer:
    """Stands in for identity's token issuer."""

    key: ECKey = field(default_factory=lambda: ECKey.generate_key("P-256", private=True))
    kid: str = field(default_factory=lambda: f"test-issuer-{uuid.uuid4().hex[:8]}")

    def record(self) -> IssuerKeyPublished:
        return IssuerKeyPublished(
            issuer=ISSUER,
            kid=self.kid,
            algorithm="ES256",
            jwk=public_jwk(self.key) | {"kid": self.kid},
            not_before=datetime.now(UTC) - timedelta(minutes=5),
            retired_at=None,
        )

    def token(
        self, subject: str, *, agency: str | None = None, scope: str = "", loa: int | None = None
    ) -> str:
        claims = access_claims(ISSUER, subject, scope, seconds=3600)
        if agency is not None:
            claims["agency"] = agency
        if loa is not None:
            claims["loa"] = loa
        return jwt.encode({"alg": "ES256", "kid": self.kid}, claims, self.key)

    def headers(self, subject: str, **claims: Any) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token(subject, **claims)}"}


@dataclass
class AgencySystem:
    """An agency and the key its systems sign with."""

    code: str
    key: ECKey = field(default_factory=generate_key)
    kid: str = ""

    def __post_init__(self) -> None:
        self.kid = self.kid or f"{self.code}-{uuid.uuid4().hex[:6]}"

    def recorded(self) -> AgencyRecorded:
        return AgencyRecorded(
            code=self.code,
            name_fa=f"دستگاه {self.code}",
            name_en=f"Agency {self.code}",
            ministry_fa=None,
            ministry_en=None,
            province=None,
            window_connected_since=None,
            exchange_connected_since=date(2024, 1, 1),
            active=True,
            revision=1,
        )

    def key_published(self) -> AgencyKeyPublished:
        return AgencyKeyPublished(
            agency=self.code,
            kid=self.kid,
            algorithm="ES256",
            jwk=public_jwk(self.key),
            not_before=datetime.now(UTC) - timedelta(minutes=5),
            expires_at=None,
        )


@dataclass
class ExchangeStandIn:
    """Stands in for the exchange towards agencies' readers run in a test: they are given
    this key as the exchange's."""

    key: ECKey = field(default_factory=generate_key)
    kid: str = field(default_factory=lambda: f"exchange-stand-in-{uuid.uuid4().hex[:8]}")

    def keys(self) -> dict[str, dict[str, Any]]:
        return {self.kid: {**public_jwk(self.key), "kid": self.kid, "alg": "ES256"}}

    def signed(self, payload: Event) -> Event:
        return payload.model_copy(update={"signature": sign_event(payload, self.key, self.kid)})


def run_id() -> str:
    return uuid.uuid4().hex[:8]


async def announce(kafka: KafkaAccess, *events: tuple[Event, str]) -> None:
    """Publish events (with their subjects) as the services that own them would."""
    producer: AIOKafkaProducer = new_producer(kafka, client_id="exchange-tests")
    await producer.start()
    try:
        for event, subject in events:
            await publish(producer, Envelope.wrap(event, source="tests", subject=subject))
    finally:
        await producer.stop()


async def announce_world(
    kafka: KafkaAccess, database_url: str, issuer: Issuer, *agencies: AgencySystem
) -> None:
    """Announce the issuer and the agencies with their keys, and wait until the exchange
    has projected every agency and key: they travel on different topics and partitions,
    so one being known says nothing of the others."""
    events: list[tuple[Event, str]] = [(issuer.record(), issuer.kid)]
    for agency in agencies:
        events += [(agency.recorded(), agency.code), (agency.key_published(), agency.kid)]
    await announce(kafka, *events)
    connection = await asyncpg.connect(database_url)
    try:

        async def all_projected() -> bool:
            known = await connection.fetchval(
                "SELECT (SELECT count(*) FROM exchange.agencies WHERE code = ANY($1::text[]))"
                " + (SELECT count(*) FROM exchange.agency_keys WHERE kid = ANY($2::text[]))",
                [agency.code for agency in agencies],
                [agency.kid for agency in agencies],
            )
            return bool(known == 2 * len(agencies))

        await eventually(all_projected)
    finally:
        await connection.close()


VITAL_STATUS: dict[str, Any] = {
    "version": 1,
    "name_fa": "وضعیت حیات",
    "name_en": "Vital status",
    "request_schema": {
        "type": "object",
        "required": ["citizen"],
        "properties": {"citizen": {"type": "string"}},
    },
    "response_schema": {
        "type": "object",
        "required": ["alive"],
        "properties": {"alive": {"type": "boolean"}},
    },
    "timeout_ms": 5000,
    "purposes": ["benefit-eligibility"],
    "personal_data": True,
}


async def register_data_service(
    http: httpx.AsyncClient, issuer: Issuer, provider: AgencySystem, name: str, **terms: Any
) -> str:
    """Register a provider's data service (waiting until the exchange knows the agency)."""
    data_service = f"{provider.code}.{name}"
    body = VITAL_STATUS | terms | {"data_service": data_service}
    headers = issuer.headers(
        f"{provider.code}-system", agency=provider.code, scope="exchange:provide"
    )

    async def attempt() -> bool:
        response = await http.post("/data-services", json=body, headers=headers)
        assert response.status_code in (201, 401, 422), response.text
        return response.status_code == 201

    await eventually(attempt)
    return data_service


async def grant(
    http: httpx.AsyncClient,
    issuer: Issuer,
    consumer: AgencySystem,
    data_service: str,
    purposes: list[str] | None = None,
) -> str:
    body = {
        "consumer": consumer.code,
        "data_service": data_service,
        "purposes": purposes or ["benefit-eligibility"],
        "legal_basis": "National Data and Information Law, art. 5",
        "valid_from": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
        "valid_until": None,
    }
    headers = issuer.headers("exchange-admin", scope="exchange:admin")
    response = await http.post("/access-rights", json=body, headers=headers)
    assert response.status_code == 201, response.text
    right_id: str = response.json()["right_id"]
    return right_id


def audit_entry(*, purpose: str = "benefit-eligibility", citizen: str = "cd" * 32) -> AuditEntry:
    """An audit record of a forwarded request, as the exchange appends one."""
    return AuditEntry(
        transaction_id=uuid.uuid4(),
        kind="request",
        outcome="forwarded",
        consumer="social-security",
        provider="civil-registration",
        data_service="civil-registration.vital-status",
        purpose=purpose,
        legal_basis="National Data and Information Law, art. 5",
        citizen=citizen,
        reason=None,
        content_digest="ab" * 32,
        signature="header..signature",
    )


async def audit_verify(
    schema: str, database_url: str, kafka: KafkaAccess, keys: Path
) -> tuple[int, str]:
    """Run `panjereh audit verify`, held to the checkpoints the exchange's `keys` (a saved
    copy of its `/keys`) verify, as an operator would: its exit status and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "infra.cli", "audit", "verify", "--schema", schema, "--keys", str(keys)),
        stdout=asyncio.subprocess.PIPE,
        env=os.environ | kafka.environment() | {"PANJEREH_DATABASE_URL": database_url},
    )
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()
