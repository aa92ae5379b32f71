"""The provincial ICT directorates' weekly reports: a directorate submits its province's
figures and its projects' progress for a Jalali week; readers see each week's reports,
who is missing, and each province's reports with their revisions.

A report is judged by `domain.provincial_reports.check` against the province's latest
earlier figures; a refused report stores and publishes nothing. An accepted one is the
report's next revision (a resubmission for the same week is a correction; the same report
again changes nothing), published on `programme.provincial-reports`, and each of its
figures is recorded in the programme register as the province's figure for the week's
last day (`programme.observations`), in the same transaction. Project progress stays in
the report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat

from services.metrics.domain import provincial_reports as reports
from services.metrics.domain.programme_register import Kept, day_in_tehran
from services.metrics.domain.provincial_reports import (
    Project,
    ReportRefused,
    WeeklyReport,
    assigned_to,
    check,
    week_window,
)
from services.metrics.domain.windows import Window
from services.metrics.use_cases.programme import ProgrammeWork, write_figure
from shared.envelope import Envelope
from shared.errors import Forbidden, Invalid, NotFound
from shared.events.programme import ObservationRecorded, ProvincialReportRecorded
from shared.jalali import jalali_day
from shared.reference.provinces import BY_CODE
from shared.reference.provinces import directorate_code as directorate_of

SOURCE = "metrics"

Key = Annotated[str, Field(min_length=1, max_length=80)]


class ReportEntry(BaseModel):
    """A weekly report as the directorate submits it (province and week are in the
    address). Bounds here only keep the request small; the report's rules are judged by
    `check`, so that each refusal carries its own code and message."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    figures: dict[Key, FiniteFloat] = Field(default_factory=dict, max_length=32)
    projects: dict[Key, FiniteFloat] = Field(default_factory=dict, max_length=64)
    reasons: dict[Key, Annotated[str, Field(max_length=2000)]] = Field(
        default_factory=dict, max_length=96
    )


class ReportsWork(ProgrammeWork, Protocol):
    """The storage the weekly reports need (`storage.ProgrammeStorage`)."""

    async def report(
        self, province: str, week: str, *, for_update: bool = False
    ) -> Kept[ProvincialReportRecorded] | None: ...

    async def earlier_figures(self, province: str, before: datetime) -> dict[str, float]: ...

    async def write_report(
        self,
        record: ProvincialReportRecorded,
        week_start: datetime,
        week_end: datetime,
        submitted_at: datetime,
    ) -> None: ...

    async def reports_of_week(self, week: str) -> list[Kept[ProvincialReportRecorded]]: ...

    async def previous_reports(self, before: datetime) -> list[Kept[ProvincialReportRecorded]]: ...

    async def reports_of_province(self, province: str) -> list[Kept[ProvincialReportRecorded]]: ...


def known_province(province: str) -> str:
    """The province code; NotFound `unknown_province` unless it is one of the 31."""
    if province not in BY_CODE:
        raise NotFound("unknown_province", f"{province!r} is not one of IR-00 to IR-30")
    return province


def refusal(problems: Iterable[reports.Problem]) -> Invalid:
    """The 422 a refused report is answered with: every problem, with its field and its
    message in both languages, in `errors`."""
    listed = [problem.as_json() for problem in problems]
    return Invalid(
        "report_refused", ", ".join(f"{p['field']}: {p['code']}" for p in listed), errors=listed
    )


def _window(week: str) -> Window:
    try:
        return week_window(week)
    except ReportRefused as refused:
        raise refusal(refused.problems) from None


def _bounds(window: Window) -> tuple[datetime, datetime]:
    if window.start is None or window.end is None:
        raise ValueError("a week has bounds")
    return window.start, window.end


def last_day(window: Window) -> str:
    """The week's last day in Tehran as a Jalali day (its Friday, or the year's last day
    for a week cut at the year's end): what the report's figures describe."""
    _, end = _bounds(window)
    return jalali_day(day_in_tehran(end - timedelta(seconds=1)))


