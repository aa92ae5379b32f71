"""The week's league through the use case on an in-memory unit of work: scores, ranks
and the rank the week before, the summary naming who did not report, a province against
its targets; the files made from it (Persian digits, escaped reasons, CSV with a BOM);
the allocation refusing bad input in both languages."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

import services.metrics.messages  # noqa: F401  (registers the codes refusals carry)
from services.metrics.domain.provincial_reports import load_projects
from services.metrics.domain.windows import window_of
from services.metrics.use_cases import provinces, weekly_reports
from services.metrics.use_cases.provinces import ReportEntry
from services.metrics.weekly_report_files import (
    fa_number,
    national_csv,
    national_html,
    province_csv,
    province_html,
)
from shared.errors import Invalid
from shared.events.programme import TargetRecorded
from shared.messages import MESSAGES as CATALOG
from tests.unit.metrics.fakes import FakeProgrammeWork

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
WEEK = window_of("week", NOW - timedelta(days=7)).label
BEFORE = window_of("week", NOW - timedelta(days=14)).label
PROJECTS = load_projects()


async def report(
    work: FakeProgrammeWork, province: str, week: str, share: float, **fields: object
) -> None:
    body = {"figures": {"coverage_4g_share": share, "villages_connected": 100}} | fields
    await provinces.submit_report(
        work,
        province,
        week,
        ReportEntry.model_validate(body),
        agency=f"ict-{province.lower()}",
        projects=PROJECTS,
        now=NOW,
    )


async def seeded() -> FakeProgrammeWork:
    work = FakeProgrammeWork(NOW)
    await report(work, "IR-01", BEFORE, 90)
    await report(work, "IR-02", BEFORE, 50)
    await report(work, "IR-01", WEEK, 60, reasons={"coverage_4g_share": "<b>سیل</b> دکل‌ها"})
    await report(work, "IR-02", WEEK, 80)
    await report(work, "IR-15", WEEK, 70)
    await work.write_target(
        TargetRecorded(
            target_id="lorestan.coverage",
            indicator="coverage_4g_share",
            scope="province",
            scope_code="IR-15",
            baseline_value=60,
            baseline_date="1404-01-01",
            target_value=80,
            deadline="1406-12-29",
            basis_fa="هدف",
            basis_en="target",
            citation="test",
            active=True,
            revision=1,
            changed_by="test",
        )
    )
    return work


async def test_the_league_ranks_the_reporting_provinces_and_names_the_rest() -> None:
    league = await weekly_reports.week_league(await seeded(), WEEK, NOW, PROJECTS)
    assert [s.province for s in league.ranked()] == ["IR-02", "IR-15", "IR-01"]
    assert [s.rank for s in league.ranked()] == [1, 2, 3]
    # The week before, IR-01 led IR-02.
    assert league.standing("IR-01").previous_rank == 1
    assert league.standing("IR-02").previous_rank == 2
    summary = league.summary()
    assert summary["reported"] == 3
    assert len(summary["missing"]) == 28
    assert "IR-03" in summary["missing"]
    assert [t["province"] for t in summary["top"]] == ["IR-02", "IR-15", "IR-01"]
    (targeted,) = league.standing("IR-15").targets
    assert (targeted.value, targeted.progress) == (70, 50)
    assert league.standing("IR-01").entry.as_json()["figures"]["coverage_4g_share"]["change"] == -30


async def test_the_files_are_persian_escaped_and_open_in_excel() -> None:
    league = await weekly_reports.week_league(await seeded(), WEEK, NOW, PROJECTS)
    national = national_html(league)
    assert 'dir="rtl"' in national
    assert "پنج استان برتر" in national
    assert fa_number(len(league.summary()["missing"]), 0) == "۲۸"
    province = province_html(league, "IR-01", PROJECTS)
    assert "&lt;b&gt;سیل&lt;/b&gt;" in province
    assert "<b>سیل" not in province
    assert "−۳۰" in province
    rows = list(csv.reader(io.StringIO(national_csv(league).decode("utf-8-sig"))))
    assert national_csv(league).startswith(b"\xef\xbb\xbf")
    assert len(rows) == 32
    assert rows[1][:3] == ["1", "2", "IR-02"]
    mine = list(csv.reader(io.StringIO(province_csv(league, "IR-15").decode("utf-8-sig"))))
    assert mine[1][:2] == ["figure", "coverage_4g_share"]
    # The same reports, the same bytes: a regeneration that changed nothing is no revision.
    again = await weekly_reports.week_league(await seeded(), WEEK, NOW, PROJECTS)
    assert national_html(again) == national


async def test_the_allocation_splits_the_budget_among_the_reporting_provinces() -> None:
    split = await weekly_reports.allocation(await seeded(), WEEK, "۱٬۰۰۰٬۰۰۰", NOW, PROJECTS)
    answer = split.as_json()
    assert answer["allocated"] == answer["budget"] == 1_000_000
    amounts = {row["province"]: row["amount"] for row in answer["provinces"]}
    assert amounts["IR-03"] == 0
    assert amounts["IR-02"] > amounts["IR-15"] > amounts["IR-01"] > 0


@pytest.mark.parametrize(
    ("week", "budget", "code"),
    [
        ("next-week", "1000", "week_malformed"),
        (window_of("week", NOW + timedelta(days=7)).label, "1000", "week_in_future"),
        (WEEK, "12.5", "budget_invalid"),
        (WEEK, "0", "budget_invalid"),
        (window_of("week", NOW - timedelta(days=70)).label, "1000", "no_scores"),
    ],
)
async def test_an_allocation_refused_says_why_in_both_languages(
    week: str, budget: str, code: str
) -> None:
    with pytest.raises(Invalid) as refused:
        await weekly_reports.allocation(await seeded(), week, budget, NOW, PROJECTS)
    assert refused.value.code == code
    assert set(CATALOG[code]) == {"fa", "en"}
