"""The simulated citizens' phones read their one-time codes from `identity.sms`."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from services.metrics.actors import Phones
from shared.envelope import Envelope
from shared.events.identity import SmsRequested
from shared.kafka import new_producer, publish
from shared.kafka_access import KafkaAccess


async def test_a_phone_receives_the_code_sent_to_its_mobile(kafka_admin: KafkaAccess) -> None:
    phones = Phones(kafka_admin, f"phones-test-{uuid.uuid4().hex[:8]}")
    await asyncio.wait_for(phones.start(), 60)
    mobile = f"+9891{uuid.uuid4().int % 10**8:08d}"
    other = f"+9893{uuid.uuid4().int % 10**8:08d}"
    producer = new_producer(kafka_admin, client_id="phones-test")
    await producer.start()
    try:
        code = phones.expect_code(mobile)
        for to, digits in ((other, "111111"), (mobile, "۴۸۲۹۱۳")):
            message = SmsRequested(
                message_id=uuid.uuid4(),
                mobile=to,
                text=f"کد ورود شما به پنجره ملی خدمات: {digits}",
                purpose="one_time_code",
                expires_at=datetime.now(UTC) + timedelta(minutes=2),
            )
            await publish(producer, Envelope.wrap(message, source="identity", subject=to))
        assert await asyncio.wait_for(code, 30) == "482913"
    finally:
        await producer.stop()
        await phones.stop()
