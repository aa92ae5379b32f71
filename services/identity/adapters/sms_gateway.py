"""The SMS gateway: the only reader of `identity.sms`, the only holder of the key that
opens what identity sealed there, and the only sender of text messages.

Two of them. The development gateway opens each message, logs it, and hands it to the
simulated phones on `development.phones`; it logs the text (and so the code) only in
development, and identity refuses to run it in production. The real gateway opens each
message and sends it through an `SmsProvider`: `HttpSmsProvider`, the SMS provider's
HTTP service, whose contract is:

    POST <PANJEREH_SMS_GATEWAY_PROVIDER_URL>
    Authorization: Bearer <PANJEREH_SMS_GATEWAY_PROVIDER_TOKEN>   (if set)
    {"message_id": "<uuid>", "to": "+989121234567", "text": "...",
     "expires_at": "2026-03-20T08:35:00+00:00"}

    2xx                    accepted; the provider sends it once per message_id (the
                           gateway may post a message again after a crash or a timeout)
    408, 429, 5xx          not now: retried with backoff, then again by the consumer
                           until the message expires (an expired code is not sent)
    other 4xx              never: the record is dead-lettered, still sealed

Each call has a timeout; after repeated failures a circuit breaker stops calling for a
while, then lets one trial call through. Either gateway runs beside identity, in its
process, as its own Kafka principal (`sms-gateway`) and with its own settings.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.identity.adapters.http_client import (
    Partner,
    PartnerRefused,
    PartnerSettings,
    PartnerUnavailable,
)
from services.identity.domain.citizens import mask_mobile
from services.identity.settings import IdentitySettings
from shared.envelope import Envelope
from shared.events.development import SmsDelivered
from shared.events.identity import SmsRequested
from shared.kafka import EventConsumer, Handler, Rejected, Transient, new_producer, publish
from shared.kafka_access import CredentialsError, KafkaAccess
from shared.logging import get_logger
from shared.principals import Principal
from shared.runtime import Runtime
from shared.sealed_box import OpenError, OpeningKey
from shared.settings import Environment
from shared.topics import Topic

log = get_logger(__name__)

GROUP = "sms-gateway"

# base64 of b"panjereh-development-sms-gateway": development and tests only. Its public
# half is identity's DEVELOPMENT_SMS_GATEWAY_PUBLIC_KEY.
DEVELOPMENT_SMS_GATEWAY_PRIVATE_KEY = "cGFuamVyZWgtZGV2ZWxvcG1lbnQtc21zLWdhdGV3YXk="


class SmsGatewaySettings(BaseSettings):
    """The SMS gateway's own settings: the private key that opens what identity seals.

    Identity's settings hold only the public key; this key never sits in them.
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    environment: Environment = Field(
        default="development",
        validation_alias=AliasChoices("PANJEREH_ENVIRONMENT", "environment"),
    )
    private_key: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_SMS_GATEWAY_PRIVATE_KEY),
        validation_alias=AliasChoices("PANJEREH_SMS_GATEWAY_PRIVATE_KEY", "private_key"),
        description="The gateway's X25519 private key, base64 of 32 bytes.",
    )

    provider_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("PANJEREH_SMS_GATEWAY_PROVIDER_URL", "provider_url"),
        description="The SMS provider's HTTP endpoint (the contract is in this module).",
    )
    provider_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("PANJEREH_SMS_GATEWAY_PROVIDER_TOKEN", "provider_token"),
    )
    provider_timeout_seconds: float = Field(
        default=3.0,
        gt=0,
        validation_alias=AliasChoices(
            "PANJEREH_SMS_GATEWAY_PROVIDER_TIMEOUT_SECONDS", "provider_timeout_seconds"
        ),
    )
    provider_retries: int = Field(
        default=2,
        ge=0,
        validation_alias=AliasChoices("PANJEREH_SMS_GATEWAY_PROVIDER_RETRIES", "provider_retries"),
    )

    @property
    def provider(self) -> PartnerSettings:
        if not self.provider_url:
            raise ValueError(
                "the SMS gateway sends through its provider: set PANJEREH_SMS_GATEWAY_PROVIDER_URL"
            )
        token = self.provider_token.get_secret_value() if self.provider_token else None
        return PartnerSettings(
            url=self.provider_url,
            token=token,
            timeout_seconds=self.provider_timeout_seconds,
            retries=self.provider_retries,
        )

    @model_validator(mode="after")
    def _real_key_in_production(self) -> SmsGatewaySettings:
        value = self.private_key.get_secret_value()
        OpeningKey(value)  # a malformed key fails at start
        if self.environment == "production" and value.strip() == (
            DEVELOPMENT_SMS_GATEWAY_PRIVATE_KEY
        ):
            raise ValueError(
                "PANJEREH_SMS_GATEWAY_PRIVATE_KEY needs the gateway's real private key in "
                "production, not the development key"
            )
        return self

    @property
    def opening_key(self) -> OpeningKey:
        return OpeningKey(self.private_key.get_secret_value())


