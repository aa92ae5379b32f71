"""The page of the provinces' weekly league (`/dashboard/provinces/league`), in Persian
or English: the week's summary, the provinces that did not report, the top and bottom
five, the league table, the week's generated files, and a form that splits a budget by
the provinces' scores. Rendered on the server from what `GET /api/provinces/reports/{week}`
answers, so it needs no script; every text is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from html import escape
from typing import Any, Literal
from urllib.parse import urlencode

from services.metrics.provinces_page import adjacent_weeks, figures
from services.metrics.weekly_report_files import fa_number
from shared.messages import MESSAGES
from shared.reference.provinces import BY_CODE

Language = Literal["fa", "en"]

TEXT: dict[str, dict[Language, str]] = {
    "title": {"fa": "رده‌بندی هفتگی استان‌ها", "en": "Provinces' weekly league"},
    "week": {"fa": "هفته", "en": "Week"},
    "reports": {"fa": "گزارش‌های هفتگی", "en": "Weekly reports"},
    "other": {"fa": "English", "en": "فارسی"},
    "previous": {"fa": "→ هفته پیش", "en": "← Previous week"},
    "next": {"fa": "هفته بعد ←", "en": "Next week →"},
    "reported": {"fa": "گزارش‌داده", "en": "Reported"},
    "late": {"fa": "با تأخیر", "en": "Late"},
    "not_reported": {"fa": "بی‌گزارش", "en": "Did not report"},
    "mean": {"fa": "میانگین امتیاز", "en": "Mean score"},
    "missing_title": {"fa": "استان‌هایی که گزارش ندادند", "en": "Provinces that did not report"},
    "none": {"fa": "هیچ‌کدام", "en": "None"},
    "top": {"fa": "پنج استان برتر", "en": "Top five"},
    "bottom": {"fa": "پنج استان پایانی", "en": "Bottom five"},
    "table": {"fa": "جدول رده‌بندی", "en": "League table"},
    "rank": {"fa": "رتبه", "en": "Rank"},
    "moved": {"fa": "جابه‌جایی", "en": "Places moved"},
    "province": {"fa": "استان", "en": "Province"},
    "score": {"fa": "امتیاز", "en": "Score"},
    "timeliness": {"fa": "زمان گزارش", "en": "Timeliness"},
    "on_time": {"fa": "به‌هنگام", "en": "on time"},
    "files": {"fa": "پرونده‌های گزارش این هفته", "en": "This week's report files"},
    "no_files": {
        "fa": "پرونده‌ای هنوز ساخته نشده است (پس از پایان هفته ساخته می‌شود).",
        "en": "No file generated yet (they are made once the week has ended).",
    },
    "national": {"fa": "گزارش ملی", "en": "National report"},
    "allocation": {"fa": "تخصیص بودجه بر پایه عملکرد", "en": "Performance-based allocation"},
    "budget": {"fa": "بودجه (ریال):", "en": "Budget (rials):"},
    "split": {"fa": "تقسیم کن", "en": "Split"},
    "amount": {"fa": "سهم (ریال)", "en": "Share (rials)"},
    "csv": {"fa": "دریافت CSV", "en": "Download CSV"},
    "rule": {
        "fa": "امتیاز: ۶۰٪ میانگین درصدهای پوشش، ۳۰٪ پیشرفت پروژه‌ها، ۱۰٪ به‌هنگامی. بودجه به "
        "نسبت امتیاز تقسیم می‌شود؛ استانی که گزارش نداده سهمی ندارد؛ سهم‌ها ریال درست‌اند و "
        "جمعشان دقیقاً برابر بودجه است (بزرگ‌ترین باقی‌مانده).",
        "en": "Score: 60% mean coverage shares, 30% projects' progress, 10% timeliness. The "
        "budget is split in proportion to score; a province that did not report gets nothing; "
        "shares are whole rials summing exactly to the budget (largest remainder).",
    },
}


def _t(key: str, lang: Language) -> str:
    return escape(TEXT[key][lang])


def _number(value: float | None, lang: Language, decimals: int = 2) -> str:
    if lang == "fa":
        return fa_number(value, decimals)
    if value is None:
        return "–"
    return f"{value:,.{decimals}f}".rstrip("0").rstrip(".") if decimals else f"{value:,.0f}"


def _name(code: str, lang: Language) -> str:
    province = BY_CODE[code]
    return escape(province.name_fa if lang == "fa" else province.name_en)


def _href(lang: Language, week: str, budget: str | None = None) -> str:
    query = {"lang": lang, "week": week} | ({"budget": budget} if budget else {})
    return "/dashboard/provinces/league?" + urlencode(query)


def _ranked_list(items: list[dict[str, Any]], ranks: Mapping[str, int], lang: Language) -> str:
    if not items:
        return f"<p>{_t('none', lang)}</p>"
    rows = "".join(
        f'<tr><td class="num">{_number(ranks.get(i["province"]), lang, 0)}</td>'
        f"<td>{_name(i['province'], lang)}</td>"
        f'<td class="num">{_number(i["score"], lang)}</td></tr>'
        for i in items
    )
    return (
        f"<table><thead><tr><th>{_t('rank', lang)}</th><th>{_t('province', lang)}</th>"
        f"<th>{_t('score', lang)}</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _moved(row: Mapping[str, Any], lang: Language) -> str:
    if row.get("previous_rank") is None or row.get("rank") is None:
        return '<td class="num">–</td>'
    moved = int(row["previous_rank"]) - int(row["rank"])
    css = "up" if moved > 0 else "down" if moved < 0 else ""
    sign = "+" if moved > 0 else ""
    return f'<td class="num {css}">{sign}{_number(moved, lang, 0)}</td>'


def _files(files: list[dict[str, Any]], lang: Language) -> str:
    if not files:
        return f"<p>{_t('no_files', lang)}</p>"
    items = []
    for record in sorted(files, key=lambda r: (r["kind"], r.get("subject") or "", r["format"])):
        who = _name(record["subject"], lang) if record.get("subject") else _t("national", lang)
        items.append(
            f'<li><a href="{escape(record["path"])}">{who} · {escape(record["format"].upper())}'
            f"</a> <small>r{int(record['revision'])}</small></li>"
        )
    return f'<ul class="files">{"".join(items)}</ul>'


def _allocation(
    lang: Language,
    week: str,
    budget: str | None,
    split: Mapping[str, Any] | None,
    refusal: str | None,
) -> str:
    form = (
        f'<form class="allocation" method="get" action="/dashboard/provinces/league">'
        f'<input type="hidden" name="lang" value="{lang}">'
        f'<input type="hidden" name="week" value="{escape(week)}">'
        f'<label for="budget">{_t("budget", lang)}</label>'
        f'<input id="budget" name="budget" type="text" inputmode="numeric" '
        f'value="{escape(budget or "")}" maxlength="40">'
        f'<button type="submit">{_t("split", lang)}</button></form>'
    )
    parts = [f"<h2>{_t('allocation', lang)}</h2>", form, f'<p class="rule">{_t("rule", lang)}</p>']
    if refusal is not None:
        parts.append(f'<p class="refusal" id="refusal">{escape(MESSAGES[refusal][lang])}</p>')
    if split is not None:
        rows = "".join(
            f'<tr><td class="num">{_number(r["rank"], lang, 0)}</td>'
            f"<td>{_name(r['province'], lang)}</td>"
            f'<td class="num">{_number(r["score"], lang)}</td>'
            f'<td class="num">{_number(r["amount"], lang, 0)}</td></tr>'
            for r in split["provinces"]
        )
        csv_href = "/api/provinces/allocation?" + urlencode(
            {"week": week, "budget": budget or "", "format": "csv"}
        )
        parts.append(
            f'<table id="allocation"><thead><tr><th>{_t("rank", lang)}</th>'
            f"<th>{_t('province', lang)}</th><th>{_t('score', lang)}</th>"
            f"<th>{_t('amount', lang)}</th></tr></thead><tbody>{rows}</tbody></table>"
            f'<p><a href="{escape(csv_href)}">{_t("csv", lang)}</a></p>'
        )
    return f'<section id="allocation-section">{"".join(parts)}</section>'


def league_page(
    lang: Language,
    data: Mapping[str, Any],
    now: datetime,
    *,
    budget: str | None = None,
    allocation: Mapping[str, Any] | None = None,
    refusal: str | None = None,
) -> str:
    """The page for the week `data` describes (as `GET /api/provinces/reports/{week}`
    answers), with the allocation of `budget` if one was asked for."""
    week = str(data["week"])
    league = data["league"]
    summary = league["summary"]
    names = {f["code"]: f for f in figures()}
    shares = [code for code, f in names.items() if f["unit"] == "percent"]
    ranks = {row["province"]: row["rank"] for row in league["table"]}
    before, after = adjacent_weeks(week)
    not_reported = summary["missing"] + summary["awaited"]
    missing_items = "".join(f"<li>{_name(code, lang)}</li>" for code in not_reported)
    rows = []
    for row in league["table"]:
        late = row.get("late")
        timeliness = (
            f'<td class="late">{_t("late", lang)}</td>'
            if late
            else f"<td>{_t('on_time', lang)}</td>"
        )
        cells = "".join(
            f'<td class="num">{_number(row["figures"].get(c, {}).get("value"), lang)}</td>'
            for c in shares
        )
        rows.append(
            f'<tr data-province="{escape(row["province"])}">'
            f'<td class="num">{_number(row["rank"], lang, 0)}</td>{_moved(row, lang)}'
            f"<td>{_name(row['province'], lang)}</td>"
            f'<td class="num">{_number(row["score"], lang)}</td>{timeliness}{cells}</tr>'
        )
    figure_heads = "".join(
        f"<th>{escape(names[c]['name_fa'] if lang == 'fa' else names[c]['name_en'])}</th>"
        for c in shares
    )
    week_text = escape(week)
    other: Language = "en" if lang == "fa" else "fa"
    reports_href = "/dashboard/provinces?" + urlencode({"lang": lang, "week": week})
    next_link = (
        f'<a id="next-week" href="{escape(_href(lang, after))}">{_t("next", lang)}</a>'
        if data.get("ended")
        else ""
    )
    missing = f"<ul>{missing_items}</ul>" if missing_items else f"<p>{_t('none', lang)}</p>"
    cards = "".join(
        f'<div class="card">{_t(key, lang)}<b>{value}</b></div>'
        for key, value in (
            (
                "reported",
                f"{_number(summary['reported'], lang, 0)} / "
                f"{_number(summary['provinces'], lang, 0)}",
            ),
            ("late", _number(len(summary["late"]), lang, 0)),
            ("not_reported", _number(len(not_reported), lang, 0)),
            ("mean", _number(summary["mean_score"], lang)),
        )
    )
    heads = "".join(
        f"<th>{_t(key, lang)}</th>" for key in ("rank", "moved", "province", "score", "timeliness")
    )
    top = _ranked_list(summary["top"], ranks, lang)
    bottom = _ranked_list(summary["bottom"], ranks, lang)
    files = _files(list(data.get("files", [])), lang)
    return f"""<!DOCTYPE html>
