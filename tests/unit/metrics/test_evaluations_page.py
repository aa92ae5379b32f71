"""The evaluation's dashboard page and printable report: Persian digits and Jalali dates, the
lowest-ranked agencies and why, a page per agency, and a PDF whose Persian is shaped."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pypdfium2 as pdfium  # type: ignore[import-untyped]
import pytest

from services.metrics import documents
from services.metrics.domain import evaluations as ev
from services.metrics.domain.windows import window_from_label
from services.metrics.evaluations_page import (
    evaluations_page,
    figure_text,
    jalali_day_text,
    number,
    quarter_name,
    report_html,
    score_text,
    signed,
)
from services.metrics.use_cases.evaluations import LeagueTable
from tests.unit.metrics.fakes import FakeCounts
from tests.unit.metrics.test_evaluations import ALL_WEIGHTS, entry, transaction

QUARTER = "1404-Q1"
TITLE = "گزارش ارزیابی فصلی دستگاه‌های اجرایی"


def _table() -> dict[str, Any]:
    """Three agencies of 1404-Q1: one uses the exchange both ways, one only as a consumer,
    one not at all."""
    counts = FakeCounts()
    for record in (transaction("busy", "half"), transaction("half", "busy")):
        counts.add_all(ev.transaction_increments(record))
    counts.add_all(ev.transaction_increments(transaction("busy", "busy")))
    window = window_from_label("quarter", QUARTER)
    assert window.end is not None
    records = ev.evaluate(
        list(counts.counts),
        counts,
        [entry("busy"), entry("half", window=None), entry("idle", window=None)],
        [],
        ALL_WEIGHTS,
        window.end + timedelta(days=1),
    )
    changed = datetime(2025, 7, 1, tzinfo=UTC)
    mine = [(r, changed) for r in records if r.quarter == QUARTER]
    mine.sort(key=lambda pair: (pair[0].rank or 99, pair[0].agency))
    return LeagueTable(QUARTER, mine, [QUARTER]).as_json()


def test_numbers_and_dates_are_written_the_persian_way() -> None:
    assert number(1234.5, "fa") == "۱٬۲۳۴٫۵"
    assert number(1234.5, "en") == "1,234.5"
    assert number(60.0, "fa") == "۶۰"
    assert signed(-27.63, "fa") == "−۲۷٫۶۳"
    # Scores as computed, to two decimals: neighbours in the table never look alike.
    assert score_text(47.37, "fa") == "۴۷٫۳۷"
    assert score_text(None, "en") == "—"
    assert signed(0.001, "en") == "0"
    assert jalali_day_text("1405-07-01", "fa") == "۱ مهر ۱۴۰۵"
    assert jalali_day_text("1405-07-01", "en") == "1 Mehr 1405"
    assert quarter_name("1405-Q3", "fa") == "فصل سوم (پاییز) ۱۴۰۵"
    assert quarter_name("1405-Q3", "en") == "Q3 1405 (autumn)"


@pytest.mark.parametrize(
    ("measure", "fa", "en"),
    [
        (
            {"unit": "percent", "value": 62.5, "numerator": 5, "denominator": 8},
            "۶۲٫۵٪ (۵ از ۸)",
            "62.5% (5 of 8)",
        ),
        ({"unit": "yes_no", "value": 0.0}, "خیر", "no"),
        ({"unit": "milliseconds", "value": 1975.4}, "۱٬۹۷۵ میلی‌ثانیه", "1,975 ms"),
        ({"unit": "percent", "value": None}, "بی‌داده", "no data"),
        (
            {"unit": "milliseconds", "value": None, "applicable": False},
            "موضوعیت ندارد",
            "not applicable",
        ),
    ],
)
def test_each_figure_is_shown_in_its_unit(measure: dict[str, Any], fa: str, en: str) -> None:
    shown = {"applicable": True, "numerator": None, "denominator": None, **measure}
    assert figure_text(shown, "fa") == fa
    assert figure_text(shown, "en") == en


def test_the_page_puts_the_lowest_ranked_first_with_what_pulls_them_down() -> None:
    table = _table()
    page = evaluations_page("fa", QUARTER, table, [QUARTER])

    assert '<html lang="fa" dir="rtl">' in page
    order = re.findall(r'<article class="agency band-\w+" data-agency="([a-z-]+)">', page)
    assert order == ["idle", "half", "busy"]
    idle = re.search(r'data-agency="idle">(.*?)</article>', page, re.S)
    assert idle is not None
    assert "رتبه ۳ از ۳" in idle.group(1)
    assert re.findall(r'<li data-measure="([a-z_]+)">', idle.group(1)) == [
        ev.ELECTRONIC,
        ev.SMART,
        ev.WINDOW,
    ]
    assert "۱ فروردین ۱۴۰۴" in page
    assert "/api/reports/agency-evaluation/1404-Q1.pdf" in page


def test_the_page_says_when_a_quarter_has_no_evaluation_in_english_too() -> None:
    page = evaluations_page("en", "1405-Q3", None, [])
    assert '<html lang="en" dir="ltr">' in page
    assert "There is no evaluation for this quarter yet." in page
    assert "report-pdf" not in page


def test_text_from_the_data_cannot_become_markup() -> None:
    table = _table()
    table["league"][0]["agency_name_fa"] = "<script>alert(1)</script>"
    assert "<script>alert" not in evaluations_page("fa", QUARTER, table, [QUARTER])
    assert "<script>alert" not in report_html(table)


def test_the_report_has_the_league_table_then_a_page_per_agency() -> None:
    html = report_html(_table())
    assert html.startswith('<!doctype html><html lang="fa" dir="rtl">')
    assert f'<h1 id="report-title">{TITLE}</h1>' in html
    assert re.findall(r'<section class="agency" data-agency="([a-z-]+)">', html) == [
        "busy",
        "half",
        "idle",
    ]
    assert "break-before: page" in html
    # Nothing outside the document: no link, no script, no remote font.
    assert not re.search(r"<(link|script|img)\b|url\(", html)
    assert report_html(_table()) == html


def _ink_width(pdf: bytes) -> tuple[int, str]:
    """The width in pixels of the first line of ink on the first page (the title), and the
    page's text as pdfium extracts it."""
    document = pdfium.PdfDocument(pdf)
    page = document[0]
    text = page.get_textpage().get_text_range()
    image = page.render(scale=2).to_pil().convert("L")
    width, height = image.size
    pixels = image.load()
    assert pixels is not None
    inked_rows = [y for y in range(height) if any(pixels[x, y] < 128 for x in range(width))]
    first = inked_rows[0]
    line = [first]
    for y in inked_rows[1:]:
        if y - line[-1] > 3:
            break
        line.append(y)
    columns = [x for x in range(width) if any(pixels[x, y] < 128 for y in line)]
    return max(columns) - min(columns), text


async def test_the_pdf_shapes_the_persian_title_and_its_text_reads_back() -> None:
    html = report_html(_table())
    isolated = html.replace(
        f'<h1 id="report-title">{TITLE}</h1>',
        f'<h1 id="report-title">{chr(0x200C).join(TITLE)}</h1>',
    )
    assert isolated != html

    shaped_width, text = _ink_width(await documents.render_pdf(html))
    isolated_width, _ = _ink_width(await documents.render_pdf(isolated))

    # Letters joined as Persian writes them take less room than each letter on its own.
    assert isolated_width > shaped_width * 1.1, (shaped_width, isolated_width)
    # pdfium reads the title back in its logical order (without its zero-width non-joiner).
    assert TITLE.replace(chr(0x200C), "") in text.replace(chr(0x200C), "")
    assert "از ۱ فروردین ۱۴۰۴ تا ۳۱ خرداد ۱۴۰۴" in text
