"""The quarterly evaluation of agencies as people read it: the dashboard page
(`/dashboard/evaluations`, Persian or English) and the printable report of a quarter.

Both are rendered here, on the server, from the league table as
`GET /api/evaluations/{quarter}` answers it (`use_cases.evaluations.LeagueTable.as_json`):
numbers in Persian digits and dates in the Jalali calendar in Persian, right to left. The
page answers "which agencies rank lowest this quarter, and why": the lowest-ranked agencies
first, each with the measures that cost it most points and its figure on each, then the
whole league table. The report is one self-contained HTML document (its style inline, its
font the one PDF rendering shapes Persian with, no address outside itself): the league
table, then one printed page per agency; the same document is rendered to PDF.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from importlib import resources
from string import Template
from typing import Any, Literal
from urllib.parse import urlencode

Language = Literal["fa", "en"]

#: The font reports are written in: it covers Persian, so PDF rendering shapes it.
REPORT_FONTS = '"DejaVu Sans", "Noto Sans Arabic", sans-serif'
#: How many of the lowest-ranked agencies the page explains first.
LOWEST = 5

_TEMPLATE = resources.files("services.metrics") / "static" / "evaluations.html"
_PERSIAN_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
MONTHS_FA = (
    "فروردین",
    "اردیبهشت",
    "خرداد",
    "تیر",
    "مرداد",
    "شهریور",
    "مهر",
    "آبان",
    "آذر",
    "دی",
    "بهمن",
    "اسفند",
)
MONTHS_EN = (
    "Farvardin",
    "Ordibehesht",
    "Khordad",
    "Tir",
    "Mordad",
    "Shahrivar",
    "Mehr",
    "Aban",
    "Azar",
    "Dey",
    "Bahman",
    "Esfand",
)
SEASONS: dict[Language, tuple[str, ...]] = {
    "fa": ("بهار", "تابستان", "پاییز", "زمستان"),
    "en": ("spring", "summer", "autumn", "winter"),
}
ORDINALS_FA = ("نخست", "دوم", "سوم", "چهارم")

TEXT: dict[str, dict[Language, str]] = {
    "title": {"fa": "ارزیابی فصلی دستگاه‌های اجرایی", "en": "Quarterly evaluation of agencies"},
    "report_title": {
        "fa": "گزارش ارزیابی فصلی دستگاه‌های اجرایی",
        "en": "Report of the quarterly evaluation of agencies",
    },
    "dashboard": {"fa": "داشبورد زنده", "en": "Live dashboard"},
    "programme": {"fa": "اهداف برنامه", "en": "Programme targets"},
    "provinces": {"fa": "گزارش‌های استان‌ها", "en": "Provinces' reports"},
    "quarter": {"fa": "فصل:", "en": "Quarter:"},
    "show": {"fa": "نمایش", "en": "Show"},
    "report_html": {"fa": "گزارش چاپی (HTML)", "en": "Printable report (HTML)"},
    "report_pdf": {"fa": "گزارش چاپی (PDF)", "en": "Printable report (PDF)"},
    "none": {
        "fa": "برای این فصل هنوز ارزیابی‌ای در دست نیست.",
        "en": "There is no evaluation for this quarter yet.",
    },
    "lowest": {
        "fa": "پایین‌ترین رتبه‌های این فصل و چرایی آن",
        "en": "Lowest ranked this quarter, and why",
    },
    "lowest_note": {
        "fa": "برای هر دستگاه، سنجه‌هایی که بیشترین امتیاز را از آن گرفته‌اند، با رقم دستگاه "
        "در هر یک و امتیازی که از دست داده است.",
        "en": "For each agency, the measures that cost it most points, with its figure on "
        "each and the points it lost.",
    },
    "league": {"fa": "جدول رده‌بندی", "en": "League table"},
    "rank": {"fa": "رتبه", "en": "Rank"},
    "agency": {"fa": "دستگاه", "en": "Agency"},
    "score": {"fa": "امتیاز", "en": "Score"},
    "change": {"fa": "تغییر از فصل پیش", "en": "Change since last quarter"},
    "previous_rank": {"fa": "رتبه فصل پیش", "en": "Previous rank"},
    "weakest": {"fa": "بیشترین کاستی", "en": "Pulled down most by"},
    "measure": {"fa": "سنجه", "en": "Measure"},
    "figure": {"fa": "رقم دستگاه", "en": "The agency's figure"},
    "measure_score": {"fa": "امتیاز سنجه (۰ تا ۱۰۰)", "en": "Measure score (0-100)"},
    "weight": {"fa": "وزن", "en": "Weight"},
    "lost": {"fa": "امتیاز از دست رفته", "en": "Points lost"},
    "of": {"fa": "از", "en": "of"},
    "rank_of": {"fa": "رتبه {rank} از {count}", "en": "Rank {rank} of {count}"},
    "unranked": {"fa": "بی‌رتبه", "en": "Unranked"},
    "no_data": {"fa": "بی‌داده", "en": "no data"},
    "not_applicable": {"fa": "موضوعیت ندارد", "en": "not applicable"},
    "yes": {"fa": "بله", "en": "yes"},
    "no": {"fa": "خیر", "en": "no"},
    "ms": {"fa": " میلی‌ثانیه", "en": " ms"},
    "requests": {"fa": " درخواست", "en": " requests"},
    "new": {"fa": "نخستین ارزیابی", "en": "first evaluation"},
    "closed": {"fa": "فصل به پایان رسیده است.", "en": "The quarter has ended."},
    "running": {
        "fa": "فصل هنوز ادامه دارد؛ ارقام تا پایان آن تغییر می‌کنند.",
        "en": "The quarter is still running; the figures change until it ends.",
    },
    "ranked": {"fa": "{n} دستگاه رتبه‌بندی شده‌اند.", "en": "{n} agencies ranked."},
    "updated": {"fa": "آخرین تغییر ارقام:", "en": "Figures last changed:"},
    "weights": {"fa": "سنجه‌ها و وزن آن‌ها", "en": "The measures and their weights"},
    "method": {
        "fa": "امتیاز هر دستگاه میانگین وزنی امتیاز سنجه‌های آن است (هر سنجه از ۰ تا ۱۰۰). "
        "سهم‌ها همان درصدند؛ اتصال به پنجره و استفاده از مرکز تبادل بله ۱۰۰ و خیر ۰؛ "
        "هر درصد امتناع و رد ۵ امتیاز می‌کاهد؛ زمان پاسخ تا ۵۰۰ میلی‌ثانیه ۱۰۰ و از ۵ ثانیه "
        "۰ است. سنجه بی‌داده ۰ می‌گیرد، مگر امتناع‌ها و زمان پاسخ که برای دستگاهی که "
        "درخواستی نداشته موضوعیت ندارند و کنار می‌روند. وزن‌ها از فهرست شاخص‌های برنامه‌اند.",
        "en": "An agency's score is the weighted mean of its measures' scores (each 0 to 100). "
        "Shares score their percentage; connected to the window and use of the exchange score "
        "100 for yes and 0 for no; each point of refusals and denials costs 5; a response "
        "time up to 500 ms scores 100 and from 5 s 0. A measure without data scores 0, but "
        "refusals and response time do not apply to an agency without requests and are left "
        "out. The weights are the programme register's.",
    },
    "page_of": {"fa": "ارزیابی {agency} در {quarter}", "en": "{agency} in {quarter}"},
    "period": {"fa": "از {first} تا {last}", "en": "from {first} to {last}"},
}


def t(key: str, lang: Language, **values: object) -> str:
    text = TEXT[key][lang]
    for name, value in values.items():
        text = text.replace("{" + name + "}", str(value))
    return text


# -- numbers and dates as each language writes them --------------------------------------


def digits(text: str, lang: Language) -> str:
    """ASCII digits as Persian ones in Persian (and `.` `,` as the Persian separators)."""
    if lang == "en":
        return text
    return text.translate(_PERSIAN_DIGITS).replace(".", "٫").replace(",", "٬")


def number(value: float, lang: Language, decimals: int = 1) -> str:
    """A number rounded to `decimals` (no trailing zeros), grouped, in the language's digits."""
    text = f"{value:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return digits(text, lang)


