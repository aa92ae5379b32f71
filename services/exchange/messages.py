"""The exchange's problem codes, in Persian and English.

The last three are the reasons its consumers dead-letter an event with, not HTTP problems.
"""

from __future__ import annotations

from shared.messages import register_messages

register_messages(
    {
        "exchange_unknown_agency": {
            "fa": "این دستگاه در فهرست دستگاه‌ها ثبت نشده است.",
            "en": "This agency is not in the register of agencies.",
        },
        "exchange_not_your_data_service": {
            "fa": "هر دستگاه فقط سرویس‌های داده خود را ثبت می‌کند.",
            "en": "An agency registers only its own data services.",
        },
        "exchange_invalid_schema": {
            "fa": (
                "طرح‌واره JSON سرویس داده نامعتبر است یا چیزی دارد که مرکز تبادل اجرا نمی‌کند: "
                "عبارت باقاعده‌ای که RE2 نمی‌پذیرد، ارجاع به بیرون یا ارجاع بازگشتی، "
                "یا اندازه و عمقی بیش از حد."
            ),
            "en": (
                "The data service's JSON schema is invalid, or holds what the exchange does "
                "not run: a regular expression RE2 cannot run, a reference outside the schema "
                "or back to itself, or too great a size or depth."
            ),
        },
        "exchange_unknown_data_service": {
            "fa": "چنین سرویس داده‌ای در مرکز تبادل ثبت نشده است.",
            "en": "No such data service is registered on the exchange.",
        },
        "exchange_purpose_not_served": {
            "fa": "این سرویس داده برای این هدف ارائه نمی‌شود.",
            "en": "The data service does not serve this purpose.",
        },
        "exchange_unknown_right": {
            "fa": "چنین مجوز دسترسی‌ای وجود ندارد.",
            "en": "No such access right exists.",
        },
        "exchange_right_already_revoked": {
            "fa": "این مجوز دسترسی پیش‌تر لغو شده است.",
            "en": "This access right was already revoked.",
        },
        "exchange_invalid_period": {
            "fa": "پایان اعتبار باید پس از آغاز آن باشد.",
            "en": "The end of validity must come after its start.",
        },
        "exchange_not_your_request": {
            "fa": "هر دستگاه فقط از طرف خود درخواست می‌فرستد.",
            "en": "An agency sends requests only on its own behalf.",
        },
        "exchange_unknown_transaction": {
            "fa": "چنین تراکنشی یافت نشد.",
            "en": "No such transaction was found.",
        },
        "exchange_payload_removed": {
            "fa": (
                "پاسخ این تراکنش تحویل شده و دوره نگهداری آن گذشته است؛ "
                "از آن فقط چکیده‌اش نگه داشته می‌شود."
            ),
            "en": (
                "This transaction's answer was delivered and its retention period has "
                "passed; only its digest is kept."
            ),
        },
        "exchange_assurance_too_low": {
            "fa": "برای دیدن این گزارش باید با سطح اطمینان ۲ یا بالاتر وارد شوید.",
            "en": "Sign in with a level of assurance of 2 or more to see this report.",
        },
        "unknown_transaction": {
            "fa": "پاسخ به تراکنشی است که هرگز ارسال نشده است.",
            "en": "The answer is to a transaction that was never forwarded.",
        },
        "wrong_provider": {
            "fa": "پاسخ از دستگاهی است که ارائه‌دهنده این تراکنش نیست.",
            "en": "The answer comes from an agency that is not this transaction's provider.",
        },
        "kid_taken": {
            "fa": "این شناسه کلید پیش‌تر به دستگاه یا کلید دیگری تعلق دارد.",
            "en": "This key id already belongs to another agency or another key.",
        },
    }
)
