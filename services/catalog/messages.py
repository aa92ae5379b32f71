"""The catalog's own problem codes, in Persian and English."""

from __future__ import annotations

from shared.messages import register_messages

register_messages(
    {
        "agency_exists": {
            "fa": "این دستگاه پیش‌تر ثبت شده است.",
            "en": "This agency is already registered.",
        },
        "agency_inactive": {
            "fa": "این دستگاه فعال نیست.",
            "en": "This agency is not active.",
        },
        "not_operator": {
            "fa": "فقط گرداننده پنجره ملی می‌تواند دستگاه‌ها را ثبت یا ویرایش کند.",
            "en": "Only the window's operator may register or change agencies.",
        },
        "not_your_service": {
            "fa": "هر دستگاه فقط خدمات خود را ویرایش یا گزارش می‌کند.",
            "en": "An agency may only change or report its own services.",
        },
        "service_exists": {
            "fa": "خدمتی با این شناسه پیش‌تر ثبت شده است.",
            "en": "A service with this id already exists.",
        },
        "service_retired": {
            "fa": "این خدمت بازنشسته شده است.",
            "en": "This service is retired.",
        },
        "service_not_published": {
            "fa": "این خدمت هنوز منتشر نشده است.",
            "en": "This service is not published.",
        },
        "status_transition_refused": {
            "fa": "این تغییر وضعیت برای خدمت مجاز نیست.",
            "en": "This change of the service's status is not allowed.",
        },
        "invalid_change": {
            "fa": "این تغییر مجاز نیست.",
            "en": "This change is not allowed.",
        },
        "unknown_service": {
            "fa": "این خدمت در فهرست خدمات نیست.",
            "en": "This service is not in the register.",
        },
        "wrong_agency": {
            "fa": "این خدمت از آن دستگاه گزارش‌دهنده نیست.",
            "en": "This service does not belong to the reporting agency.",
        },
        "impossible_times": {
            "fa": "زمان‌های گزارش ممکن نیست (پایان پیش از آغاز یا در آینده).",
            "en": "The report's times are impossible (finished before started, or in the future).",
        },
        "channel_not_offered": {
            "fa": "این خدمت از این مجرا ارائه نمی‌شود.",
            "en": "This service is not offered through this channel.",
        },
        "outside_agency_scope": {
            "fa": "این استان در حوزه دستگاه نیست.",
            "en": "This province is outside the agency's scope.",
        },
        "invalid_delivery": {
            "fa": "گزارش ارائه خدمت پذیرفته نشد.",
            "en": "The delivery report was refused.",
        },
    }
)
