"""The development SMS gateway: consumes `identity.sms` and logs each message.

In production a real gateway consumes the topic. This one logs the text (and so the
code) only in development; elsewhere it logs that a message would be sent, and to whom,
masked.
"""

from __future__ import annotations

from typing import Any

from services.identity.domain.citizens import mask_mobile
from services.identity.settings import IdentitySettings
from shared.envelope import Envelope
from shared.events.identity import SmsRequested
from shared.kafka import EventConsumer
from shared.kafka_access import CredentialsError, KafkaAccess
from shared.logging import get_logger
from shared.runtime import Runtime
from shared.topics import Topic

log = get_logger(__name__)

GROUP = "sms-gateway"


def log_message(reveal_text: bool) -> Any:
    """The consumer's handler: log one message; never fails (a log line has no retries)."""

    async def handle(envelope: Envelope[Any]) -> None:
        message = envelope.payload
        if not isinstance(message, SmsRequested):
            return
        fields: dict[str, Any] = {
            "message_id": str(message.message_id),
            "to": mask_mobile(message.mobile),
            "purpose": message.purpose,
        }
        if reveal_text:
            fields["text"] = message.text
        log.info("sms sent (development gateway)", **fields)

    return handle


def gateway_access(settings: IdentitySettings) -> KafkaAccess:
    """The gateway's own principal: the only one, with the simulator's phones in
    development, that may read the SMS topic. Identity's principal may not."""
    path = settings.sms_gateway_credentials_file
    if not path:
        raise CredentialsError(
            "the development SMS gateway needs its own Kafka credentials: set "
            "PANJEREH_IDENTITY_SMS_GATEWAY_CREDENTIALS_FILE (`panjereh credentials sms-gateway`)"
        )
    return KafkaAccess.read(path)


async def run_development_gateway(runtime: Runtime) -> None:
    """A background task of the service: the gateway, as its own consumer group."""
    settings = runtime.settings
    assert isinstance(settings, IdentitySettings)
    consumer = EventConsumer(
        group=GROUP,
        topics=[Topic.IDENTITY_SMS],
        handler=log_message(reveal_text=settings.environment == "development"),
        kafka=gateway_access(settings),
    )
    try:
        await consumer.run()
    finally:
        await consumer.stop()
