"""The page of the provinces' weekly reports (`/dashboard/provinces`), in Persian or English.

The template `static/provinces.html` gets the week's overview (the JSON
`GET /api/provinces/reports/{week}` answers) and what the page needs to read it (the
figures' names and units, the provinces, the weeks before and after), each embedded as
JSON in a script element. Its script (`static/provinces.js`) renders the week's summary
and the table of the 31 provinces, polls the overview every 30 seconds, and draws the
chosen province's figures week by week from `GET /api/provinces/{province}/reports`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import cache
from html import escape
from importlib import resources
from string import Template
from typing import Any, Literal
from urllib.parse import urlencode

from services.metrics.domain.provincial_reports import FIGURES
from services.metrics.domain.windows import window_from_label, window_of
from services.metrics.programme_page import embedded_json
from services.metrics.programme_reference import reference_register
from shared.reference.provinces import BY_CODE, PROVINCES

Language = Literal["fa", "en"]

TITLE: dict[Language, str] = {
    "fa": "گزارش‌های هفتگی استان‌ها",
    "en": "Provinces' weekly reports",
}
LINKS: dict[str, dict[Language, str]] = {
    "dashboard": {"fa": "داشبورد زنده", "en": "Live dashboard"},
    "programme": {"fa": "اهداف برنامه", "en": "Programme targets"},
    "previous": {"fa": "→ هفته پیش", "en": "← Previous week"},
    "next": {"fa": "هفته بعد ←", "en": "Next week →"},
    "current": {"fa": "هفته جاری", "en": "This week"},
    "province": {"fa": "استان:", "en": "Province:"},
    "choose": {"fa": "یک استان را برگزینید", "en": "Choose a province"},
    "show": {"fa": "نمایش", "en": "Show"},
    "history": {"fa": "روند هفتگی استان", "en": "A province's weeks"},
}

_TEMPLATE = resources.files("services.metrics") / "static" / "provinces.html"


def current_week(now: datetime) -> str:
    """The label of the Jalali week holding `now` (`1405-W36`): the page's default."""
    return window_of("week", now).label


def adjacent_weeks(week: str) -> tuple[str, str]:
    """The labels of the weeks before and after `week`; ValueError if it names no week."""
    window = window_from_label("week", week)
    if window.start is None or window.end is None:
        raise ValueError("a week has bounds")
    before = window_of("week", window.start - timedelta(seconds=1)).label
    after = window_of("week", window.end).label
    return before, after


def page_href(lang: Language, week: str, province: str | None = None) -> str:
    """The page's address for a week (and a chosen province), in `lang`."""
    query = {"lang": lang, "week": week} | ({"province": province} if province else {})
    return "/dashboard/provinces?" + urlencode(query)


@cache
def _figures() -> tuple[dict[str, str], ...]:
    names = dict(reference_register().indicators)
    return tuple(
        {
            "code": code,
            "unit": "percent" if kind == "share" else "count",
            "name_fa": names[code].name_fa if code in names else code,
            "name_en": names[code].name_en if code in names else code,
        }
        for code, kind in FIGURES.items()
    )


def figures() -> list[dict[str, str]]:
    """The figures a report carries, in the form's order, with their names and units (the
    reference register's, read once)."""
    return [dict(figure) for figure in _figures()]


def page_config(week: str, now: datetime, province: str | None = None) -> dict[str, Any]:
    """What the script needs besides the overview, all of it public."""
    before, after = adjacent_weeks(week)
    after_start = window_from_label("week", after).start
    return {
        "week": week,
        "current_week": current_week(now),
        "previous_week": before,
        # A week that has not started yet has nothing to show.
        "next_week": after if after_start is not None and after_start <= now else None,
        "province": province if province in BY_CODE else None,
        "figures": figures(),
        "provinces": [
            {"code": p.code, "name_fa": p.name_fa, "name_en": p.name_en} for p in PROVINCES
        ],
    }


def _link(element_id: str, href: str | None, text: str) -> str:
    if href is None:
        return f'<span id="{element_id}" class="disabled">{escape(text)}</span>'
    return f'<a id="{element_id}" href="{escape(href)}">{escape(text)}</a>'


def _options(lang: Language, chosen: str | None) -> str:
    options = [f'<option value="">{escape(LINKS["choose"][lang])}</option>']
    for p in PROVINCES:
        selected = " selected" if p.code == chosen else ""
        name = p.name_fa if lang == "fa" else p.name_en
        options.append(f'<option value="{p.code}"{selected}>{escape(name)}</option>')
    return "\n      ".join(options)


def provinces_page(
    lang: Language,
    overview: Mapping[str, Any],
    now: datetime,
    province: str | None = None,
) -> str:
    """The page's HTML with the week's `overview` (as `GET /api/provinces/reports/{week}`
    answers it) embedded; `province`, if one of the 31, is the one whose weeks it charts."""
    week = str(overview["week"])
    config = page_config(week, now, province)
    chosen = config["province"]
    current = config["current_week"]
    after = config["next_week"]
    return Template(_TEMPLATE.read_text("utf-8")).substitute(
        lang=lang,
        dir="rtl" if lang == "fa" else "ltr",
        title=escape(TITLE[lang]),
        week=escape(week),
        dashboard_link=escape(LINKS["dashboard"][lang]),
        programme_link=escape(LINKS["programme"][lang]),
        fa_href=escape(page_href("fa", week, chosen)),
        en_href=escape(page_href("en", week, chosen)),
        previous_link=_link(
            "previous-week",
            page_href(lang, config["previous_week"], chosen),
            LINKS["previous"][lang],
        ),
        current_link=_link(
            "current-week",
            None if week == current else page_href(lang, current, chosen),
            LINKS["current"][lang],
        ),
        next_link=_link(
            "next-week",
            None if after is None else page_href(lang, after, chosen),
            LINKS["next"][lang],
        ),
        province_label=escape(LINKS["province"][lang]),
        province_options=_options(lang, chosen),
        show=escape(LINKS["show"][lang]),
        history_title=escape(LINKS["history"][lang]),
        initial=embedded_json(dict(overview)),
        config=embedded_json(config),
    )
