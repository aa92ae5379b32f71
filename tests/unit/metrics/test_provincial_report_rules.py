"""Every rule of a province's weekly report, each with its message in Persian and English."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.metrics.domain.provincial_reports import (
    FIGURES,
    MESSAGES,
    Problem,
    ReportRefused,
    WeeklyReport,
    assigned_to,
    check,
    load_projects,
    missing,
    parse_projects,
    week_window,
)
from services.metrics.domain.windows import TEHRAN, window_of

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # a Monday, 1405-09-09 in Tehran
THIS_WEEK = window_of("week", NOW).label
LAST_WEEK = window_of("week", NOW - timedelta(days=7)).label
NEXT_WEEK = window_of("week", NOW + timedelta(days=7)).label
PROJECTS = ("fibre-villages", "provincial-data-centre")


def _refusal(report: WeeklyReport, earlier: dict[str, float] | None = None) -> list[Problem]:
    with pytest.raises(ReportRefused) as refused:
        check(report, earlier=earlier or {}, assigned_projects=PROJECTS, now=NOW)
    return refused.value.problems


def _report(**changes: object) -> WeeklyReport:
    fields: dict[str, object] = {
        "province": "IR-15",
        "week": THIS_WEEK,
        "figures": {"coverage_4g_share": 76.0, "villages_connected": 1245},
        "projects": {"fibre-villages": 40.0},
        "reasons": {},
    }
    fields.update(changes)
    return WeeklyReport(**fields)  # type: ignore[arg-type]


def test_every_rule_has_a_message_in_persian_and_english() -> None:
    codes = {
        "week_malformed",
        "week_in_future",
        "report_empty",
        "unknown_figure",
        "share_out_of_range",
        "count_invalid",
        "unknown_project",
        "progress_out_of_range",
        "fall_needs_reason",
        "reason_invalid",
    }
    assert set(MESSAGES) == codes
    for texts in MESSAGES.values():
        assert texts["fa"].strip()
        assert texts["en"].strip()
        assert any("\u0600" <= ch <= "\u06ff" for ch in texts["fa"])


def test_a_report_that_keeps_every_rule_is_accepted_on_time() -> None:
    accepted = check(_report(), earlier={}, assigned_projects=PROJECTS, now=NOW)
    assert accepted.window.label == THIS_WEEK
    assert accepted.late is False


def test_a_report_after_its_week_ended_is_accepted_and_marked_late() -> None:
    accepted = check(_report(week=LAST_WEEK), earlier={}, assigned_projects=PROJECTS, now=NOW)
    assert accepted.late is True


@pytest.mark.parametrize("week", ["1405-36", "1405-W99", "W36", "۱۴۰۵-W36", ""])
def test_a_malformed_week_is_refused(week: str) -> None:
    assert _refusal(_report(week=week)) == [Problem("week_malformed", "week")]


def test_a_week_not_yet_started_is_refused() -> None:
    assert Problem("week_in_future", "week") in _refusal(_report(week=NEXT_WEEK))


def test_an_empty_report_is_refused() -> None:
    assert _refusal(_report(figures={}, projects={})) == [Problem("report_empty", "figures")]


def test_an_unknown_figure_is_refused() -> None:
    assert _refusal(_report(figures={"fibre_share": 40.0})) == [
        Problem("unknown_figure", "fibre_share")
    ]


@pytest.mark.parametrize("value", [-0.1, 100.1, 250.0])
def test_a_share_outside_0_to_100_is_refused(value: float) -> None:
    assert _refusal(_report(figures={"coverage_4g_share": value})) == [
        Problem("share_out_of_range", "coverage_4g_share")
    ]


@pytest.mark.parametrize("value", [-1.0, 12.5])
def test_a_negative_or_fractional_count_is_refused(value: float) -> None:
    assert _refusal(_report(figures={"villages_connected": value})) == [
        Problem("count_invalid", "villages_connected")
    ]


def test_a_project_not_assigned_to_the_province_is_refused() -> None:
    assert _refusal(_report(projects={"tehran-metro-fibre": 10.0})) == [
        Problem("unknown_project", "projects.tehran-metro-fibre")
    ]


def test_a_project_progress_outside_0_to_100_is_refused() -> None:
    assert _refusal(_report(projects={"fibre-villages": 101.0})) == [
        Problem("progress_out_of_range", "projects.fibre-villages")
    ]


def test_a_figure_that_falls_against_last_week_needs_a_reason() -> None:
    earlier = {"coverage_4g_share": 80.0, "projects.fibre-villages": 45.0}
    assert _refusal(_report(), earlier) == [
        Problem("fall_needs_reason", "coverage_4g_share"),
        Problem("fall_needs_reason", "projects.fibre-villages"),
    ]
    explained = _report(
        reasons={
            "coverage_4g_share": "دو دکل در سیل از کار افتاد",
            "projects.fibre-villages": "re-baselined after a survey",
        }
    )
    assert check(explained, earlier=earlier, assigned_projects=PROJECTS, now=NOW).late is False


def test_a_reason_for_nothing_reported_or_too_short_is_refused() -> None:
    problems = _refusal(_report(reasons={"high_speed_ports": "flood", "villages_connected": "x"}))
    assert problems == [
        Problem("reason_invalid", "reasons.high_speed_ports"),
        Problem("reason_invalid", "reasons.villages_connected"),
    ]


def test_every_broken_rule_is_listed_at_once_with_both_languages() -> None:
    problems = _refusal(
        _report(figures={"coverage_4g_share": 120.0, "villages_connected": -3}, projects={})
    )
    share, count = MESSAGES["share_out_of_range"], MESSAGES["count_invalid"]
    assert [p.as_json() for p in problems] == [
        {
            "code": "share_out_of_range",
            "field": "coverage_4g_share",
            "fa": share["fa"],
            "en": share["en"],
        },
        {
            "code": "count_invalid",
            "field": "villages_connected",
            "fa": count["fa"],
            "en": count["en"],
        },
    ]


def test_the_week_label_is_the_metrics_week_from_saturday_to_friday() -> None:
    window = week_window(THIS_WEEK)
    assert window.start is not None
    assert window.end is not None
    assert window.start.astimezone(TEHRAN).weekday() == 5  # Saturday
    assert window.start.astimezone(TEHRAN).hour == 0
    assert window.end - window.start == timedelta(days=7)


def test_provinces_without_a_report_are_missing() -> None:
    absent = missing(["IR-15", "IR-00"])
    assert len(absent) == 29
    assert "IR-15" not in absent
    assert absent[0] == "IR-01"


def test_the_reported_figures_are_the_registers_provincial_indicators() -> None:
    from importlib import resources

    import yaml

    text = (resources.files("services.metrics.reference") / "programme.yaml").read_text("utf-8")
    codes = {entry["code"] for entry in yaml.safe_load(text)["indicators"]}
    assert set(FIGURES) <= codes


def test_national_projects_go_to_every_province_and_provincial_ones_to_theirs() -> None:
    projects = load_projects()
    lorestan, tehran = assigned_to("IR-15", projects), assigned_to("IR-23", projects)
    assert "lorestan-small-villages" in lorestan
    assert "lorestan-small-villages" not in tehran
    assert "nin-village-connectivity" in tehran


def test_a_project_of_an_unknown_province_is_refused() -> None:
    entry = {
        "code": "x",
        "scope": "provincial",
        "provinces": ["IR-99"],
        "name_fa": "آزمون",
        "name_en": "test",
        "citation": "tests",
    }
    with pytest.raises(ValueError, match="IR-99"):
        parse_projects([entry])