<html lang="{lang}" dir="{"rtl" if lang == "fa" else "ltr"}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_t("title", lang)} · {week_text}</title>
<link rel="stylesheet" href="/static/league.css">
</head>
<body>
<header>
<h1>{_t("title", lang)} · {_t("week", lang)} <span dir="ltr">{week_text}</span></h1>
<a href="{escape(reports_href)}">{_t("reports", lang)}</a>
<a href="{escape(_href(other, week, budget))}">{_t("other", lang)}</a>
</header>
<main>
<nav class="weeks">
<a id="previous-week" href="{escape(_href(lang, before))}">{_t("previous", lang)}</a>
{next_link}
</nav>
<div class="cards" id="summary">{cards}</div>
<div class="columns">
<section id="top"><h2>{_t("top", lang)}</h2>{top}</section>
<section id="bottom"><h2>{_t("bottom", lang)}</h2>{bottom}</section>
<section id="missing" class="missing"><h2>{_t("missing_title", lang)}</h2>{missing}</section>
</div>
<section id="league"><h2>{_t("table", lang)}</h2>
<table><thead><tr>{heads}{figure_heads}</tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<p class="rule">{_t("rule", lang)}</p></section>
<section id="files"><h2>{_t("files", lang)}</h2>{files}</section>
{_allocation(lang, week, budget, allocation, refusal)}
</main>
</body>
</html>
"""
