"""A provincial directorate's weekly report through the use case, on an in-memory unit of
work: every rule refuses with its bilingual message and leaves nothing behind; only the
province's own directorate reports; late reports, corrections and repeats; the week's
overview and a province's history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import services.metrics.messages  # noqa: F401  (registers the codes refusals carry)
from services.metrics.domain.provincial_reports import MESSAGES, load_projects, sample_weeks
from services.metrics.domain.windows import window_of
from services.metrics.programme_reference import sample_reports
from services.metrics.use_cases import provinces
from services.metrics.use_cases.provinces import ReportEntry
from shared.errors import Forbidden, Invalid, NotFound
from shared.events.programme import ObservationRecorded, ProvincialReportRecorded
from shared.messages import MESSAGES as CATALOG
from tests.unit.metrics.fakes import FakeProgrammeWork

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # a Monday, 1405-09-09 in Tehran
THIS_WEEK = window_of("week", NOW).label
LAST_WEEK = window_of("week", NOW - timedelta(days=7)).label
NEXT_WEEK = window_of("week", NOW + timedelta(days=7)).label
PROJECTS = load_projects()
LORESTAN = "IR-15"
DIRECTORATE = "ict-ir-15"


def entry(**fields: Any) -> ReportEntry:
    return ReportEntry.model_validate(
        {"figures": {"coverage_4g_share": 76, "villages_connected": 1245}} | fields
    )


async def submit(
    work: FakeProgrammeWork,
    report: ReportEntry | None = None,
    *,
    week: str = THIS_WEEK,
    province: str = LORESTAN,
    agency: str | None = DIRECTORATE,
    now: datetime = NOW,
) -> provinces.Submitted:
    return await provinces.submit_report(
        work,
        province,
        week,
        report or entry(),
        agency=agency,
        projects=PROJECTS,
        now=now,
    )


def problem(code: str, field: str) -> dict[str, str]:
    """A refusal's entry in `errors`: the rule, where, and its message in both languages."""
    texts = MESSAGES[code]
    return {"code": code, "field": field, "fa": texts["fa"], "en": texts["en"]}


def nothing_kept(work: FakeProgrammeWork, published: int, reports: int) -> None:
    assert len(work.published) == published
    assert sum(len(r) for r in work.report_revisions.values()) == reports


async def test_an_accepted_report_is_kept_published_and_its_figures_recorded() -> None:
    work = FakeProgrammeWork(NOW)
    report = entry(projects={"lorestan-small-villages": 40})
    submitted = await submit(work, report)

    assert submitted.outcome == "created"
    (record,) = work.events(ProvincialReportRecorded)
    assert (record.province, record.week, record.revision, record.late) == (
        LORESTAN,
        THIS_WEEK,
        1,
        False,
    )
    assert record.submitted_by == DIRECTORATE
    assert record.projects == {"lorestan-small-villages": 40}
    assert work.published[0].subject == f"{LORESTAN}|{THIS_WEEK}"
    figures = work.events(ObservationRecorded)
    assert {(f.indicator, f.value) for f in figures} == {
        ("coverage_4g_share", 76),
        ("villages_connected", 1245),
    }
    for figure in figures:
        assert (figure.scope, figure.scope_code, figure.reported_by) == (
            "province",
            LORESTAN,
            DIRECTORATE,
        )
        # 1405-09-09 is a Monday: its week ends on Friday 1405-09-13.
        assert figure.observed_on == "1405-09-13"
        assert figure.citation == f"weekly report {LORESTAN} {THIS_WEEK}"
        assert THIS_WEEK in figure.source_fa
        assert THIS_WEEK in figure.source_en
    # Project progress stays in the report: no figure for it.
    assert all(not f.indicator.startswith("lorestan") for f in figures)


