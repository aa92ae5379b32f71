"""The page of the programme's targets (`/dashboard/programme`), in Persian or English.

The template `static/programme.html` gets the targets (the JSON `GET /api/programme/targets`
answers) and the provinces' names, each embedded as JSON in a script element; its script
(`static/programme.js`) renders them and polls the API every 30 seconds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from string import Template
from typing import Any, Literal

from shared.reference.provinces import PROVINCES

Language = Literal["fa", "en"]

TITLE: dict[Language, str] = {
    "fa": "پیشرفت اهداف برنامه دولت هوشمند",
    "en": "Smart government programme: targets",
}
DASHBOARD_LINK: dict[Language, str] = {"fa": "داشبورد زنده", "en": "Live dashboard"}
PROVINCES_LINK: dict[Language, str] = {
    "fa": "گزارش‌های هفتگی استان‌ها",
    "en": "Provinces' weekly reports",
}

_TEMPLATE = resources.files("services.metrics") / "static" / "programme.html"


def embedded_json(data: Any) -> str:
    """`data` as JSON to put inside a script element: every `<` is escaped (`\\u003c`), so no
    text in it can close the element (`</script>`) or open a comment."""
    return json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")


def places() -> dict[str, Any]:
    """The names the page shows for a target's scope code: the provinces', in both languages."""
    return {"provinces": {p.code: {"fa": p.name_fa, "en": p.name_en} for p in PROVINCES}}


def programme_page(lang: Language, targets: Sequence[dict[str, Any]]) -> str:
    """The page's HTML with `targets` (each a target's progress as JSON) embedded."""
    return Template(_TEMPLATE.read_text("utf-8")).substitute(
        lang=lang,
        dir="rtl" if lang == "fa" else "ltr",
        title=TITLE[lang],
        dashboard_link=DASHBOARD_LINK[lang],
        provinces_link=PROVINCES_LINK[lang],
        initial=embedded_json({"targets": list(targets)}),
        places=embedded_json(places()),
    )