def signed(value: float, lang: Language) -> str:
    """A change with its sign (+ or −), never `-0`."""
    if round(value, 2) == 0:
        return digits("0", lang)
    sign = "+" if value > 0 else "−"
    return sign + number(abs(value), lang, 2)


def jalali_day_text(day: str, lang: Language) -> str:
    """`1405-07-01` as `۱ مهر ۱۴۰۵` (or `1 Mehr 1405`)."""
    year, month, date_ = (int(part) for part in day.split("-"))
    months = MONTHS_FA if lang == "fa" else MONTHS_EN
    return digits(f"{date_} {months[month - 1]} {year}", lang)


def quarter_name(quarter: str, lang: Language) -> str:
    """`1405-Q3` as `فصل سوم (پاییز) ۱۴۰۵` (or `Q3 1405 (autumn)`)."""
    year, number_ = quarter.split("-Q")
    index = int(number_) - 1
    if lang == "fa":
        return f"فصل {ORDINALS_FA[index]} ({SEASONS['fa'][index]}) {digits(year, lang)}"
    return f"Q{number_} {year} ({SEASONS['en'][index]})"


def figure_text(measure: Mapping[str, Any], lang: Language) -> str:
    """An agency's figure on a measure, in its unit, as people read it."""
    if not measure["applicable"]:
        return t("not_applicable", lang)
    value = measure["value"]
    if value is None:
        return t("no_data", lang)
    unit = measure["unit"]
    if unit == "percent":
        shown = number(value, lang) + ("٪" if lang == "fa" else "%")
        if measure.get("denominator"):
            shown += (
                f" ({number(measure['numerator'], lang, 0)} {t('of', lang)} "
                f"{number(measure['denominator'], lang, 0)})"
            )
        return shown
    if unit == "yes_no":
        return t("yes" if value >= 1 else "no", lang)
    if unit == "milliseconds":
        return number(value, lang, 0) + t("ms", lang)
    return number(value, lang, 0) + t("requests", lang)