Outcome = Literal["created", "corrected", "unchanged"]


@dataclass(frozen=True)
class Submitted:
    """What a submission left: the report's current revision, and whether this
    submission created it, corrected it or found it saying that already."""

    outcome: Outcome
    report: Kept[ProvincialReportRecorded]
    observations: list[ObservationRecorded]


async def submit_report(
    work: ReportsWork,
    province: str,
    week: str,
    entry: ReportEntry,
    *,
    agency: str | None,
    projects: Iterable[Project],
    now: datetime,
) -> Submitted:
    """Submit a directorate's weekly report for its own province.

    Forbidden `not_provinces_directorate` unless `agency` is the province's directorate;
    Invalid `report_refused` (every problem in `errors`) if the report breaks a rule, in
    which case nothing is written or published.
    """
    known_province(province)
    directorate = directorate_of(province)
    if agency != directorate:
        raise Forbidden(
            "not_provinces_directorate",
            f"only {directorate} reports for {province}; this token is {agency or 'no agency'}'s",
        )
    window = _window(week)
    start, end = _bounds(window)
    current = await work.report(province, week, for_update=True)
    earlier = await work.earlier_figures(province, start)
    report = WeeklyReport(province, week, entry.figures, entry.projects, entry.reasons)
    try:
        accepted = check(
            report, earlier=earlier, assigned_projects=assigned_to(province, projects), now=now
        )
    except ReportRefused as refused:
        raise refusal(refused.problems) from None

    proposed = ProvincialReportRecorded(
        province=province,
        week=week,
        figures=dict(entry.figures),
        projects=dict(entry.projects),
        # Kept as judged: the rule measures a reason without its surrounding spaces.
        reasons={where: reason.strip() for where, reason in entry.reasons.items()},
        late=accepted.late,
        revision=1 if current is None else current.record.revision + 1,
        submitted_by=directorate,
    )
    if current is not None and _says_the_same(current.record, proposed):
        return Submitted("unchanged", current, [])
    await work.write_report(proposed, start, end, now)
    await work.publish([Envelope.wrap(proposed, source=SOURCE, subject=f"{province}|{week}")])
    observations = []
    for indicator, value in sorted(entry.figures.items()):
        written = await write_figure(work, _figure(proposed, window, indicator, value))
        if written.outcome != "unchanged":
            observations.append(written.record)
    return Submitted(
        "created" if current is None else "corrected", Kept(proposed, now), observations
    )


def _says_the_same(current: ProvincialReportRecorded, proposed: ProvincialReportRecorded) -> bool:
    # Only what the directorate said counts: resending it later (late) is not a change.
    return (current.figures, current.projects, current.reasons) == (
        proposed.figures,
        proposed.projects,
        proposed.reasons,
    )


def _figure(
    report: ProvincialReportRecorded, window: Window, indicator: str, value: float
) -> ObservationRecorded:
    # The week's rules (a week that has started, figures in range) were judged by `check`;
    # the register's own check of operators' figures (a day not in the future) does not
    # apply: the current week's figures describe its Friday, still ahead.
    province = BY_CODE[report.province]
    return ObservationRecorded(
        indicator=indicator,
        scope="province",
        scope_code=report.province,
        observed_on=last_day(window),
        value=value,
        source_fa=f"گزارش هفتگی اداره کل ارتباطات و فناوری اطلاعات استان {province.name_fa}،"
        f" هفته {report.week}",
        source_en=f"Weekly report of the ICT directorate general of {province.name_en},"
        f" week {report.week}",
        citation=f"weekly report {report.province} {report.week}",
        reported_by=report.submitted_by,
        revision=1,
    )


# -- readers -----------------------------------------------------------------------------

Status = Literal["reported", "missing", "awaited"]


