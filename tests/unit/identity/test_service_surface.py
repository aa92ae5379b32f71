"""The development SMS gateway, its keys, and the HTTP surface, without a broker."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.identity.adapters.sms_gateway import (
    DEVELOPMENT_SMS_GATEWAY_PRIVATE_KEY,
    SmsGatewaySettings,
    deliver_message,
)
from services.identity.bootstrap import build
from services.identity.settings import DEVELOPMENT_SMS_GATEWAY_PUBLIC_KEY, IdentitySettings
from shared.envelope import Envelope
from shared.events.development import SmsDelivered
from shared.events.identity import SmsContent, SmsRequested
from shared.kafka import Rejected
from shared.sealed_box import OpeningKey, SealingKey, new_key_pair
from shared.sealing import new_key

NOW = datetime(2026, 3, 20, 8, 33, tzinfo=UTC)
CONTENT = SmsContent(mobile="+989121234567", text="Your Panjereh sign-in code: 482913")
GATEWAY = OpeningKey(DEVELOPMENT_SMS_GATEWAY_PRIVATE_KEY)


def request(
    key: str = DEVELOPMENT_SMS_GATEWAY_PUBLIC_KEY, expires_at: datetime = NOW + timedelta(minutes=2)
) -> Envelope[SmsRequested]:
    message = SmsRequested.sealed_to(
        SealingKey(key),
        CONTENT,
        message_id=uuid.uuid4(),
        purpose="one_time_code",
        expires_at=expires_at,
    )
    return Envelope.wrap(message, source="identity", subject=str(message.message_id))


def logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)


async def run_gateway(
    envelope: Envelope[SmsRequested], *, reveal: bool = False
) -> list[Envelope[SmsDelivered]]:
    delivered: list[Envelope[SmsDelivered]] = []

    async def deliver(phone: Envelope[SmsDelivered]) -> None:
        delivered.append(phone)

    await deliver_message(GATEWAY, deliver, reveal_text=reveal, now=lambda: NOW)(envelope)
    return delivered


@pytest.mark.parametrize("reveal", [True, False])
async def test_the_development_gateway_shows_the_code_only_in_development(
    caplog: pytest.LogCaptureFixture, reveal: bool
) -> None:
    caplog.set_level(logging.INFO)
    await run_gateway(request(), reveal=reveal)
    text = logged(caplog)
    assert "+98912***4567" in text
    assert "1234567" not in text
    assert ("482913" in text) is reveal


async def test_the_development_gateway_delivers_what_it_opened_to_the_phones() -> None:
    sent = request()
    [delivered] = await run_gateway(sent)
    assert delivered.payload.mobile == CONTENT.mobile
    assert delivered.payload.text == CONTENT.text
    assert delivered.payload.message_id == sent.payload.message_id
    assert delivered.correlation_id == sent.correlation_id
    assert delivered.source == "sms-gateway"


async def test_a_message_sealed_to_another_key_is_refused_and_delivered_nowhere() -> None:
    with pytest.raises(Rejected, match="sealed to key"):
        await run_gateway(request(key=new_key_pair()[1]))


async def test_a_message_moved_into_another_message_is_refused() -> None:
    sent = request()
    moved = sent.payload.model_copy(update={"message_id": uuid.uuid4()})
    with pytest.raises(Rejected, match="does not open"):
        await run_gateway(Envelope.wrap(moved, source="identity", subject="m"))


async def test_an_expired_message_is_not_delivered() -> None:
    assert await run_gateway(request(expires_at=NOW - timedelta(seconds=1))) == []


def test_the_development_keys_are_one_pair() -> None:
    assert GATEWAY.public == DEVELOPMENT_SMS_GATEWAY_PUBLIC_KEY
    assert SmsGatewaySettings().opening_key.key_id == IdentitySettings().sms_gateway_key.key_id


def production_identity(**overrides: str) -> IdentitySettings:
    settings = {
        "environment": "production",
        "database_url": "postgresql://u:a-real-password@db/panjereh",
        "data_key": new_key(),
        "pseudonym_key": "p" * 40,
        "operator_token": "o" * 40,
        "sms_gateway": "off",
        "sms_gateway_public_key": new_key_pair()[1],
        "operator_check": "http",
        "operator_check_url": "https://regulator.example/check",
        **overrides,
    }
    return IdentitySettings(**settings)  # type: ignore[arg-type]


def test_production_identity_refuses_the_development_gateway() -> None:
    assert production_identity().sms_gateway == "off"
    with pytest.raises(ValidationError, match="SMS_GATEWAY=log runs the development SMS gateway"):
        production_identity(sms_gateway="log")


def test_production_identity_refuses_the_development_public_key() -> None:
    with pytest.raises(ValidationError, match="PANJEREH_IDENTITY_SMS_GATEWAY_PUBLIC_KEY"):
        production_identity(sms_gateway_public_key=DEVELOPMENT_SMS_GATEWAY_PUBLIC_KEY)


def test_identity_takes_the_gateways_public_key_from_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, public = new_key_pair()
    monkeypatch.setenv("PANJEREH_IDENTITY_SMS_GATEWAY_PUBLIC_KEY", public)
    assert IdentitySettings().sms_gateway_public_key == public
    monkeypatch.setenv("PANJEREH_IDENTITY_SMS_GATEWAY_PUBLIC_KEY", "not a key")
    with pytest.raises(ValidationError, match="base64"):
        IdentitySettings()


def test_production_gateway_refuses_the_development_private_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PANJEREH_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="PANJEREH_SMS_GATEWAY_PRIVATE_KEY"):
        SmsGatewaySettings()
    private, public = new_key_pair()
    monkeypatch.setenv("PANJEREH_SMS_GATEWAY_PRIVATE_KEY", private)
    gateway = SmsGatewaySettings()
    assert gateway.opening_key.public == public
    assert private not in repr(gateway)
    monkeypatch.setenv("PANJEREH_SMS_GATEWAY_PRIVATE_KEY", "c2hvcnQ=")
    with pytest.raises(ValidationError, match="32 bytes"):
        SmsGatewaySettings()


def test_identitys_settings_never_hold_the_private_key() -> None:
    assert not [name for name in IdentitySettings.model_fields if "private" in name]


def test_the_openapi_document_lists_every_endpoint() -> None:
    paths = set(build().openapi()["paths"])
    assert {
        "/.well-known/openid-configuration",
        "/.well-known/jwks.json",
        "/citizens",
        "/citizens/sign-in/code",
        "/citizens/sign-in",
        "/citizens/me/sign-ins",
        "/oauth/token",
        "/oauth/revoke",
        "/agency-keys",
        "/operator/agencies/{agency}/clients",
    } <= paths
