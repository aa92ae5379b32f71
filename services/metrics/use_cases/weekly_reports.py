"""The provinces' weekly league table and national summary, and the performance-based
allocation of a budget (the rules: `domain/league.py`).

`week_league` computes, from the week's reports, each province's figures with their
change since its previous report, its standing against its targets in the register, its
score and rank (and its rank the week before), and the national summary: the roll-up,
the provinces that did not report (or reported late), the top and bottom five. It reads
only; the files made from it are kept by `services.metrics.weekly_reports`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from services.metrics.domain import league
from services.metrics.domain.league import AllocationRefused, Score
from services.metrics.domain.programme import expected_share, share_of_way, status_of
from services.metrics.domain.provincial_reports import (
    Project,
    ReportRefused,
    assigned_to,
    week_window,
)
from services.metrics.domain.windows import window_of
from services.metrics.use_cases import provinces
from services.metrics.use_cases.provinces import ProvinceWeek, ReportsWork, WeekOverview
from shared.errors import Invalid
from shared.events.metrics import ProgressStatus
from shared.events.programme import TargetRecorded
from shared.jalali import parse_jalali_day
from shared.reference.provinces import BY_CODE


class LeagueWork(ReportsWork, Protocol):
    """The storage the league needs (`storage.ProgrammeStorage`)."""


def previous_week(week: str) -> str:
    """The label of the week before `week` (which must be a week's label)."""
    start = week_window(week).start
    if start is None:
        raise ValueError("a week has bounds")
    return window_of("week", start - timedelta(seconds=1)).label


@dataclass(frozen=True)
class TargetStanding:
    """Where a province's figure of the week stands against one of its targets."""

    target: TargetRecorded
    value: float | None
    progress: float | None
    expected: float
    status: ProgressStatus

    def as_json(self) -> dict[str, Any]:
        t = self.target
        return {
            "target_id": t.target_id,
            "indicator": t.indicator,
            "baseline_value": t.baseline_value,
            "baseline_date": t.baseline_date,
            "target_value": t.target_value,
            "deadline": t.deadline,
            "basis_fa": t.basis_fa,
            "basis_en": t.basis_en,
            "value": self.value,
            "progress": self.progress,
            "expected": self.expected,
            "status": self.status,
        }


def target_standing(target: TargetRecorded, value: float | None, day: str) -> TargetStanding:
    """The province's figure for `day` (a Jalali day) against a target: the share of the
    way from baseline to target (percent), the share a straight path would have covered
    by then, and the status by the programme's rule (no projection: one week's figure)."""
    today = parse_jalali_day(day)
    expected = expected_share(
        parse_jalali_day(target.baseline_date), parse_jalali_day(target.deadline), today
    )
    progress = (
        None if value is None else share_of_way(value, target.baseline_value, target.target_value)
    )
    status = status_of(
        progress, expected, None, deadline_passed=today > parse_jalali_day(target.deadline)
    )
    return TargetStanding(
        target,
        value,
        None if progress is None else round(progress * 100, 2),
        round(expected * 100, 2),
        status,
    )


@dataclass(frozen=True)
class Standing:
    """A province in the week's league: its report (if any), score, rank, targets."""

    entry: ProvinceWeek
    score: Score | None
    rank: int | None
    previous_rank: int | None
    targets: list[TargetStanding]

    @property
    def province(self) -> str:
        return self.entry.province

    def as_json(self) -> dict[str, Any]:
        answer = self.entry.as_json()
        if self.score is None:
            return answer | {"score": None, "rank": None, "previous_rank": self.previous_rank}
        return answer | {
            "score": self.score.total,
            "score_parts": {
                "coverage": self.score.coverage,
                "projects": self.score.projects,
                "timeliness": self.score.timeliness,
            },
            "rank": self.rank,
            "previous_rank": self.previous_rank,
            "targets": [t.as_json() for t in self.targets],
        }


@dataclass(frozen=True)
class WeekLeague:
    """The week's league table and national summary."""

    overview: WeekOverview
    standings: list[Standing]
    previous_week: str
    inputs_through: datetime | None
    """When the latest report it was computed from was submitted (None: no report)."""

    @property
    def week(self) -> str:
        return self.overview.window.label

    def scores(self) -> dict[str, float]:
        return {s.province: s.score.total for s in self.standings if s.score is not None}

    def ranked(self) -> list[Standing]:
        """The provinces that reported, in league order."""
        by_code = {s.province: s for s in self.standings}
        return [by_code[code] for code in league.league_order(self.scores())]

    def standing(self, province: str) -> Standing:
        (found,) = [s for s in self.standings if s.province == province]
        return found

    def summary(self) -> dict[str, Any]:
        """The national summary: roll-up, who did not report, top and bottom five."""
        scores = self.scores()
        top, bottom = league.top_and_bottom(scores)
        reported = {
            s.province: s.entry.report.record.figures
            for s in self.standings
            if s.entry.report is not None
        }
        overview = self.overview.as_json()["summary"]
        return {
            "week": self.week,
            "previous_week": self.previous_week,
            "ended": self.overview.ended,
            "provinces": len(self.standings),
            "reported": len(scores),
            "late": overview["late"],
            "missing": overview["missing"],
            "awaited": overview["awaited"],
            "top": [{"province": p, "score": scores[p]} for p in top],
            "bottom": [{"province": p, "score": scores[p]} for p in bottom],
            "mean_score": round(sum(scores.values()) / len(scores), 2) if scores else None,
            "roll_up": [
                {
                    "figure": r.figure,
                    "provinces": r.provinces,
                    "total": r.total,
                    "mean": r.mean,
                    "lowest": r.lowest,
                    "highest": r.highest,
                }
                for r in league.roll_up(reported)
            ],
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "table": [s.as_json() for s in self.ranked()],
            "inputs_through": (
                self.inputs_through.isoformat() if self.inputs_through is not None else None
            ),
        }


def _scores(overview: WeekOverview, projects: Iterable[Project]) -> dict[str, Score]:
    listed = list(projects)
    scores = {}
    for entry in overview.provinces:
        if entry.report is None:
            continue
        record = entry.report.record
        scores[entry.province] = league.score_of(
            record.figures,
            record.projects,
            assigned_to(entry.province, listed),
            late=record.late,
        )
    return scores


async def week_league(
    work: LeagueWork, week: str, now: datetime, projects: Iterable[Project]
) -> WeekLeague:
    """The week's league (`week` a Jalali week label; Invalid `report_refused` with
    `week_malformed` otherwise), from the reports as they stand at `now`."""
    listed = list(projects)
    overview = await provinces.week_overview(work, week, now)
    before = previous_week(week)
    earlier = await provinces.week_overview(work, before, now)
    scores = _scores(overview, listed)
    previous_scores = {p: s.total for p, s in _scores(earlier, listed).items()}
    rank_of = league.ranks({p: s.total for p, s in scores.items()})
    previous_rank = league.ranks(previous_scores)
    by_province: dict[str, list[TargetRecorded]] = {}
    for target in await work.targets():
        if target.active and target.scope == "province" and target.scope_code is not None:
            by_province.setdefault(target.scope_code, []).append(target)
    day = provinces.last_day(overview.window)
    standings = []
    for entry in overview.provinces:
        figures: Mapping[str, float] = entry.report.record.figures if entry.report else {}
        standings.append(
            Standing(
                entry,
                scores.get(entry.province),
                rank_of.get(entry.province),
                previous_rank.get(entry.province),
                [
                    target_standing(t, figures.get(t.indicator), day)
                    for t in by_province.get(entry.province, [])
                ]
                if entry.report is not None
                else [],
            )
        )
    submitted = [e.report.recorded_at for e in overview.provinces if e.report is not None]
    return WeekLeague(overview, standings, before, max(submitted, default=None))


@dataclass(frozen=True)
class Allocation:
    """A budget split among the provinces by their scores for a week."""

    league: WeekLeague
    budget: int
    shares: dict[str, int]

    def as_json(self) -> dict[str, Any]:
        scores = self.league.scores()
        rows = []
        for standing in self.league.standings:
            province = standing.province
            names = BY_CODE[province]
            rows.append(
                {
                    "province": province,
                    "name_fa": names.name_fa,
                    "name_en": names.name_en,
                    "status": standing.entry.status,
                    "score": scores.get(province),
                    "rank": standing.rank,
                    "amount": self.shares.get(province, 0),
                }
            )
        rows.sort(key=lambda r: (r["rank"] is None, r["rank"] or 0, r["province"]))
        return {
            "week": self.league.week,
            "ended": self.league.overview.ended,
            "budget": self.budget,
            "allocated": sum(self.shares.values()),
            "rule": "proportional to score; no report or score 0: nothing; largest remainder",
            "provinces": rows,
        }


def allocation_refusal(refused: AllocationRefused) -> Invalid:
    return Invalid(refused.code, str(refused))


async def allocation(
    work: LeagueWork, week: str, budget_text: str, now: datetime, projects: Iterable[Project]
) -> Allocation:
    """Split the budget (as typed: `league.parse_budget`) among the provinces by their
    scores for the week. Invalid `week_malformed`, `week_in_future`, `budget_invalid` or
    `no_scores`, each in Persian and English."""
    try:
        window = week_window(week)
    except ReportRefused:
        raise Invalid("week_malformed", f"{week!r} is not a Jalali week") from None
    if window.start is not None and window.start > now:
        raise Invalid("week_in_future", f"{week} has not started")
    try:
        budget = league.parse_budget(budget_text)
    except AllocationRefused as refused:
        raise allocation_refusal(refused) from None
    computed = await week_league(work, week, now, projects)
    try:
        shares = league.allocate(budget, computed.scores())
    except AllocationRefused as refused:
        raise allocation_refusal(refused) from None
    return Allocation(computed, budget, shares)
