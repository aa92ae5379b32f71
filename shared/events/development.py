"""Events of development-only topics: never created, produced or read in production."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import AwareDatetime, ConfigDict, Field

from shared.envelope import Event
from shared.registry import event
from shared.topics import Topic


@event
class SmsDelivered(Event):
    """The development SMS gateway "delivered" a text message: what the phone shows."""

    event_type = "SmsDelivered"
    schema_version = 1
    topic = Topic.DEVELOPMENT_PHONES
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "message_id": "0d3c1a6e-4b7f-4c55-8f0e-2a9b6c1d3e4f",
                    "mobile": "+989121234567",
                    "text": "کد ورود شما به پنجره ملی خدمات: 482913\nYour Panjereh code: 482913",
                    "purpose": "one_time_code",
                    "expires_at": "2024-03-20T08:35:00Z",
                }
            ]
        }
    )

    message_id: uuid.UUID = Field(description="The `SmsRequested` message it delivers.")
    mobile: str = Field(pattern=r"^\+989[0-9]{9}$", description="E.164, Iranian mobile.")
    text: str = Field(min_length=1, max_length=480)
    purpose: Literal["one_time_code"]
    expires_at: AwareDatetime