def score_text(score: float | None, lang: Language) -> str:
    """A 0-100 score as computed, to two decimals (one decimal could show two different
    scores of neighbouring ranks alike)."""
    return "—" if score is None else number(score, lang, 2)


def _name(entry: Mapping[str, Any], lang: Language, field: str = "agency_name") -> str:
    return str(entry[f"{field}_{lang}"])


def _measure_name(measure: Mapping[str, Any], lang: Language) -> str:
    return str(measure[f"name_{lang}"])


def _change(entry: Mapping[str, Any], lang: Language) -> str:
    change = entry["score_change"]
    if change is None:
        return t("new", lang)
    text = signed(change, lang)
    if entry["rank_change"]:
        arrow = "▲" if entry["rank_change"] > 0 else "▼"
        text += f" ({arrow}{number(abs(entry['rank_change']), lang, 0)})"
    return text


def _change_class(entry: Mapping[str, Any]) -> str:
    change = entry["score_change"]
    if change is None or round(change, 2) == 0:
        return "flat"
    return "up" if change > 0 else "down"


def _rank_text(entry: Mapping[str, Any], lang: Language) -> str:
    rank = entry["rank"]
    return t("unranked", lang) if rank is None else number(rank, lang, 0)


def _rank_of(entry: Mapping[str, Any], count: int, lang: Language) -> str:
    return t("rank_of", lang, rank=_rank_text(entry, lang), count=number(count, lang, 0))


def _band(score: float | None) -> str:
    """A colour band for a 0-100 score."""
    if score is None:
        return "none"
    if score >= 75:
        return "good"
    if score >= 50:
        return "fair"
    return "poor"


def lowest_ranked(table: Mapping[str, Any], count: int = LOWEST) -> list[Mapping[str, Any]]:
    """The `count` lowest-ranked scored agencies of the table, lowest first."""
    ranked = [entry for entry in table["league"] if entry["rank"] is not None]
    return list(reversed(ranked[-count:]))


