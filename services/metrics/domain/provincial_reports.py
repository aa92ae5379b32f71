"""The weekly report of a provincial ICT directorate general: what it holds, and the rules.

Each of the 31 directorates reports, per Jalali week (Saturday to Friday, labelled as the
metrics windows label weeks: `1405-W36`), its province's figures for the indicators the
agreement with the programme's executive names, and the progress of each project assigned
to it. The rules, each with its own code and message in Persian and English:

- `week_malformed`: the week is not a Jalali week label.
- `week_in_future`: a week that has not started yet cannot be reported.
- `report_empty`: a report carries at least one figure or project.
- `unknown_figure`: only the figures below may be reported.
- `share_out_of_range`: a share (percent) lies within 0 to 100.
- `count_invalid`: a count is a whole number, not negative.
- `unknown_project`: a project's progress is reported only for a project assigned to the
  province.
- `progress_out_of_range`: a project's progress (percent) lies within 0 to 100.
- `fall_needs_reason`: a figure lower than the province's latest earlier week needs a
  reason (all the figures here are ones the programme wants higher).
- `reason_invalid`: a reason is given only for a reported figure, in 3 to 500 characters.

A report for a week already reported is a correction: it supersedes the earlier figures,
which stay in history. A report that arrives after its week ended is accepted and marked
late; a province with no report when its week ends is flagged missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from typing import Literal

import yaml

from services.metrics.domain.windows import Window, window_from_label, window_of
from shared.reference.provinces import BY_CODE

FigureKind = Literal["share", "count"]

#: The figures a directorate reports (indicator codes of the programme register).
FIGURES: dict[str, FigureKind] = {
    "villages_connected": "count",
    "villages_connected_share": "share",
    "mobile_coverage_share": "share",
    "coverage_4g_share": "share",
    "villages_covered_share": "share",
    "villages_fixed_line_share": "share",
    "high_speed_ports": "count",
    "rural_ict_offices": "count",
}
REASON_LENGTH = (3, 500)
#: How many weeks the development sample covers, the current one included: the
#: directorates' sample reports start this many weeks back.
SAMPLE_WEEKS = 8

MESSAGES: dict[str, dict[Literal["fa", "en"], str]] = {
    "week_malformed": {
        "fa": "هفته باید به شکل سال-هفته شمسی باشد، مانند 1405-W36.",
        "en": "The week must be a Jalali year and week, such as 1405-W36.",
    },
    "week_in_future": {
        "fa": "گزارش هفته‌ای که هنوز آغاز نشده پذیرفته نیست.",
        "en": "A week that has not started yet cannot be reported.",
    },
    "report_empty": {
        "fa": "گزارش باید دست‌کم یک شاخص یا یک پروژه داشته باشد.",
        "en": "A report must carry at least one figure or one project.",
    },
    "unknown_figure": {
        "fa": "این شاخص در جدول شاخص‌های استانی نیست.",
        "en": "This figure is not among the provincial indicators.",
    },
    "share_out_of_range": {
        "fa": "درصد باید بین ۰ تا ۱۰۰ باشد.",
        "en": "A share must lie between 0 and 100 percent.",
    },
    "count_invalid": {
        "fa": "شمار باید عددی درست و نامنفی باشد.",
        "en": "A count must be a whole number, not negative.",
    },
    "unknown_project": {
        "fa": "این پروژه به این استان واگذار نشده است.",
        "en": "This project is not assigned to this province.",
    },
    "progress_out_of_range": {
        "fa": "پیشرفت پروژه باید بین ۰ تا ۱۰۰ درصد باشد.",
        "en": "A project's progress must lie between 0 and 100 percent.",
    },
    "fall_needs_reason": {
        "fa": "این رقم از هفته پیش کمتر است؛ علت کاهش را بنویسید.",
        "en": "This figure is lower than last week's; give the reason for the fall.",
    },
    "reason_invalid": {
        "fa": "علت فقط برای رقم گزارش‌شده و در ۳ تا ۵۰۰ نویسه نوشته می‌شود.",
        "en": "A reason is given only for a reported figure, in 3 to 500 characters.",
    },
}


@dataclass(frozen=True)
class Problem:
    """One rule a report breaks, and where (`field`: a figure, `projects.<code>`, ...)."""

    code: str
    field: str

    def as_json(self) -> dict[str, str]:
        texts = MESSAGES[self.code]
        return {"code": self.code, "field": self.field, "fa": texts["fa"], "en": texts["en"]}


class ReportRefused(Exception):
    """The report breaks at least one rule; nothing of it is kept."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(", ".join(f"{p.field}: {p.code}" for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class WeeklyReport:
    """What a directorate submits for its province and a week."""

    province: str
    week: str
    figures: Mapping[str, float] = field(default_factory=dict)
    projects: Mapping[str, float] = field(default_factory=dict)
    reasons: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Accepted:
    """A report that holds to every rule: its week's window, and whether it came late."""

    window: Window
    late: bool


