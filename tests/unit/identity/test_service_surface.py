"""The development SMS gateway and the HTTP surface, without a broker."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

import pytest

from services.identity.adapters.sms_gateway import log_message
from services.identity.bootstrap import build
from shared.envelope import Envelope
from shared.events.identity import SmsRequested

MESSAGE = SmsRequested(
    message_id=uuid.uuid4(),
    mobile="+989121234567",
    text="Your Panjereh sign-in code: 482913",
    purpose="one_time_code",
    expires_at=datetime(2026, 3, 20, 8, 35, tzinfo=UTC),
)


def logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)


@pytest.mark.parametrize("reveal", [True, False])
async def test_the_development_gateway_shows_the_code_only_in_development(
    caplog: pytest.LogCaptureFixture, reveal: bool
) -> None:
    caplog.set_level(logging.INFO)
    await log_message(reveal_text=reveal)(Envelope.wrap(MESSAGE, source="t", subject="m"))
    text = logged(caplog)
    assert "+98912***4567" in text
    assert "1234567" not in text
    assert ("482913" in text) is reveal


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
