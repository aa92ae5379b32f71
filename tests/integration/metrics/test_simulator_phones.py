"""The simulated citizens' phones receive their one-time codes through the development
channel: the development SMS gateway opens each sealed message on `identity.sms` and
delivers it on `development.phones`, which the phones read as the simulator's principal."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from services.identity.adapters.sms_gateway import SmsGatewaySettings, run_development_gateway
from services.identity.settings import IdentitySettings
from shared.envelope import Envelope
from shared.events.identity import SmsContent, SmsRequested
from shared.kafka import new_producer, publish
from shared.kafka_access import KafkaAccess
from shared.principals import Principal
from simulator.actors import Phones


async def test_a_phone_receives_the_code_sent_to_its_mobile(
    kafka_as: Callable[[str], KafkaAccess], credentials_file: Callable[[str], str]
) -> None:
    identity = IdentitySettings(sms_gateway_credentials_file=credentials_file("sms-gateway"))
    gateway = asyncio.create_task(run_development_gateway(identity, SmsGatewaySettings()))
    phones = Phones(kafka_as(Principal.SIMULATOR), f"phones-test-{uuid.uuid4().hex[:8]}")
    await asyncio.wait_for(phones.start(), 60)
    mobile = f"+9891{uuid.uuid4().int % 10**8:08d}"
    other = f"+9893{uuid.uuid4().int % 10**8:08d}"
    # Identity's place: only it may write identity.sms.
    producer = new_producer(kafka_as(Principal.IDENTITY), client_id="phones-test")
    await producer.start()
    try:
        code = phones.expect_code(mobile)
        for to, digits in ((other, "111111"), (mobile, "۴۸۲۹۱۳")):
            message = SmsRequested.sealed_to(
                identity.sms_gateway_key,
                SmsContent(mobile=to, text=f"کد ورود شما به پنجره ملی خدمات: {digits}"),
                message_id=uuid.uuid4(),
                purpose="one_time_code",
                expires_at=datetime.now(UTC) + timedelta(minutes=2),
            )
            subject = str(message.message_id)
            await publish(producer, Envelope.wrap(message, source="identity", subject=subject))
        assert await asyncio.wait_for(code, 60) == "482913"
    finally:
        await producer.stop()
        await phones.stop()
        gateway.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await gateway