def week_window(label: str) -> Window:
    """The week a label names; ReportRefused (`week_malformed`) if it names none."""
    try:
        return window_from_label("week", label)
    except ValueError:
        raise ReportRefused([Problem("week_malformed", "week")]) from None


def check(
    report: WeeklyReport,
    *,
    earlier: Mapping[str, float],
    assigned_projects: Iterable[str],
    now: datetime,
) -> Accepted:
    """Check a report against every rule; ReportRefused lists each rule it breaks.

    `earlier` is the province's latest figure of each figure and project (keyed
    `projects.<code>` for projects) from weeks before this one.
    """
    if report.province not in BY_CODE:
        raise ValueError(f"unknown province {report.province!r}")
    window = week_window(report.week)
    if window.start is None or window.end is None:
        raise ValueError("a week window has bounds")
    problems: list[Problem] = []
    if window.start > now:
        problems.append(Problem("week_in_future", "week"))
    if not report.figures and not report.projects:
        problems.append(Problem("report_empty", "figures"))
    values: dict[str, float] = {}
    for name, value in report.figures.items():
        kind = FIGURES.get(name)
        if kind is None:
            problems.append(Problem("unknown_figure", name))
        elif kind == "share" and not 0 <= value <= 100:
            problems.append(Problem("share_out_of_range", name))
        elif kind == "count" and (value < 0 or value != int(value)):
            problems.append(Problem("count_invalid", name))
        else:
            values[name] = value
    assigned = set(assigned_projects)
    for code, progress in report.projects.items():
        where = f"projects.{code}"
        if code not in assigned:
            problems.append(Problem("unknown_project", where))
        elif not 0 <= progress <= 100:
            problems.append(Problem("progress_out_of_range", where))
        else:
            values[where] = progress
    for where, value in values.items():
        before = earlier.get(where)
        if before is not None and value < before and where not in report.reasons:
            problems.append(Problem("fall_needs_reason", where))
    for where, reason in report.reasons.items():
        if where.startswith("projects."):
            reported = where.removeprefix("projects.") in report.projects
        else:
            reported = where in report.figures
        if not reported or not REASON_LENGTH[0] <= len(reason.strip()) <= REASON_LENGTH[1]:
            problems.append(Problem("reason_invalid", f"reasons.{where}"))
    if problems:
        raise ReportRefused(problems)
    return Accepted(window, late=now >= window.end)


def recent_weeks(now: datetime, count: int) -> list[str]:
    """The labels of the week holding `now` and the `count - 1` before it, newest first
    (a week cut at the year's edge counts as a week)."""
    labels: list[str] = []
    moment = now
    while len(labels) < count:
        window = window_of("week", moment)
        if window.start is None:
            raise ValueError("a week has bounds")
        labels.append(window.label)
        moment = window.start - timedelta(seconds=1)
    return labels


def sample_weeks(now: datetime) -> list[str]:
    """The weeks the development sample covers, oldest first: its first is the week of
    each province's first sample report."""
    return list(reversed(recent_weeks(now, SAMPLE_WEEKS)))


def missing(reported: Iterable[str]) -> list[str]:
    """The provinces (codes, in order) that have not reported."""
    done = set(reported)
    return [code for code in BY_CODE if code not in done]


@dataclass(frozen=True)
class Project:
    """A national or provincial project the directorates report progress on."""

    code: str
    scope: Literal["national", "provincial"]
    provinces: tuple[str, ...]
    name_fa: str
    name_en: str
    citation: str


def parse_projects(entries: Iterable[Mapping[str, object]]) -> tuple[Project, ...]:
    """The projects of the register file; ValueError on an unknown province."""
    projects = []
    for entry in entries:
        provinces = entry["provinces"]
        codes = tuple(BY_CODE) if provinces == "all" else tuple(str(p) for p in provinces)  # type: ignore[attr-defined]
        unknown = [code for code in codes if code not in BY_CODE]
        if unknown:
            raise ValueError(f"project {entry['code']}: unknown provinces {unknown}")
        projects.append(
            Project(
                code=str(entry["code"]),
                scope="national" if entry["scope"] == "national" else "provincial",
                provinces=codes,
                name_fa=str(entry["name_fa"]),
                name_en=str(entry["name_en"]),
                citation=str(entry["citation"]),
            )
        )
    return tuple(projects)


def load_projects() -> tuple[Project, ...]:
    """The projects shipped in the programme register file."""
    text = (resources.files("services.metrics.reference") / "programme.yaml").read_text("utf-8")
    return parse_projects(yaml.safe_load(text)["projects"])


def assigned_to(province: str, projects: Iterable[Project]) -> list[str]:
    """The codes of the projects a province reports on."""
    return [project.code for project in projects if province in project.provinces]
