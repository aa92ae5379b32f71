"""The metrics service's own message codes, in Persian and English."""

from __future__ import annotations

from services.metrics.domain.league import ALLOCATION_MESSAGES as ALLOCATION_RULES
from services.metrics.domain.provincial_reports import MESSAGES as REPORT_RULES
from shared.messages import register_messages

# The rules of a province's weekly report keep their texts with the rules; each refusal
# also names its code in a problem's `errors`, so they are registered as codes too.
register_messages(dict(REPORT_RULES))
# The performance-based allocation's refusals keep their texts with its rule.
register_messages(dict(ALLOCATION_RULES))

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
        # The programme register (services/metrics/domain/programme_register.py).
        "unknown_indicator": {
            "fa": "این شاخص در فهرست شاخص‌های برنامه نیست؛ نخست شاخص را ثبت کنید.",
            "en": "This indicator is not in the programme's register; record the indicator first.",
        },
        "live_indicator_unnamed": {
            "fa": "شاخص برخط باید سنجه و بازه‌ای را که از آن خوانده می‌شود نام ببرد "
            "(live_metric و live_window).",
            "en": "A live indicator names the metric and the window it is read from "
            "(live_metric and live_window).",
        },
        "reported_indicator_named_live": {
            "fa": "شاخص گزارشی از سنجه‌ای خوانده نمی‌شود؛ live_metric، live_window و "
            "live_dimensions را خالی بگذارید.",
            "en": "A reported indicator is read from no metric; leave live_metric, live_window "
            "and live_dimensions empty.",
        },
        "invalid_figure_scope": {
            "fa": "دامنه با کد آن نمی‌خواند: رقم ملی کدی ندارد، رقم استانی یکی از ۳۱ استان "
            "(مانند IR-15) و رقم دستگاه کد دستگاه را نام می‌برد.",
            "en": "The scope and its code do not fit: a national figure names no code, a "
            "provincial one one of the 31 provinces (e.g. IR-15), an agency's the agency's code.",
        },
        "deadline_not_after_baseline": {
            "fa": "موعد هدف باید پس از تاریخ پایه آن باشد.",
            "en": "A target's deadline comes after its baseline date.",
        },
        "target_is_baseline": {
            "fa": "مقدار هدف باید با مقدار پایه فرق داشته باشد.",
            "en": "A target's value differs from its baseline value.",
        },
        "observed_in_future": {
            "fa": "رقمی برای روزی که هنوز نرسیده است گزارش نمی‌شود.",
            "en": "No figure is reported for a day that has not yet come.",
        },
        # The provincial directorates' weekly reports (use_cases/provinces.py).
        "report_refused": {
            "fa": "گزارش هفتگی پذیرفته نشد و چیزی از آن ثبت نشد؛ ایراد هر بخش در errors آمده است.",
            "en": "The weekly report was refused and nothing of it was kept; what is wrong "
            "with each part is in errors.",
        },
        "not_provinces_directorate": {
            "fa": "گزارش هفتگی هر استان را تنها اداره کل ارتباطات و فناوری اطلاعات همان "
            "استان با اعتبارنامه خود می‌فرستد.",
            "en": "A province's weekly report is sent only by that province's ICT "
            "directorate general, with its own credentials.",
        },
        # Generated report files (documents.py).
        "report_file_not_found": {
            "fa": "چنین پرونده گزارشی ساخته نشده است؛ نوع، دوره، قالب و نسخه را بررسی کنید.",
            "en": "No such report file has been generated; check its kind, period, format "
            "and revision.",
        },
        "invalid_programme_entry": {
            "fa": "این ورودی برنامه پذیرفته نشد؛ دلیل‌ها در errors آمده است.",
            "en": "This entry of the programme was refused; the reasons are in errors.",
        },
    }
)
