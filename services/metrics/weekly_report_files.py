"""The weekly reports as files: a report per province and the national summary, in HTML
(Persian, right to left, Jalali dates, Persian digits, English beside each heading;
printable on A4, and what the PDF is rendered from) and CSV (UTF-8 with a byte order
mark, a header in both languages).

Each file is a function of the week's league alone (no clock inside it): generated again
from the same reports, it is the same bytes, so only a real change makes a revision.
Every text that came from a directorate (a reason) is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Any

from services.metrics.documents import FONT_STACK, csv_document
from services.metrics.domain.league import SCORE_WEIGHTS, SHARE_FIGURES
from services.metrics.domain.provincial_reports import Project
from services.metrics.provinces_page import figures as figure_names
from services.metrics.use_cases.weekly_reports import Standing, WeekLeague
from shared.jalali import jalali_moment
from shared.reference.provinces import BY_CODE

_PERSIAN_DIGITS = str.maketrans("0123456789,.-", "۰۱۲۳۴۵۶۷۸۹٬٫−")

STATUS_NAMES = {
    "achieved": ("دست‌یافته", "achieved"),
    "on_track": ("در مسیر", "on track"),
    "at_risk": ("در خطر", "at risk"),
    "behind": ("عقب", "behind"),
    "missed": ("از دست‌رفته", "missed"),
    "no_data": ("بی‌داده", "no data"),
}


def fa_number(value: float | None, decimals: int = 2) -> str:
    """A number as Persian readers write it: Persian digits, `٬` between thousands, `٫`
    before decimals (no trailing zeros); an empty figure is a dash."""
    if value is None:
        return "–"
    text = f"{value:,.{decimals}f}".rstrip("0").rstrip(".") if decimals else f"{value:,.0f}"
    return text.translate(_PERSIAN_DIGITS)


def fa_signed(value: float | None) -> str:
    if value is None:
        return "–"
    sign = "+" if value > 0 else ""
    return sign + fa_number(value) if value >= 0 else fa_number(value)


def fa_day(day: str) -> str:
    """A Jalali day `1405-06-08` as `۱۴۰۵/۰۶/۰۸`."""
    return day.replace("-", "/").translate(_PERSIAN_DIGITS)


def fa_week(week: str) -> str:
    """`1405-W36` as «هفته ۳۶ سال ۱۴۰۵»."""
    year, number = week.split("-W")
    return f"هفته {fa_number(int(number), 0)} سال {year.translate(_PERSIAN_DIGITS)}"


def _names() -> dict[str, dict[str, str]]:
    return {f["code"]: f for f in figure_names()}


_STYLE = f"""
@page {{ size: A4; margin: 14mm 12mm; }}
html {{ font-family: {FONT_STACK}; font-size: 10.5pt; color: #1b1f24; }}
body {{ margin: 0; }}
h1 {{ font-size: 17pt; margin: 0 0 2pt; }}
h2 {{ font-size: 12.5pt; margin: 14pt 0 4pt; border-bottom: 1px solid #9aa5b1; }}
.en {{ direction: ltr; unicode-bidi: isolate; color: #52606d; font-size: 8.5pt; }}
p.en, div.en {{ text-align: left; }}
.meta {{ color: #3e4c59; margin: 2pt 0; }}
table {{ border-collapse: collapse; width: 100%; margin-top: 4pt; page-break-inside: auto; }}
tr {{ page-break-inside: avoid; }}
th, td {{ border: 1px solid #cbd2d9; padding: 2.5pt 4pt; text-align: right; }}
th {{ background: #e4e7eb; font-weight: bold; }}
td.num {{ white-space: nowrap; }}
.up {{ color: #1f7a3f; }} .down {{ color: #b42318; }}
.late {{ color: #a15c07; }} .missing {{ color: #b42318; }}
.cards {{ display: flex; gap: 8pt; margin: 6pt 0; }}
.card {{ border: 1px solid #cbd2d9; padding: 4pt 8pt; flex: 1; }}
.card b {{ font-size: 14pt; display: block; }}
footer {{ margin-top: 12pt; color: #52606d; font-size: 8.5pt; }}
"""


def _page(title_fa: str, title_en: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="fa" dir="rtl">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title_fa)} | {escape(title_en)}</title>\n"
        f"<style>{_STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def _heading(level: int, fa: str, en: str) -> str:
    return f'<h{level}>{escape(fa)} <span class="en" lang="en">{escape(en)}</span></h{level}>'


def _table(headers: Iterable[tuple[str, str]], rows: Iterable[Iterable[str]]) -> str:
    head = "".join(
        f'<th>{escape(fa)}<br><span class="en" lang="en">{escape(en)}</span></th>'
        for fa, en in headers
    )
    body = "".join("<tr>" + "".join(cells) + "</tr>" for cells in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(text: str, css: str = "") -> str:
    return f'<td class="{css}">{escape(text)}</td>' if css else f"<td>{escape(text)}</td>"


def _change_cell(change: float | None) -> str:
    css = "num up" if change and change > 0 else "num down" if change and change < 0 else "num"
    return _cell(fa_signed(change), css)


def _period_lines(league: WeekLeague) -> str:
    overview = league.overview.as_json()
    starts, ends = overview["starts_on"], overview["ends_on"]
    as_of = (
        jalali_moment(league.inputs_through, seconds=False).translate(_PERSIAN_DIGITS)
        if league.inputs_through is not None
        else "–"
    )
    return (
        f'<p class="meta">{escape(fa_week(league.week))}: از {fa_day(starts)} تا {fa_day(ends)}'
        f" · آخرین گزارش دریافتی: {escape(as_of)} (به وقت تهران)</p>"
        f'<p class="meta en" lang="en">Week {escape(league.week)}: {escape(starts)} to '
        f"{escape(ends)} (Jalali) · latest report received: "
        f"{escape(as_of.translate(str.maketrans('۰۱۲۳۴۵۶۷۸۹', '0123456789')))} Tehran time</p>"
    )


def _rule_footer() -> str:
    weights = {k: fa_number(v * 100, 0) for k, v in SCORE_WEIGHTS.items()}
    return (
        "<footer>"
        f"<p>امتیاز هر استان: {weights['coverage']}٪ میانگین درصدهای پوشش گزارش‌شده، "
        f"{weights['projects']}٪ میانگین پیشرفت پروژه‌های واگذارشده (پروژه گزارش‌نشده: صفر) و "
        f"{weights['timeliness']}٪ به‌هنگام بودن گزارش. استانی که گزارش نداده امتیاز و رتبه‌ای "
        "ندارد.</p>"
        '<p class="en" lang="en">A province\'s score: 60% the mean of the coverage shares it '
        "reported, 30% the mean progress of its assigned projects (one not reported counts "
        "0), 10% reporting on time. A province that did not report has no score or rank.</p>"
        "</footer>"
    )


def _province_name(code: str) -> tuple[str, str]:
    names = BY_CODE[code]
    return names.name_fa, names.name_en


def _names_list(codes: Iterable[str]) -> str:
    listed = [_province_name(code) for code in codes]
    if not listed:
        return "هیچ‌کدام <span class='en' lang='en'>none</span>"
    return (
        "، ".join(escape(fa) for fa, _ in listed)
        + f' <span class="en" lang="en">({escape(", ".join(en for _, en in listed))})</span>'
    )


def _rank_text(standing: Standing) -> str:
    return fa_number(standing.rank, 0) if standing.rank is not None else "–"


def national_html(league: WeekLeague) -> str:
    """The national summary: roll-up, who did not report, top and bottom five, the table."""
    summary = league.summary()
    not_reported = summary["missing"] + summary["awaited"]
    names = _names()
    parts = [
        _heading(1, "گزارش هفتگی ملی استان‌ها", "National weekly report of the provinces"),
        _period_lines(league),
        '<div class="cards">',
        f'<div class="card">گزارش‌داده <span class="en" lang="en">reported</span>'
        f"<b>{fa_number(summary['reported'], 0)} از {fa_number(summary['provinces'], 0)}</b></div>",
        f'<div class="card">با تأخیر <span class="en" lang="en">late</span>'
        f"<b>{fa_number(len(summary['late']), 0)}</b></div>",
        f'<div class="card">بی‌گزارش <span class="en" lang="en">did not report</span>'
        f"<b>{fa_number(len(summary['missing']) + len(summary['awaited']), 0)}</b></div>",
        f'<div class="card">میانگین امتیاز <span class="en" lang="en">mean score</span>'
        f"<b>{fa_number(summary['mean_score'])}</b></div>",
        "</div>",
        _heading(2, "استان‌هایی که گزارش ندادند", "Provinces that did not report"),
        f'<p class="missing" id="missing">{_names_list(not_reported)}</p>',
        _heading(2, "گزارش با تأخیر", "Reported late"),
        f'<p class="late">{_names_list(summary["late"])}</p>',
    ]
    for key, fa, en in (
        ("top", "پنج استان برتر", "Top five"),
        ("bottom", "پنج استان پایانی", "Bottom five"),
    ):
        rows = [
            [
                _cell(_rank_text(league.standing(item["province"])), "num"),
                _cell(_province_name(item["province"])[0]),
                _cell(_province_name(item["province"])[1]),
                _cell(fa_number(item["score"]), "num"),
            ]
            for item in summary[key]
        ]
        parts += [
            _heading(2, fa, en),
            _table([("رتبه", "rank"), ("استان", "province"), ("", ""), ("امتیاز", "score")], rows),
        ]
    share_codes = list(SHARE_FIGURES)
    table_rows = []
    for standing in league.ranked():
        assert standing.score is not None
        assert standing.entry.report is not None
        record = standing.entry.report.record
        moved = (
            None
            if standing.previous_rank is None or standing.rank is None
            else standing.previous_rank - standing.rank
        )
        table_rows.append(
            [
                _cell(_rank_text(standing), "num"),
                _change_cell(moved),
                _cell(_province_name(standing.province)[0]),
                _cell(fa_number(standing.score.total), "num"),
                _cell("با تأخیر" if record.late else "به‌هنگام", "late" if record.late else ""),
                *(_cell(fa_number(record.figures.get(code)), "num") for code in share_codes),
            ]
        )
    parts += [
        _heading(2, "جدول رده‌بندی استان‌ها", "League table"),
        _table(
            [
                ("رتبه", "rank"),
                ("جابه‌جایی", "places moved"),
                ("استان", "province"),
                ("امتیاز", "score"),
                ("زمان گزارش", "timeliness"),
                *((names[c]["name_fa"], names[c]["name_en"]) for c in share_codes),
            ],
            table_rows,
        ),
    ]
    roll_rows = []
    for rolled in summary["roll_up"]:
        figure = names[rolled["figure"]]
        roll_rows.append(
            [
                _cell(figure["name_fa"]),
                _cell(fa_number(rolled["provinces"], 0), "num"),
                _cell(fa_number(rolled["total"]), "num"),
                _cell(fa_number(rolled["mean"]), "num"),
                _cell(fa_number(rolled["lowest"]), "num"),
                _cell(fa_number(rolled["highest"]), "num"),
            ]
        )
    parts += [
        _heading(2, "جمع‌بندی ملی شاخص‌ها", "National roll-up"),
        _table(
            [
                ("شاخص", "figure"),
                ("استان‌ها", "provinces"),
                ("جمع", "total"),
                ("میانگین", "mean"),
                ("کمترین", "lowest"),
                ("بیشترین", "highest"),
            ],
            roll_rows,
        ),
        _rule_footer(),
    ]
    return _page(
        f"گزارش هفتگی ملی استان‌ها، {fa_week(league.week)}",
        f"National weekly report of the provinces, {league.week}",
        "\n".join(parts),
    )


def province_html(league: WeekLeague, province: str, projects: Iterable[Project]) -> str:
    """A province's weekly report: its figures and their change since its previous report,
    its projects, its standing against its targets, its score and rank."""
    standing = league.standing(province)
    report = standing.entry.report
    if report is None or standing.score is None:
        raise ValueError(f"{province} did not report for {league.week}")
    record = report.record
    data: dict[str, Any] = standing.entry.as_json()
    names = _names()
    project_names = {p.code: p for p in projects}
    fa, en = _province_name(province)
    reported = len(league.scores())
    previous = (
        f"{fa_number(standing.previous_rank, 0)} در {escape(fa_week(league.previous_week))}"
        if standing.previous_rank is not None
        else "بی‌رتبه در هفته پیش"
    )
    parts = [
        _heading(1, f"گزارش هفتگی استان {fa}", f"Weekly report of {en}"),
        _period_lines(league),
        '<div class="cards">',
        f'<div class="card" id="rank">رتبه <span class="en" lang="en">rank</span>'
        f"<b>{_rank_text(standing)} از {fa_number(reported, 0)}</b>{previous}</div>",
        f'<div class="card">امتیاز <span class="en" lang="en">score</span>'
        f"<b>{fa_number(standing.score.total)}</b>پوشش {fa_number(standing.score.coverage)} · "
        f"پروژه‌ها {fa_number(standing.score.projects)} · به‌هنگامی "
        f"{fa_number(standing.score.timeliness)}</div>",
        f'<div class="card">گزارش <span class="en" lang="en">report</span>'
        f"<b>{'با تأخیر' if record.late else 'به‌هنگام'}</b>نسخه {fa_number(record.revision, 0)}"
        "</div>",
        "</div>",
    ]
    figure_rows = []
    for code, figure in data["figures"].items():
        name = names.get(code, {"name_fa": code, "name_en": code})
        figure_rows.append(
            [
                _cell(name["name_fa"]),
                _cell(name["name_en"]),
                _cell(fa_number(figure["value"]), "num"),
                _cell(fa_number(figure["previous"]), "num"),
                _change_cell(figure["change"]),
                _cell(record.reasons.get(code, "")),
            ]
        )
    parts += [
        _heading(2, "شاخص‌ها و تغییر از هفته پیش", "Figures and change since last week"),
        _table(
            [
                ("شاخص", "figure"),
                ("", ""),
                ("این هفته", "this week"),
                ("گزارش پیشین", "previous report"),
                ("تغییر", "change"),
                ("علت کاهش", "reason for a fall"),
            ],
            figure_rows,
        ),
    ]
    project_rows = []
    for code, progress in data["projects"].items():
        project = project_names.get(code)
        project_rows.append(
            [
                _cell(project.name_fa if project else code),
                _cell(fa_number(progress["value"]), "num"),
                _change_cell(progress["change"]),
                _cell(record.reasons.get(f"projects.{code}", "")),
            ]
        )
    parts += [
        _heading(2, "پیشرفت پروژه‌ها (درصد)", "Projects' progress (percent)"),
        _table(
            [("پروژه", "project"), ("پیشرفت", "progress"), ("تغییر", "change"), ("علت", "reason")],
            project_rows,
        ),
    ]
    target_rows = []
    for target in standing.targets:
        name = names.get(target.target.indicator, {"name_fa": target.target.indicator})
        status_fa, status_en = STATUS_NAMES[target.status]
        target_rows.append(
            [
                _cell(name["name_fa"]),
                _cell(fa_number(target.target.baseline_value)),
                _cell(fa_number(target.target.target_value)),
                _cell(fa_day(target.target.deadline)),
                _cell(fa_number(target.value), "num"),
                _cell(fa_number(target.progress), "num"),
                _cell(fa_number(target.expected), "num"),
                _cell(f"{status_fa} ({status_en})"),
            ]
        )
    parts += [
        _heading(2, "در برابر هدف‌های استان", "Against the province's targets"),
        _table(
            [
                ("شاخص", "indicator"),
                ("پایه", "baseline"),
                ("هدف", "target"),
                ("موعد", "deadline"),
                ("این هفته", "this week"),
                ("پیشرفت ٪", "progress %"),
                ("انتظار ٪", "expected %"),
                ("وضعیت", "status"),
            ],
            target_rows,
        )
        if target_rows
        else '<p class="meta">هدفی برای این استان در فهرست برنامه نیست. '
        '<span class="en" lang="en">The register holds no target for this province.</span></p>',
        _rule_footer(),
    ]
    return _page(
        f"گزارش هفتگی استان {fa}، {fa_week(league.week)}",
        f"Weekly report of {en}, {league.week}",
        "\n".join(parts),
    )


def national_csv(league: WeekLeague) -> bytes:
    """The league table, every province a row (those that did not report too)."""
    names = _names()
    codes = list(names)
    header = [
        "rank / رتبه",
        "previous rank / رتبه هفته پیش",
        "province / استان",
        "name_fa / نام",
        "name_en",
        "status / وضعیت",
        "late / با تأخیر",
        "score / امتیاز",
        "coverage / پوشش",
        "projects / پروژه‌ها",
        "timeliness / به‌هنگامی",
        *(f"{code} / {names[code]['name_fa']}" for code in codes),
    ]
    ranked = league.ranked()
    others = [s for s in league.standings if s.score is None]
    rows = []
    for standing in [*ranked, *others]:
        report = standing.entry.report
        figures = report.record.figures if report is not None else {}
        score = standing.score
        fa, en = _province_name(standing.province)
        rows.append(
            [
                standing.rank,
                standing.previous_rank,
                standing.province,
                fa,
                en,
                standing.entry.status,
                None if report is None else str(report.record.late).lower(),
                None if score is None else score.total,
                None if score is None else score.coverage,
                None if score is None else score.projects,
                None if score is None else score.timeliness,
                *(figures.get(code) for code in codes),
            ]
        )
    return csv_document(header, rows)


def province_csv(league: WeekLeague, province: str) -> bytes:
    """A province's figures and projects, each with its previous value and change."""
    standing = league.standing(province)
    data = standing.entry.as_json()
    names = _names()
    header = [
        "kind / نوع",
        "code / کد",
        "name_fa / نام",
        "name_en",
        "value / مقدار",
        "previous / پیشین",
        "change / تغییر",
    ]
    rows: list[list[object]] = []
    for code, figure in data.get("figures", {}).items():
        name = names.get(code, {"name_fa": code, "name_en": code})
        rows.append(
            [
                "figure",
                code,
                name["name_fa"],
                name["name_en"],
                figure["value"],
                figure["previous"],
                figure["change"],
            ]
        )
    for code, progress in data.get("projects", {}).items():
        rows.append(
            ["project", code, "", "", progress["value"], progress["previous"], progress["change"]]
        )
    score = standing.score
    if score is not None:
        rows.append(["score", "total", "امتیاز", "score", score.total, None, None])
        rows.append(["rank", "rank", "رتبه", "rank", standing.rank, standing.previous_rank, None])
    return csv_document(header, rows)