Deliver = Callable[[Envelope[SmsDelivered]], Awaitable[None]]


def deliver_message(
    key: OpeningKey, deliver: Deliver, *, reveal_text: bool, now: Callable[[], datetime]
) -> Handler:
    """The consumer's handler: open one message, log it, and deliver it to the phones.

    A message this key cannot open is rejected (dead-lettered, still sealed); one already
    expired is logged and not delivered. Delivery failures raise, so the consumer retries.
    """

    async def handle(envelope: Envelope[Any]) -> None:
        message = envelope.payload
        if not isinstance(message, SmsRequested):
            return
        try:
            content = message.open(key)
        except OpenError as error:
            raise Rejected(str(error)) from None
        fields: dict[str, Any] = {
            "message_id": str(message.message_id),
            "to": mask_mobile(content.mobile),
            "purpose": message.purpose,
        }
        if message.expires_at <= now():
            log.info("sms expired before it was sent (development gateway)", **fields)
            return
        if reveal_text:
            fields["text"] = content.text
        await deliver(
            Envelope.wrap(
                SmsDelivered(
                    message_id=message.message_id,
                    mobile=content.mobile,
                    text=content.text,
                    purpose=message.purpose,
                    expires_at=message.expires_at,
                ),
                source=Principal.SMS_GATEWAY.value,
                subject=str(message.message_id),
                correlation_id=envelope.correlation_id,
            )
        )
        log.info("sms sent (development gateway)", **fields)

    return handle


@dataclass(frozen=True)
class OutgoingSms:
    """A text message, opened, as the provider is handed it."""

    message_id: uuid.UUID
    mobile: str
    text: str
    expires_at: datetime


class SmsProviderUnavailable(Exception):
    """The provider cannot take the message now; later it may."""


class SmsRefused(Exception):
    """The provider will never take this message."""


class SmsProvider(Protocol):
    """The port. Contract: `send` returns once the provider has accepted the message (it
    sends each message id once), or raises `SmsProviderUnavailable` (retried until the
    message expires) or `SmsRefused` (the record is dead-lettered)."""

    async def send(self, message: OutgoingSms) -> None: ...


class HttpSmsProvider:
    """The SMS provider's HTTP service (the contract in this module's docstring)."""

    def __init__(self, partner: Partner) -> None:
        self.partner = partner

    @classmethod
    def at(cls, settings: PartnerSettings) -> HttpSmsProvider:
        return cls(Partner("sms provider", settings))

    async def send(self, message: OutgoingSms) -> None:
        body = {
            "message_id": str(message.message_id),
            "to": message.mobile,
            "text": message.text,
            "expires_at": message.expires_at.isoformat(),
        }
        try:
            await self.partner.post(body)
        except PartnerUnavailable as error:
            raise SmsProviderUnavailable(str(error)) from None
        except PartnerRefused as error:
            raise SmsRefused(str(error)) from None

    async def aclose(self) -> None:
        await self.partner.aclose()


