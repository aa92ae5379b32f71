"""The development SMS gateway: consumes `identity.sms` and logs each message.

In production a real gateway consumes the topic. This one logs the text (and so the
code) only in development; elsewhere it logs that a message would be sent, and to whom,
masked.
"""

from __future__ import annotations

from typing import Any

from services.identity.domain.citizens import mask_mobile
from shared.envelope import Envelope
from shared.events.identity import SmsRequested
from shared.kafka import EventConsumer
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


async def run_development_gateway(runtime: Runtime) -> None:
    """A background task of the service: the gateway, as its own consumer group."""
    consumer = EventConsumer(
        group=GROUP,
        topics=[Topic.IDENTITY_SMS],
        handler=log_message(reveal_text=runtime.settings.environment == "development"),
        bootstrap_servers=runtime.settings.kafka_bootstrap_servers,
    )
    try:
        await consumer.run()
    finally:
        await consumer.stop()