REFUSALS: list[tuple[str, str, dict[str, Any], str]] = [
    ("week_malformed", "1405-36", {}, "week"),
    ("week_in_future", NEXT_WEEK, {}, "week"),
    ("report_empty", THIS_WEEK, {"figures": {}}, "figures"),
    ("unknown_figure", THIS_WEEK, {"figures": {"tea_gardens": 3}}, "tea_gardens"),
    (
        "share_out_of_range",
        THIS_WEEK,
        {"figures": {"coverage_4g_share": 100.5}},
        "coverage_4g_share",
    ),
    ("count_invalid", THIS_WEEK, {"figures": {"rural_ict_offices": -1}}, "rural_ict_offices"),
    ("count_invalid", THIS_WEEK, {"figures": {"high_speed_ports": 2.5}}, "high_speed_ports"),
    (
        "unknown_project",
        THIS_WEEK,
        {"figures": {}, "projects": {"tehran-metro-wifi": 10}},
        "projects.tehran-metro-wifi",
    ),
    (
        "progress_out_of_range",
        THIS_WEEK,
        {"figures": {}, "projects": {"nin-fixed-broadband": 101}},
        "projects.nin-fixed-broadband",
    ),
    (
        "reason_invalid",
        THIS_WEEK,
        {"reasons": {"mobile_coverage_share": "a reason for an unreported figure"}},
        "reasons.mobile_coverage_share",
    ),
    (
        "reason_invalid",
        THIS_WEEK,
        {"reasons": {"coverage_4g_share": " x "}},
        "reasons.coverage_4g_share",
    ),
]


@pytest.mark.parametrize(("code", "week", "fields", "field"), REFUSALS)
async def test_each_rule_refuses_in_both_languages_and_nothing_is_kept(
    code: str, week: str, fields: dict[str, Any], field: str
) -> None:
    work = FakeProgrammeWork(NOW)
    with pytest.raises(Invalid) as refused:
        await submit(work, entry(**fields), week=week)

    assert refused.value.status == 422
    assert refused.value.code == "report_refused"
    assert set(CATALOG["report_refused"]) == {"fa", "en"}
    assert problem(code, field) in (refused.value.errors or [])
    nothing_kept(work, published=0, reports=0)
    assert work.observation_revisions == {}


async def test_a_fall_against_last_week_needs_a_reason() -> None:
    work = FakeProgrammeWork(NOW)
    await submit(work, week=LAST_WEEK, now=NOW)
    before = len(work.published)

    fallen = entry(figures={"coverage_4g_share": 74, "villages_connected": 1245})
    with pytest.raises(Invalid) as refused:
        await submit(work, fallen)
    (only,) = refused.value.errors or []
    assert only == problem("fall_needs_reason", "coverage_4g_share")
    nothing_kept(work, published=before, reports=1)

    explained = entry(
        figures={"coverage_4g_share": 74, "villages_connected": 1245},
        reasons={"coverage_4g_share": "  دو دکل در سیل از کار افتاد \n"},
    )
    accepted = await submit(work, explained)
    assert accepted.outcome == "created"
    assert accepted.report.record.reasons == {"coverage_4g_share": "دو دکل در سیل از کار افتاد"}


async def test_only_the_provinces_own_directorate_reports_for_it() -> None:
    work = FakeProgrammeWork(NOW)
    for agency in ("ict-ir-16", "tax", None):
        with pytest.raises(Forbidden) as refused:
            await submit(work, agency=agency)
        assert refused.value.status == 403
        assert refused.value.code == "not_provinces_directorate"
        assert set(CATALOG["not_provinces_directorate"]) == {"fa", "en"}
    with pytest.raises(NotFound) as unknown:
        await submit(work, province="IR-31", agency="ict-ir-31")
    assert unknown.value.code == "unknown_province"
    nothing_kept(work, published=0, reports=0)


async def test_a_report_after_its_week_ended_is_accepted_and_marked_late() -> None:
    work = FakeProgrammeWork(NOW)
    submitted = await submit(work, week=LAST_WEEK)
    assert submitted.outcome == "created"
    assert submitted.report.record.late is True
    (record,) = work.events(ProvincialReportRecorded)
    assert record.late is True