def send_message(key: OpeningKey, provider: SmsProvider, *, now: Callable[[], datetime]) -> Handler:
    """The real gateway's handler: open one message and hand it to the provider. A message
    this key cannot open, or the provider refuses, is rejected (dead-lettered, still
    sealed); one already expired is dropped; a provider that cannot take it now is waited
    out (the consumer retries with backoff), until the message expires."""

    async def handle(envelope: Envelope[Any]) -> None:
        message = envelope.payload
        if not isinstance(message, SmsRequested):
            return
        try:
            content = message.open(key)
        except OpenError as error:
            raise Rejected(str(error)) from None
        fields = {"message_id": str(message.message_id), "to": mask_mobile(content.mobile)}
        if message.expires_at <= now():
            log.info("sms expired before it was sent", **fields)
            return
        outgoing = OutgoingSms(message.message_id, content.mobile, content.text, message.expires_at)
        try:
            await provider.send(outgoing)
        except SmsRefused as error:
            raise Rejected(str(error)) from None
        except SmsProviderUnavailable as error:
            raise Transient(str(error)) from None
        log.info("sms handed to the provider", **fields)

    return handle


def gateway_access(settings: IdentitySettings) -> KafkaAccess:
    """The gateway's own principal: the only one that may read the SMS topic. Identity's
    principal may not."""
    path = settings.sms_gateway_credentials_file
    if not path:
        raise CredentialsError(
            "the development SMS gateway needs its own Kafka credentials: set "
            "PANJEREH_IDENTITY_SMS_GATEWAY_CREDENTIALS_FILE (`panjereh credentials sms-gateway`)"
        )
    return KafkaAccess.read(path)


async def _started_producer(kafka: KafkaAccess) -> AIOKafkaProducer:
    """The phones' producer, once the broker answers (an absent broker is waited out, as
    the consumer waits it out)."""
    attempt = 0
    while True:
        producer = new_producer(kafka, client_id=f"{GROUP}-phones")
        try:
            await producer.start()
            return producer
        except BaseException as error:
            # Stopped whatever happened, cancellation included: no connection outlives it.
            await producer.stop()
            if not isinstance(error, KafkaError | OSError):
                raise
            attempt += 1
            log.warning("sms gateway cannot reach the broker, retrying", error=repr(error))
            await asyncio.sleep(min(10.0, 0.5 * 2**attempt))


async def run_development_gateway(settings: IdentitySettings, gateway: SmsGatewaySettings) -> None:
    """Consume `identity.sms` as the gateway's principal and group until cancelled."""
    kafka = gateway_access(settings)
    key = gateway.opening_key
    phones = await _started_producer(kafka)

    async def deliver(envelope: Envelope[SmsDelivered]) -> None:
        await publish(phones, envelope)

    consumer = EventConsumer(
        group=GROUP,
        topics=[Topic.IDENTITY_SMS],
        handler=deliver_message(
            key,
            deliver,
            reveal_text=settings.environment == "development",
            now=lambda: datetime.now(UTC),
        ),
        kafka=kafka,
    )
    try:
        await consumer.run()
    finally:
        await consumer.stop()
        await phones.stop()


async def run_gateway(
    settings: IdentitySettings, gateway: SmsGatewaySettings, provider: SmsProvider
) -> None:
    """The real gateway: consume `identity.sms` as the gateway's principal and group, and
    send through `provider`, until cancelled."""
    consumer = EventConsumer(
        group=GROUP,
        topics=[Topic.IDENTITY_SMS],
        handler=send_message(gateway.opening_key, provider, now=lambda: datetime.now(UTC)),
        kafka=gateway_access(settings),
    )
    try:
        await consumer.run()
    finally:
        await consumer.stop()


def provider_gateway(
    gateway: SmsGatewaySettings,
) -> Callable[[Runtime], Coroutine[Any, Any, None]]:
    """A background task of the service: the real gateway with the HTTP provider."""
    partner = gateway.provider  # a missing provider address fails at start

    async def run(runtime: Runtime) -> None:
        assert isinstance(runtime.settings, IdentitySettings)
        provider = HttpSmsProvider.at(partner)
        try:
            await run_gateway(runtime.settings, gateway, provider)
        finally:
            await provider.aclose()

    return run


def development_gateway(
    gateway: SmsGatewaySettings,
) -> Callable[[Runtime], Coroutine[Any, Any, None]]:
    """A background task of the service: the gateway, beside identity in its process."""

    async def run(runtime: Runtime) -> None:
        assert isinstance(runtime.settings, IdentitySettings)
        await run_development_gateway(runtime.settings, gateway)

    return run
