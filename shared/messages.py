"""Text that users see, in Persian and in English, keyed by a stable code."""

from __future__ import annotations

from typing import Literal

Language = Literal["fa", "en"]

MESSAGES: dict[str, dict[Language, str]] = {
    "invalid_request": {
        "fa": "درخواست نامعتبر است.",
        "en": "The request is invalid.",
    },
    "not_found": {
        "fa": "آنچه خواستید پیدا نشد.",
        "en": "What you asked for was not found.",
    },
    "method_not_allowed": {
        "fa": "این روش برای این نشانی پذیرفته نیست.",
        "en": "This method is not allowed on this address.",
    },
    "http_error": {
        "fa": "درخواست پذیرفته نشد.",
        "en": "The request was not accepted.",
    },
    # Shared by every service that takes a province's code (deliveries, provincial reports).
    "unknown_province": {
        "fa": "این استان شناخته نیست؛ کد استان از IR-00 تا IR-30 است.",
        "en": "This province is not known; province codes run from IR-00 to IR-30.",
    },
    # Shared by every service that checks an agency against its projection of the register.
    "unknown_agency": {
        "fa": "این دستگاه در فهرست دستگاه‌ها نیست یا فعال نیست.",
        "en": "This agency is not in the register, or it is not active.",
    },
    "unauthenticated": {
        "fa": "ورود لازم است یا اعتبار آن پایان یافته است.",
        "en": "Authentication is required, or it is no longer valid.",
    },
    "forbidden": {
        "fa": "اجازه این کار را ندارید.",
        "en": "You are not allowed to do this.",
    },
    "internal_error": {
        "fa": "خطای داخلی رخ داد؛ رویداد ثبت شد.",
        "en": "An internal error occurred; it has been logged.",
    },
    "unavailable": {
        "fa": "سرویس اکنون در دسترس نیست.",
        "en": "The service is not available right now.",
    },
    # Bounds on what a request may carry (shared.input_guard), and on the events it causes.
    "request_too_large": {
        "fa": "بدنه درخواست از اندازه مجاز بزرگ‌تر است.",
        "en": "The request body is larger than allowed.",
    },
    "uri_too_long": {
        "fa": "نشانی یا پرس‌وجوی درخواست از اندازه مجاز بلندتر است.",
        "en": "The request's address or query string is longer than allowed.",
    },
    "headers_too_large": {
        "fa": "سرآیندهای درخواست از اندازه یا شمار مجاز بیشترند.",
        "en": "The request's headers are larger or more numerous than allowed.",
    },
    "invalid_characters": {
        "fa": "درخواست نویسه‌ای ناپذیرفتنی دارد: نویسه تهی (NUL)، نیم‌جفت جایگزین "
        "یا بایت‌هایی که UTF-8 نیستند.",
        "en": "The request holds a character that is not accepted: a NUL, an unpaired "
        "surrogate, or bytes that are not UTF-8.",
    },
    "inexact_number": {
        "fa": "عددی در درخواست هست که JSON آن را دقیق نمی‌رساند "
        "(صحیحِ بیرون از ±(2^53−1)، NaN یا بی‌نهایت).",
        "en": "The request holds a number JSON does not carry exactly (an integer beyond "
        "±(2^53−1), NaN or infinity).",
    },
    "event_too_large": {
        "fa": "رویدادی که این درخواست پدید می‌آورد از بیشینه اندازه رکورد موضوع آن بزرگ‌تر است.",
        "en": "The event this request would cause is larger than its topic's maximum record size.",
    },
}


def register_messages(messages: dict[str, dict[Language, str]]) -> None:
    """Add a service's own message codes (each in Persian and English) to the catalog.

    A service calls this once, at import of its `messages.py`; a code defined twice with
    different texts is a mistake, and refused.
    """
    for code, texts in messages.items():
        if set(texts) != {"fa", "en"} or not all(t.strip() for t in texts.values()):
            raise ValueError(f"message {code!r} needs non-empty Persian and English texts")
        if code in MESSAGES and MESSAGES[code] != texts:
            raise ValueError(f"message {code!r} is already defined differently")
        MESSAGES[code] = texts


def message(code: str, language: Language) -> str:
    return MESSAGES[code][language]


def preferred_language(accept_language: str | None) -> Language:
    """Persian unless the client prefers English (RFC 9110 Accept-Language, simplified)."""
    best: tuple[float, Language] = (0.0, "fa")
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        primary = tag.strip().lower().split("-")[0]
        if primary in ("fa", "en") and quality > best[0]:
            best = (quality, "fa" if primary == "fa" else "en")
    return best[1]