async def test_a_correction_is_the_next_revision_and_keeps_the_earlier() -> None:
    work = FakeProgrammeWork(NOW)
    await submit(work)
    corrected = await submit(
        work, entry(figures={"coverage_4g_share": 77, "villages_connected": 1245})
    )
    assert corrected.outcome == "corrected"
    assert corrected.report.record.revision == 2
    revisions = work.report_revisions[(LORESTAN, THIS_WEEK)]
    assert [kept.record.figures["coverage_4g_share"] for kept, _ in revisions] == [76, 77]
    # Only the corrected figure is a new revision of the province's figure.
    assert [(o.indicator, o.revision) for o in corrected.observations] == [("coverage_4g_share", 2)]
    key = corrected.observations[0].record_key()
    assert [o.value for o in work.observation_revisions[key]] == [76, 77]

    (week,) = await provinces.province_reports(work, LORESTAN)
    assert (week.week, [k.record.revision for k in week.revisions]) == (THIS_WEEK, [1, 2])
    assert week.as_json()["figures"]["coverage_4g_share"] == 77


async def test_the_same_report_again_changes_nothing() -> None:
    work = FakeProgrammeWork(NOW)
    await submit(work, entry(projects={"nin-fixed-broadband": 30}))
    published = len(work.published)
    again = await submit(
        work, entry(projects={"nin-fixed-broadband": 30}), now=NOW + timedelta(days=7)
    )
    assert again.outcome == "unchanged"
    assert again.report.record.revision == 1
    assert again.report.record.late is False
    nothing_kept(work, published=published, reports=1)


async def test_the_weeks_overview_lists_each_province_and_who_is_missing() -> None:
    work = FakeProgrammeWork(NOW)
    two_weeks_ago = window_of("week", NOW - timedelta(days=14)).label
    await submit(work, week=two_weeks_ago)
    await submit(
        work,
        entry(figures={"coverage_4g_share": 80, "villages_connected": 1250}),
        week=LAST_WEEK,
    )
    await submit(work, province="IR-00", agency="ict-ir-00", week=LAST_WEEK)

    ended = (await provinces.week_overview(work, LAST_WEEK, NOW)).as_json()
    assert ended["ended"] is True
    summary = ended["summary"]
    assert summary["reported"] == 2
    assert summary["late"] == ["IR-00", LORESTAN]
    assert len(summary["missing"]) == 29
    assert LORESTAN not in summary["missing"]
    assert summary["awaited"] == []
    lorestan = next(p for p in ended["provinces"] if p["province"] == LORESTAN)
    assert lorestan["status"] == "reported"
    assert lorestan["previous_week"] == two_weeks_ago
    assert lorestan["figures"]["coverage_4g_share"] == {"value": 80, "previous": 76, "change": 4}
    markazi = next(p for p in ended["provinces"] if p["province"] == "IR-00")
    assert markazi["figures"]["coverage_4g_share"]["change"] is None
    gilan = next(p for p in ended["provinces"] if p["province"] == "IR-01")
    assert gilan["status"] == "missing"
    assert "figures" not in gilan

    current = (await provinces.week_overview(work, THIS_WEEK, NOW)).as_json()
    assert current["ended"] is False
    assert current["summary"]["missing"] == []
    assert len(current["summary"]["awaited"]) == 31

    with pytest.raises(Invalid) as malformed:
        await provinces.week_overview(work, "W36", NOW)
    assert (malformed.value.errors or [])[0]["code"] == "week_malformed"


async def test_lorestans_published_figures_are_the_samples_first_report() -> None:
    (lorestan,) = sample_reports()
    assert lorestan.province == LORESTAN
    assert lorestan.entry.figures == {
        "villages_connected": 1245,
        "mobile_coverage_share": 98,
        "coverage_4g_share": 76,
        "villages_covered_share": 91,
        "villages_fixed_line_share": 82,
    }
    work = FakeProgrammeWork(NOW)
    first = sample_weeks(NOW)[0]
    submitted = await submit(work, lorestan.entry, week=first)
    assert (submitted.outcome, submitted.report.record.week) == ("created", first)
    assert len(work.events(ObservationRecorded)) == 5