# -- the dashboard page -------------------------------------------------------------------


def page_href(lang: Language, quarter: str | None) -> str:
    query = {"lang": lang} | ({"quarter": quarter} if quarter else {})
    return "/dashboard/evaluations?" + urlencode(query)


def _weak_items(entry: Mapping[str, Any], lang: Language) -> str:
    by_code = {m["indicator"]: m for m in entry["measures"]}
    items = []
    for code in entry["weakest"]:
        measure = by_code[code]
        items.append(
            f'<li data-measure="{escape(code)}"><span class="measure">'
            f"{escape(_measure_name(measure, lang))}</span>: "
            f'<span class="figure">{escape(figure_text(measure, lang))}</span> '
            f'<span class="lost">(−{escape(number(measure["points_lost"], lang))} '
            f"{escape(t('score', lang))})</span></li>"
        )
    return "".join(items)


def _lowest_section(table: Mapping[str, Any], lang: Language) -> str:
    cards = []
    count = table["agencies_ranked"]
    for entry in lowest_ranked(table):
        cards.append(
            f'<article class="agency band-{_band(entry["score"])}" '
            f'data-agency="{escape(entry["agency"])}">'
            f'<div class="head"><h3>{escape(_name(entry, lang))}</h3>'
            f'<span class="rank">{escape(_rank_of(entry, count, lang))}</span></div>'
            f'<p class="score">{escape(t("score", lang))}: '
            f"<strong>{escape(score_text(entry['score'], lang))}</strong> "
            f'<span class="change {_change_class(entry)}">{escape(_change(entry, lang))}</span></p>'
            f'<p class="why">{escape(t("weakest", lang))}:</p>'
            f'<ul class="weakest">{_weak_items(entry, lang)}</ul></article>'
        )
    return (
        f'<section id="lowest" aria-labelledby="lowest-title"><h2 id="lowest-title">'
        f'{escape(t("lowest", lang))}</h2><p class="note">{escape(t("lowest_note", lang))}</p>'
        f'<div class="agencies">{"".join(cards)}</div></section>'
    )


def _league_rows(table: Mapping[str, Any], lang: Language, *, measures: bool) -> str:
    rows = []
    for entry in table["league"]:
        cells = [
            f'<td class="num rank">{escape(_rank_text(entry, lang))}</td>',
            f'<td class="name">{escape(_name(entry, lang))}</td>',
            f'<td class="num score band-{_band(entry["score"])}">'
            f"{escape(score_text(entry['score'], lang))}</td>",
            f'<td class="num change {_change_class(entry)}">{escape(_change(entry, lang))}</td>',
        ]
        if measures:
            for measure in entry["measures"]:
                cells.append(
                    f'<td class="num band-{_band(measure["score"])}" '
                    f'data-measure="{escape(measure["indicator"])}" '
                    f'title="{escape(figure_text(measure, lang))}">'
                    f"{escape(score_text(measure['score'], lang))}</td>"
                )
        else:
            weakest = {m["indicator"]: m for m in entry["measures"]}
            names = ("، " if lang == "fa" else ", ").join(
                _measure_name(weakest[code], lang) for code in entry["weakest"]
            )
            cells.append(f'<td class="weak">{escape(names)}</td>')
        rows.append(f'<tr data-agency="{escape(entry["agency"])}">{"".join(cells)}</tr>')
    return "".join(rows)


def _league_head(table: Mapping[str, Any], lang: Language, *, measures: bool) -> str:
    heads = [t("rank", lang), t("agency", lang), t("score", lang), t("change", lang)]
    cells = [f'<th scope="col">{escape(h)}</th>' for h in heads]
    if measures:
        for measure in table["measures"]:
            cells.append(
                f'<th scope="col" class="measure" data-measure="{escape(measure["indicator"])}">'
                f"{escape(_measure_name(measure, lang))}</th>"
            )
    else:
        cells.append(f'<th scope="col">{escape(t("weakest", lang))}</th>')
    return "".join(cells)


