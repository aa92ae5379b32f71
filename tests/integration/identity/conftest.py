"""Identity running in-process against the session's real Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import re
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.identity.adapters.sms_gateway import SmsGatewaySettings
from services.identity.bootstrap import build
from services.identity.domain.citizens import national_id_check_digit, pseudonym
from services.identity.settings import IdentitySettings
from shared.db import apply_migrations
from shared.events.identity import SmsContent, SmsRequested
from shared.kafka_access import KafkaAccess
from shared.registry import decode
from shared.topics import Topic
from tests.integration.kafka_helpers import read_all

OPERATOR = "integration-operator-token"


def new_national_id() -> str:
    while True:
        first = f"{random.randrange(10**9):09d}"
        if len(set(first)) > 1:
            return first + str(national_id_check_digit(first))


def new_mobile() -> str:
    return f"0912{random.randrange(10**7):07d}".replace("0000", "0001")


@pytest.fixture(scope="module")
def settings(
    credentials_file: Callable[[str], str], database_urls: Mapping[str, str]
) -> IdentitySettings:
    return IdentitySettings(
        kafka_credentials_file=credentials_file("identity"),
        sms_gateway_credentials_file=credentials_file("sms-gateway"),
        database_url=database_urls["identity"],
        code_resend_seconds=0,
        citizen_max_failures=5,
        address_max_failures=6,
        key_publish_ahead_seconds=0,
        operator_token=OPERATOR,
        issuer="http://identity.test",
    )


@pytest.fixture(scope="module")
async def app(settings: IdentitySettings, admin_database_url: str) -> AsyncIterator[FastAPI]:
    await apply_migrations(admin_database_url, "identity")
    application = build(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def client_for(app: FastAPI) -> Callable[[str], httpx.AsyncClient]:
    """An HTTP client whose requests come from one client address."""

    def make(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://identity.test")

    return make


@pytest.fixture
async def client(
    client_for: Callable[[str], httpx.AsyncClient],
) -> AsyncIterator[httpx.AsyncClient]:
    address = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
    async with client_for(address) as http:
        yield http


def citizen_of(national_id: str, settings: IdentitySettings) -> str:
    return pseudonym(national_id, settings.pseudonym_key_bytes)


async def register(http: httpx.AsyncClient, national_id: str, mobile: str) -> httpx.Response:
    return await http.post(
        "/citizens",
        json={
            "national_id": national_id,
            "mobile": mobile,
            "first_name": "مریم",
            "last_name": "رضایی",
            "birth_date": "1365/06/31",
            "province": "IR-23",
        },
    )


@dataclass(frozen=True)
class SentSms:
    """A text message as it lies on `identity.sms`, and what the gateway's key opens."""

    value: bytes
    message: SmsRequested
    content: SmsContent

    @property
    def code(self) -> str:
        match = re.search(r"code: (\d{6})", self.content.text)
        assert match is not None, self.content.text
        return match.group(1)


async def sms_sent_to(kafka: KafkaAccess, mobile_e164: str, count: int) -> list[SentSms]:
    """Every text message the SMS topic carries for a mobile, oldest first, once `count`
    arrived, each opened with the (development) gateway's private key."""
    gateway = SmsGatewaySettings().opening_key

    def sent(records: list[Any]) -> list[SentSms]:
        found = []
        for record in records:
            message = decode(record.value, Topic.IDENTITY_SMS).payload
            assert isinstance(message, SmsRequested)
            content = message.open(gateway)
            if content.mobile == mobile_e164:
                found.append(SentSms(record.value, message, content))
        return sorted(found, key=lambda sms: sms.message.expires_at)

    records = await read_all(
        kafka, Topic.IDENTITY_SMS, until=lambda rs: len(sent(rs)) >= count, timeout=30
    )
    found = sent(records)
    assert len(found) >= count, f"{len(found)} of {count} codes arrived on identity.sms"
    return found


async def codes_sent_to(kafka: KafkaAccess, mobile_e164: str, count: int) -> list[str]:
    """Every code the SMS topic carries for a mobile, oldest first, once `count` arrived."""
    return [sms.code for sms in await sms_sent_to(kafka, mobile_e164, count)]


async def code_sent_to(kafka: KafkaAccess, mobile_e164: str, after: int = 0) -> str:
    """The newest code the SMS topic carries for a mobile (beyond `after` earlier ones)."""
    return (await codes_sent_to(kafka, mobile_e164, after + 1))[-1]


async def events_about(
    kafka: KafkaAccess, topic: Topic, subject: str, until: Callable[[list[Any]], bool]
) -> tuple[list[Any], list[bytes]]:
    """Decoded payloads on a topic whose envelope subject is `subject`, and their raw bytes."""

    def mine(records: list[Any]) -> list[Any]:
        return [r for r in records if r.key == subject.encode()]

    records = await read_all(kafka, topic, until=lambda rs: until(mine(rs)), timeout=30)
    chosen = mine(records)
    return [decode(r.value, topic).payload for r in chosen], [r.value for r in chosen]


async def eventually(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.2)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