@dataclass(frozen=True)
class ProvinceWeek:
    """A province in a week's overview: its current report, or why there is none."""

    province: str
    status: Status
    report: Kept[ProvincialReportRecorded] | None
    previous: Kept[ProvincialReportRecorded] | None

    def as_json(self) -> dict[str, Any]:
        names = BY_CODE[self.province]
        answer: dict[str, Any] = {
            "province": self.province,
            "name_fa": names.name_fa,
            "name_en": names.name_en,
            "directorate": directorate_of(self.province),
            "status": self.status,
        }
        if self.report is None:
            return answer
        record = self.report.record
        before = self.previous.record if self.previous is not None else None
        return answer | {
            "revision": record.revision,
            "late": record.late,
            "submitted_at": self.report.recorded_at.isoformat(),
            "submitted_by": record.submitted_by,
            "previous_week": before.week if before is not None else None,
            "figures": _with_change(record.figures, before.figures if before else {}),
            "projects": _with_change(record.projects, before.projects if before else {}),
            "reasons": record.reasons,
        }


def _with_change(
    now: Mapping[str, float], before: Mapping[str, float]
) -> dict[str, dict[str, float | None]]:
    return {
        name: {
            "value": value,
            "previous": before.get(name),
            "change": value - before[name] if name in before else None,
        }
        for name, value in sorted(now.items())
    }


@dataclass(frozen=True)
class WeekOverview:
    """Every province's report for a week, and who has not reported."""

    window: Window
    ended: bool
    provinces: list[ProvinceWeek]

    def as_json(self) -> dict[str, Any]:
        start, _ = _bounds(self.window)
        by_status: dict[Status, list[str]] = {"reported": [], "missing": [], "awaited": []}
        late = []
        for entry in self.provinces:
            by_status[entry.status].append(entry.province)
            if entry.report is not None and entry.report.record.late:
                late.append(entry.province)
        return {
            "week": self.window.label,
            "starts_on": jalali_day(day_in_tehran(start)),
            "ends_on": last_day(self.window),
            "ended": self.ended,
            "summary": {
                "provinces": len(self.provinces),
                "reported": len(by_status["reported"]),
                "late": late,
                "missing": by_status["missing"],
                "awaited": by_status["awaited"],
            },
            "provinces": [entry.as_json() for entry in self.provinces],
        }


async def week_overview(work: ReportsWork, week: str, now: datetime) -> WeekOverview:
    """Each province's current report for the week with its change since the province's
    previous report; a province without one is `missing` once the week has ended, and
    `awaited` until then."""
    window = _window(week)
    start, end = _bounds(window)
    current = {kept.record.province: kept for kept in await work.reports_of_week(week)}
    previous = {kept.record.province: kept for kept in await work.previous_reports(start)}
    ended = now >= end
    absent = set(reports.missing(current))
    provinces = [
        ProvinceWeek(
            code,
            "reported" if code not in absent else "missing" if ended else "awaited",
            current.get(code),
            previous.get(code),
        )
        for code in BY_CODE
    ]
    return WeekOverview(window, ended, provinces)


@dataclass(frozen=True)
class ReportedWeek:
    """A province's report for one week: every revision, the current one last."""

    week: str
    revisions: list[Kept[ProvincialReportRecorded]]

    def as_json(self) -> dict[str, Any]:
        current = self.revisions[-1].record
        return {
            "week": self.week,
            "revision": current.revision,
            "late": current.late,
            "figures": current.figures,
            "projects": current.projects,
            "reasons": current.reasons,
            "revisions": [
                {
                    **kept.record.model_dump(mode="json"),
                    "submitted_at": kept.recorded_at.isoformat(),
                }
                for kept in self.revisions
            ],
        }


async def province_reports(work: ReportsWork, province: str) -> list[ReportedWeek]:
    """The province's reports by week (oldest first), each with its revisions."""
    known_province(province)
    weeks: dict[str, list[Kept[ProvincialReportRecorded]]] = {}
    for kept in await work.reports_of_province(province):
        weeks.setdefault(kept.record.week, []).append(kept)
    return [ReportedWeek(week, revisions) for week, revisions in weeks.items()]