def _weights_list(table: Mapping[str, Any], lang: Language) -> str:
    items = [
        f"<li>{escape(_measure_name(m, lang))}: {escape(number(m['weight'], lang, 2))}</li>"
        for m in table["measures"]
    ]
    return f'<ul class="weights">{"".join(items)}</ul>'


def _period(table: Mapping[str, Any], lang: Language) -> str:
    return t(
        "period",
        lang,
        first=jalali_day_text(table["first_day"], lang),
        last=jalali_day_text(table["last_day"], lang),
    )


def _quarter_options(quarters: Sequence[str], chosen: str, lang: Language) -> str:
    options = []
    for quarter in sorted({*quarters, chosen}, reverse=True):
        selected = " selected" if quarter == chosen else ""
        options.append(
            f'<option value="{escape(quarter)}"{selected}>'
            f"{escape(quarter_name(quarter, lang))}</option>"
        )
    return "".join(options)


def evaluations_page(
    lang: Language, quarter: str, table: Mapping[str, Any] | None, quarters: Sequence[str]
) -> str:
    """The dashboard page of a quarter: its league table (as the API answers it), or a
    note that there is none yet."""
    if table is None:
        body = f'<p id="empty" class="note">{escape(t("none", lang))}</p>'
        status = ""
    else:
        status = (
            f"{escape(_period(table, lang))} · "
            f"{escape(t('closed' if table['closed'] else 'running', lang))} "
            f"{escape(t('ranked', lang, n=number(table['agencies_ranked'], lang, 0)))}"
        )
        body = (
            _lowest_section(table, lang) + '<section id="league" aria-labelledby="league-title">'
            f'<h2 id="league-title">{escape(t("league", lang))}</h2>'
            '<div class="scroll"><table class="league">'
            f"<thead><tr>{_league_head(table, lang, measures=True)}</tr></thead>"
            f"<tbody>{_league_rows(table, lang, measures=True)}</tbody></table></div></section>"
            '<section id="method" aria-labelledby="method-title">'
            f'<h2 id="method-title">{escape(t("weights", lang))}</h2>'
            f'{_weights_list(table, lang)}<p class="note">{escape(t("method", lang))}</p>'
            "</section>"
        )
    reports = (
        f'<a id="report-html" href="/api/reports/agency-evaluation/{escape(quarter)}.html">'
        f"{escape(t('report_html', lang))}</a> · "
        f'<a id="report-pdf" href="/api/reports/agency-evaluation/{escape(quarter)}.pdf">'
        f"{escape(t('report_pdf', lang))}</a>"
    )
    return Template(_TEMPLATE.read_text("utf-8")).substitute(
        lang=lang,
        dir="rtl" if lang == "fa" else "ltr",
        title=escape(t("title", lang)),
        heading=escape(f"{t('title', lang)}: {quarter_name(quarter, lang)}"),
        quarter=escape(quarter),
        fa_href=escape(page_href("fa", quarter)),
        en_href=escape(page_href("en", quarter)),
        dashboard_link=escape(t("dashboard", lang)),
        programme_link=escape(t("programme", lang)),
        provinces_link=escape(t("provinces", lang)),
        quarter_label=escape(t("quarter", lang)),
        quarter_options=_quarter_options(quarters, quarter, lang),
        show=escape(t("show", lang)),
        status=status,
        reports=reports if table is not None else "",
        body=body,
    )


# -- the printable report ----------------------------------------------------------------

_REPORT_STYLE = """
@page { size: A4; margin: 16mm 14mm; }
html { direction: rtl; }
body { font-family: FONTS; color: #1d2433; font-size: 10.5pt; line-height: 1.6; margin: 0; }
h1 { font-size: 17pt; margin: 0 0 4pt; }
h2 { font-size: 13pt; margin: 14pt 0 6pt; }
p { margin: 3pt 0; }
.meta { color: #5b6475; }
.quarter { font-size: 13pt; font-weight: bold; }
table { border-collapse: collapse; width: 100%; margin: 6pt 0; }
th, td { border: 0.6pt solid #c9cfdb; padding: 3pt 5pt; text-align: start; vertical-align: top; }
th { background: #eef1f6; }
td.num { text-align: center; white-space: nowrap; }
.up { color: #146c2e; } .down { color: #a01b1b; }
.band-good { background: #dcf3e2; } .band-fair { background: #fff0c2; }
.band-poor { background: #fde0e0; }
section.agency { page-break-before: always; break-before: page; }
.summary { font-size: 12pt; }
ul { margin: 3pt 0; padding-inline-start: 14pt; }
""".replace("FONTS", REPORT_FONTS)


