"""The metrics service's own message codes, in Persian and English."""

from __future__ import annotations

from shared.messages import register_messages

register_messages(
    {
        "unknown_granularity": {
            "fa": (
                "بازه زمانی ناشناخته است؛ یکی از "
                "minute، hour، day، week، quarter، year یا all_time."
            ),
            "en": "Unknown granularity; use minute, hour, day, week, quarter, year or all_time.",
        },
        "invalid_dimensions": {
            "fa": "ابعاد باید به شکل نام=مقدار و جدا شده با ویرگول باشند.",
            "en": "Dimensions must be name=value pairs separated by commas.",
        },
    }
)
