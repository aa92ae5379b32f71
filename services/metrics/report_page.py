"""The provincial directorates' weekly report form (`/provinces/report`), in Persian or
English.

The template `static/report.html` gets what the form needs, embedded as JSON in a script
element: where identity's token endpoint is (the browser asks it for the directorate's
token itself; the secret goes nowhere else), the provinces and their directorates, the
figures a report carries with their names, and the weeks that may be reported (the current
one first). Its script (`static/report.js`) reads the province's projects and reports from
`GET /api/provinces/{province}/reports`, submits with `PUT`, and shows each of the server's
bilingual errors next to its field.
"""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from string import Template
from typing import Any, Literal

from services.metrics.domain.provincial_reports import FIGURES, recent_weeks
from services.metrics.programme_page import embedded_json
from services.metrics.programme_reference import reference_register
from shared.reference.provinces import PROVINCES, directorate_code

Language = Literal["fa", "en"]

TITLE: dict[Language, str] = {
    "fa": "گزارش هفتگی اداره کل ارتباطات و فناوری اطلاعات استان",
    "en": "Weekly report of a provincial ICT directorate general",
}
#: How many weeks back the form offers (a late report is accepted, and marked late).
WEEKS_OFFERED = 12

_TEMPLATE = resources.files("services.metrics") / "static" / "report.html"


def form_config(identity_url: str, now: datetime) -> dict[str, Any]:
    """What the form's script needs, all of it public."""
    names = {code: definition for code, definition in reference_register().indicators}
    return {
        "token_endpoint": identity_url.rstrip("/") + "/oauth/token",
        "scope": "programme:report",
        "weeks": recent_weeks(now, WEEKS_OFFERED),
        "figures": [
            {
                "code": code,
                "kind": kind,
                "name_fa": names[code].name_fa if code in names else code,
                "name_en": names[code].name_en if code in names else code,
            }
            for code, kind in FIGURES.items()
        ],
        "provinces": [
            {
                "code": p.code,
                "name_fa": p.name_fa,
                "name_en": p.name_en,
                "directorate": directorate_code(p.code),
            }
            for p in PROVINCES
        ],
    }


def report_page(lang: Language, identity_url: str, now: datetime) -> str:
    """The form's HTML, in `lang`."""
    return Template(_TEMPLATE.read_text("utf-8")).substitute(
        lang=lang,
        dir="rtl" if lang == "fa" else "ltr",
        title=TITLE[lang],
        config=embedded_json(form_config(identity_url, now)),
    )