def _agency_page(entry: Mapping[str, Any], table: Mapping[str, Any]) -> str:
    lang: Language = "fa"
    rows = []
    for measure in entry["measures"]:
        rows.append(
            f'<tr data-measure="{escape(measure["indicator"])}">'
            f"<td>{escape(_measure_name(measure, lang))}</td>"
            f'<td class="num">{escape(figure_text(measure, lang))}</td>'
            f'<td class="num band-{_band(measure["score"])}">'
            f"{escape(score_text(measure['score'], lang))}</td>"
            f'<td class="num">{escape(number(measure["weight"], lang, 2))}</td>'
            f'<td class="num">{escape(number(measure["points_lost"], lang))}</td></tr>'
        )
    previous = (
        ""
        if entry["previous_score"] is None
        else (
            f"<p>{escape(quarter_name(entry['previous_quarter'], lang))}: "
            f"{escape(t('score', lang))} {escape(number(entry['previous_score'], lang))}"
            + (
                f"، {escape(t('rank', lang))} {escape(number(entry['previous_rank'], lang, 0))}"
                if entry["previous_rank"] is not None
                else ""
            )
            + "</p>"
        )
    )
    heads = ("measure", "figure", "measure_score", "weight", "lost")
    return (
        f'<section class="agency" data-agency="{escape(entry["agency"])}">'
        f"<h2>{escape(_name(entry, lang))}</h2>"
        f'<p class="meta">{escape(quarter_name(table["quarter"], lang))} · '
        f"{escape(_period(table, lang))}</p>"
        f'<p class="summary">{escape(t("score", lang))}: '
        f"<strong>{escape(score_text(entry['score'], lang))}</strong> · "
        f"{escape(_rank_of(entry, table['agencies_ranked'], lang))}"
        f' · <span class="{_change_class(entry)}">{escape(t("change", lang))}: '
        f"{escape(_change(entry, lang))}</span></p>{previous}"
        "<table><thead><tr>"
        + "".join(f"<th>{escape(t(h, lang))}</th>" for h in heads)
        + f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f'<p>{escape(t("weakest", lang))}:</p><ul class="weakest">{_weak_items(entry, lang)}</ul>'
        "</section>"
    )


def report_html(table: Mapping[str, Any]) -> str:
    """The printable report of a quarter, in Persian: the league table, then a page per
    agency. Deterministic: the same league table gives the same document (so a report is
    regenerated as a new revision only when its figures changed)."""
    lang: Language = "fa"
    title = f"{t('report_title', lang)}: {quarter_name(table['quarter'], lang)}"
    status = t("closed" if table["closed"] else "running", lang)
    return (
        '<!doctype html><html lang="fa" dir="rtl"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_REPORT_STYLE}</style></head><body>"
        f'<section class="league"><h1 id="report-title">{escape(t("report_title", lang))}</h1>'
        f'<p class="quarter">{escape(quarter_name(table["quarter"], lang))}</p>'
        f'<p class="meta">{escape(_period(table, lang))} · {escape(status)} '
        f"{escape(t('ranked', lang, n=number(table['agencies_ranked'], lang, 0)))}</p>"
        f"<h2>{escape(t('league', lang))}</h2>"
        f"<table><thead><tr>{_league_head(table, lang, measures=False)}</tr></thead>"
        f"<tbody>{_league_rows(table, lang, measures=False)}</tbody></table>"
        f"<h2>{escape(t('weights', lang))}</h2>{_weights_list(table, lang)}"
        f"<p>{escape(t('method', lang))}</p></section>"
        + "".join(_agency_page(entry, table) for entry in table["league"])
        + "</body></html>"
    )
