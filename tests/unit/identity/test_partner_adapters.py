"""The operator check and the SMS provider over HTTP, against a fake partner served on a
local socket in the test: answers, slowness, failures, a partner that is down, and the
circuit breaker opening and closing."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from pydantic import ValidationError

from services.identity.adapters.http_client import PartnerSettings
from services.identity.adapters.operator_check import HttpOperatorCheck, OperatorCheckUnavailable
from services.identity.adapters.sms_gateway import (
    HttpSmsProvider,
    OutgoingSms,
    SmsGatewaySettings,
    SmsProviderUnavailable,
    SmsRefused,
    send_message,
)
from services.identity.bootstrap import build
from services.identity.settings import IdentitySettings
from shared.envelope import Envelope
from shared.events.identity import SmsContent, SmsRequested
from shared.kafka import Rejected, Transient
from shared.sealed_box import new_key_pair
from shared.sealing import new_key

NATIONAL_ID, MOBILE = "0012345679", "+989121234567"


@dataclass
class FakePartner:
    """A partner's HTTP service whose behaviour the test sets: each answer in `script` is
    used once (then `then`); an answer is a status, or "slow" (it never answers in time)."""

    script: list[int | str] = field(default_factory=list)
    then: int | str = 200
    body: dict[str, Any] = field(default_factory=lambda: {"owned": True})
    received: list[tuple[dict[str, Any], str | None]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((await request.json(), request.headers.get("authorization")))
        answer = self.script.pop(0) if self.script else self.then
        if answer == "slow":
            await asyncio.sleep(1)
            answer = 200
        assert isinstance(answer, int)
        return web.json_response(self.body if answer < 400 else {"error": "no"}, status=answer)


@pytest.fixture
async def partner() -> AsyncIterator[tuple[FakePartner, str]]:
    fake = FakePartner()
    app = web.Application()
    app.router.add_post("/check", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield fake, f"http://127.0.0.1:{port}/check"
    finally:
        await runner.cleanup()


def a_port_nobody_listens_on() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# A partner that should answer gets ample time: the fake serves on the test's own event loop,
# and a loaded machine has stalled it past a tight timeout. Only the tests of slowness set one.
ROOM_TO_ANSWER = 5.0


def checking(url: str, clock: Clock | None = None, **changes: Any) -> HttpOperatorCheck:
    settings = PartnerSettings(
        url=url, token="regulator-token", timeout_seconds=ROOM_TO_ANSWER, backoff_seconds=0.01
    )
    settings = PartnerSettings(**{**settings.__dict__, **changes})
    check = HttpOperatorCheck.at(settings)
    if clock is not None:
        check.partner.breaker._clock = clock
    return check


async def test_the_operator_check_asks_the_regulator_and_takes_its_answer(
    partner: tuple[FakePartner, str],
) -> None:
    fake, url = partner
    check = checking(url)
    assert await check.mobile_belongs_to(NATIONAL_ID, MOBILE) is True
    fake.body = {"owned": False}
    assert await check.mobile_belongs_to(NATIONAL_ID, MOBILE) is False
    assert fake.received[0] == (
        {"national_id": NATIONAL_ID, "mobile": MOBILE},
        "Bearer regulator-token",
    )
    await check.aclose()


async def test_an_answer_without_a_yes_or_no_proves_nothing(
    partner: tuple[FakePartner, str],
) -> None:
    fake, url = partner
    fake.body = {"owned": "maybe"}
    check = checking(url)
    with pytest.raises(OperatorCheckUnavailable):
        await check.mobile_belongs_to(NATIONAL_ID, MOBILE)
    await check.aclose()


async def test_a_failing_regulator_is_retried_with_backoff_and_its_recovery_answers(
    partner: tuple[FakePartner, str],
) -> None:
    fake, url = partner
    fake.script = [503, 500]
    check = checking(url, retries=2)
    assert await check.mobile_belongs_to(NATIONAL_ID, MOBILE) is True
    assert len(fake.received) == 3
    await check.aclose()


async def test_a_regulator_failing_past_the_retries_is_unavailable(
    partner: tuple[FakePartner, str],
) -> None:
    fake, url = partner
    fake.then = 502
    check = checking(url, retries=2)
    with pytest.raises(OperatorCheckUnavailable, match="502"):
        await check.mobile_belongs_to(NATIONAL_ID, MOBILE)
    assert len(fake.received) == 3
    await check.aclose()


async def test_a_slow_regulator_is_given_up_on_after_the_timeout(
    partner: tuple[FakePartner, str],
) -> None:
    fake, url = partner
    fake.then = "slow"
    check = checking(url, retries=1, timeout_seconds=0.2)
    began = time.monotonic()
    with pytest.raises(OperatorCheckUnavailable, match="Timeout"):
        await check.mobile_belongs_to(NATIONAL_ID, MOBILE)
    assert time.monotonic() - began < 2.0
    await check.aclose()


async def test_a_regulator_that_is_down_is_unavailable() -> None:
    check = checking(f"http://127.0.0.1:{a_port_nobody_listens_on()}/check", retries=1)
    with pytest.raises(OperatorCheckUnavailable, match="ConnectError"):
        await check.mobile_belongs_to(NATIONAL_ID, MOBILE)
    await check.aclose()


async def test_a_request_the_regulator_calls_wrong_is_not_retried(
    partner: tuple[FakePartner, str],
) -> None:
    fake, url = partner
    fake.then = 400
    check = checking(url, retries=3)
    with pytest.raises(OperatorCheckUnavailable, match="400"):
        await check.mobile_belongs_to(NATIONAL_ID, MOBILE)
    assert len(fake.received) == 1
    await check.aclose()


async def test_the_breaker_opens_after_repeated_failures_and_closes_after_a_good_trial(
    partner: tuple[FakePartner, str],
) -> None:
    fake, url = partner
    clock = Clock()
    check = checking(url, clock, retries=0, failures_to_open=3, open_seconds=30)
    fake.then = 503
    for _ in range(3):
        with pytest.raises(OperatorCheckUnavailable):
            await check.mobile_belongs_to(NATIONAL_ID, MOBILE)
    assert state_of(check) == "open"
    # Open: answered at once, the regulator is not called.
    with pytest.raises(OperatorCheckUnavailable, match="circuit open"):
        await check.mobile_belongs_to(NATIONAL_ID, MOBILE)
    assert len(fake.received) == 3
    # After the open period one trial goes through; it fails: open again, for a new period.
    clock.now += 30
    assert state_of(check) == "half_open"
    with pytest.raises(OperatorCheckUnavailable, match="503"):
        await check.mobile_belongs_to(NATIONAL_ID, MOBILE)
    assert state_of(check) == "open"
    assert len(fake.received) == 4
    # The regulator recovers: the next trial closes the breaker.
    fake.then = 200
    clock.now += 30
    assert await check.mobile_belongs_to(NATIONAL_ID, MOBILE) is True
    assert state_of(check) == "closed"
    assert await check.mobile_belongs_to(NATIONAL_ID, MOBILE) is True
    await check.aclose()


def state_of(check: HttpOperatorCheck) -> str:
    return check.partner.breaker.state


def sms(expires_in: timedelta = timedelta(minutes=2)) -> OutgoingSms:
    return OutgoingSms(uuid.uuid4(), MOBILE, "code: 123456", datetime.now(UTC) + expires_in)


def providing(url: str, **changes: Any) -> HttpSmsProvider:
    settings = PartnerSettings(url=url, token="provider-token", timeout_seconds=ROOM_TO_ANSWER)
    return HttpSmsProvider.at(
        PartnerSettings(**{**settings.__dict__, "backoff_seconds": 0.01, **changes})
    )


async def test_the_sms_provider_is_handed_each_message_by_the_contract(
    partner: tuple[FakePartner, str],
) -> None:
    fake, url = partner
    provider = providing(url)
    message = sms()
    await provider.send(message)
    [(body, authorization)] = fake.received
    assert body == {
        "message_id": str(message.message_id),
        "to": MOBILE,
        "text": "code: 123456",
        "expires_at": message.expires_at.isoformat(),
    }
    assert authorization == "Bearer provider-token"
    await provider.aclose()


async def test_a_provider_that_is_down_slow_or_failing_is_unavailable_and_a_refusal_final(
    partner: tuple[FakePartner, str],
) -> None:
    fake, url = partner
    down = providing(f"http://127.0.0.1:{a_port_nobody_listens_on()}/check", retries=0)
    with pytest.raises(SmsProviderUnavailable):
        await down.send(sms())
    await down.aclose()
    provider = providing(url, retries=1, timeout_seconds=0.2)
    fake.then = "slow"
    with pytest.raises(SmsProviderUnavailable):
        await provider.send(sms())
    fake.then = 500
    with pytest.raises(SmsProviderUnavailable):
        await provider.send(sms())
    await provider.aclose()
    # A fresh client with room to answer: the failures above have nearly opened the first
    # one's circuit, and a loaded machine can miss a 0.2 s timeout once more.
    refusing = providing(url, retries=1)
    fake.then = 422
    calls_before = len(fake.received)
    with pytest.raises(SmsRefused):
        await refusing.send(sms())
    assert len(fake.received) == calls_before + 1, "a refusal is final: not retried"
    await refusing.aclose()


class RecordingProvider:
    def __init__(self, error: Exception | None = None) -> None:
        self.sent: list[OutgoingSms] = []
        self.error = error

    async def send(self, message: OutgoingSms) -> None:
        if self.error is not None:
            raise self.error
        self.sent.append(message)


def sealed(expires_at: datetime) -> Envelope[SmsRequested]:
    message = SmsRequested.sealed_to(
        IdentitySettings().sms_gateway_key,
        SmsContent(mobile=MOBILE, text="code: 123456"),
        message_id=uuid.uuid4(),
        purpose="one_time_code",
        expires_at=expires_at,
    )
    return Envelope.wrap(message, source="identity", subject=str(message.message_id))


async def test_the_gateway_hands_messages_to_the_provider_waits_out_outages_and_rejects() -> None:
    key, now = SmsGatewaySettings().opening_key, datetime.now(UTC)
    provider = RecordingProvider()
    await send_message(key, provider, now=lambda: now)(sealed(now + timedelta(minutes=2)))
    assert [(m.mobile, m.text) for m in provider.sent] == [(MOBILE, "code: 123456")]
    # An expired code is not sent.
    await send_message(key, provider, now=lambda: now)(sealed(now - timedelta(seconds=1)))
    assert len(provider.sent) == 1
    with pytest.raises(Transient):
        await send_message(key, RecordingProvider(SmsProviderUnavailable("down")), now=lambda: now)(
            sealed(now + timedelta(minutes=2))
        )
    with pytest.raises(Rejected):
        await send_message(key, RecordingProvider(SmsRefused("no")), now=lambda: now)(
            sealed(now + timedelta(minutes=2))
        )


def production(**overrides: str) -> IdentitySettings:
    settings = {
        "environment": "production",
        "database_url": "postgresql://u:a-real-password@db/panjereh",
        "data_key": new_key(),
        "pseudonym_key": "p" * 40,
        "operator_token": "o" * 40,
        "sms_gateway": "off",
        "sms_gateway_public_key": new_key_pair()[1],
        **overrides,
    }
    return IdentitySettings(**settings)  # type: ignore[arg-type]


def test_production_identity_refuses_to_start_with_the_development_operator_check() -> None:
    with pytest.raises(ValidationError, match="OPERATOR_CHECK=development"):
        production()
    with pytest.raises(ValidationError, match="needs PANJEREH_IDENTITY_OPERATOR_CHECK_URL"):
        production(operator_check="http")
    accepted = production(operator_check="http", operator_check_url="https://regulator/check")
    assert accepted.operator_check == "http"


def test_production_identity_refuses_to_start_with_the_logging_sms_gateway() -> None:
    with pytest.raises(ValidationError, match="SMS_GATEWAY=log"):
        production(
            operator_check="http", operator_check_url="https://regulator/check", sms_gateway="log"
        )


def test_the_real_sms_gateway_will_not_start_without_its_providers_address() -> None:
    settings = IdentitySettings(sms_gateway="http")
    with pytest.raises(ValueError, match="PANJEREH_SMS_GATEWAY_PROVIDER_URL"):
        build(settings, sms_gateway=SmsGatewaySettings())
    build(settings, sms_gateway=SmsGatewaySettings(provider_url="https://sms.example/send"))
