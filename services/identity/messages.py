"""The identity service's messages for users, in Persian and English."""

from __future__ import annotations

from shared.messages import register_messages

register_messages(
    {
        "invalid_national_id": {
            "fa": "کد ملی نادرست است: ده رقم با رقم کنترل درست لازم است.",
            "en": "The national ID is invalid: ten digits with a correct check digit are needed.",
        },
        "invalid_mobile": {
            "fa": "شماره همراه نادرست است؛ مانند ۰۹۱۲۱۲۳۴۵۶۷ بنویسید.",
            "en": "The mobile number is invalid; write it like 09121234567.",
        },
        "invalid_birth_date": {
            "fa": "تاریخ تولد نادرست است؛ مانند ۱۳۷۰/۰۱/۱۵ یا 1991-04-04 بنویسید.",
            "en": "The birth date is invalid; write it like 1370/01/15 or 1991-04-04.",
        },
        "mobile_not_owned": {
            "fa": "این شماره همراه به نام دارنده این کد ملی ثبت نشده است.",
            "en": "This mobile number is not registered to the holder of this national ID.",
        },
        "operator_check_unavailable": {
            "fa": "استعلام مالکیت شماره همراه اکنون ممکن نیست؛ کمی بعد دوباره تلاش کنید.",
            "en": "The mobile ownership check is unavailable; try again shortly.",
        },
        "already_registered": {
            "fa": "این کد ملی پیش‌تر ثبت‌نام شده است؛ وارد شوید.",
            "en": "This national ID is already registered; sign in instead.",
        },
        "too_many_requests": {
            "fa": "درخواست‌ها از این شماره، کد ملی یا شبکه بیش از اندازه است؛ "
            "پس از زمان گفته‌شده دوباره تلاش کنید.",
            "en": "Too many requests for this mobile, national ID or network; "
            "try again after the time given.",
        },
        "hashing_busy": {
            "fa": "اکنون درخواست‌های ورود سامانه‌ها بسیار است؛ چند لحظه دیگر دوباره تلاش کنید.",
            "en": "Too many agency systems are signing in right now; try again in a moment.",
        },
        "not_registered": {
            "fa": "با این کد ملی ثبت‌نامی نیست؛ نخست ثبت‌نام کنید.",
            "en": "No one is registered with this national ID; register first.",
        },
        "code_recently_sent": {
            "fa": "کد ورود همین تازگی فرستاده شد؛ اندکی صبر کنید.",
            "en": "A sign-in code was sent moments ago; wait a little.",
        },
        "wrong_code": {
            "fa": "کد ورود نادرست است.",
            "en": "The sign-in code is wrong.",
        },
        "expired_code": {
            "fa": "کد ورود معتبری نیست یا زمان آن گذشته است؛ کد تازه بگیرید.",
            "en": "There is no valid sign-in code, or it has expired; ask for a new one.",
        },
        "locked_out": {
            "fa": "به دلیل تلاش‌های نادرست پیاپی، ورود تا زمان گفته‌شده بسته است.",
            "en": "Sign-in is locked after repeated failed attempts, until the time given.",
        },
        "invalid_grant": {
            "fa": "توکن نوسازی نامعتبر، باطل یا منقضی است؛ دوباره وارد شوید.",
            "en": "The refresh token is invalid, revoked or expired; sign in again.",
        },
        "invalid_client": {
            "fa": "شناسه یا رمز سامانه دستگاه نادرست است.",
            "en": "The agency system's client id or secret is wrong.",
        },
        "invalid_scope": {
            "fa": "دسترسی درخواستی برای این سامانه مجاز نیست.",
            "en": "The requested scope is not allowed for this client.",
        },
        "unsupported_grant_type": {
            "fa": "این نوع درخواست توکن پشتیبانی نمی‌شود.",
            "en": "This grant type is not supported.",
        },
        "unknown_client": {
            "fa": "چنین سامانه‌ای برای این دستگاه نیست.",
            "en": "There is no such client for this agency.",
        },
        "invalid_key": {
            "fa": "کلید عمومی پذیرفته نیست.",
            "en": "The public key is not acceptable.",
        },
        "private_key_sent": {
            "fa": "کلید خصوصی فرستاده شد؛ فقط کلید عمومی را بفرستید و این کلید را کنار بگذارید.",
            "en": "A private key was sent; send only the public key, and retire this key.",
        },
        "key_exists": {
            "fa": "کلیدی با این شناسه پیش‌تر ثبت شده است.",
            "en": "A key with this id is already registered.",
        },
        "unknown_key": {
            "fa": "چنین کلیدی برای این دستگاه نیست.",
            "en": "There is no such key for this agency.",
        },
        "not_a_citizen_token": {
            "fa": "این کار با توکن شهروند انجام می‌شود.",
            "en": "This needs a citizen's token.",
        },
        "not_an_agency_token": {
            "fa": "این کار با توکن سامانه یک دستگاه انجام می‌شود.",
            "en": "This needs an agency system's token.",
        },
    }
)
