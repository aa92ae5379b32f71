"""The development SMS gateway: opens each message on `identity.sms`, logs it, and hands it
to the simulated phones on `development.phones`.

In production a real gateway, holding the real private key, consumes `identity.sms`;
identity refuses to run this one there. This one logs the text (and so the code) only in
development; in tests it logs that a message would be sent, and to whom, masked. It is the
only reader that can open the sealed text, so it is also the development phones' only
source: they never read `identity.sms`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.identity.domain.citizens import mask_mobile
from services.identity.settings import IdentitySettings
from shared.envelope import Envelope
from shared.events.development import SmsDelivered
from shared.events.identity import SmsRequested
from shared.kafka import EventConsumer, Handler, Rejected, new_producer, publish
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


def development_gateway(
    gateway: SmsGatewaySettings,
) -> Callable[[Runtime], Coroutine[Any, Any, None]]:
    """A background task of the service: the gateway, beside identity in its process."""

    async def run(runtime: Runtime) -> None:
        assert isinstance(runtime.settings, IdentitySettings)
        await run_development_gateway(runtime.settings, gateway)

    return run
