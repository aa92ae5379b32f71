"""The provinces' weekly league table, the week's national summary, and the
performance-based allocation of a budget among provinces.

**Score.** Each province that reported for the week gets a score from 0 to 100:

    score = 0.6 × coverage + 0.3 × projects + 0.1 × timeliness

- coverage: the mean of the shares (percent) it reported among `SHARE_FIGURES` (villages
  connected, mobile coverage, 4G coverage, villages covered, villages with fixed lines);
  0 if it reported none. Shares compare provinces of any size; counts (villages
  connected, high-speed ports, rural ICT offices) do not, so they are reported, changed
  and summed, never scored.
- projects: the mean progress (percent) of every project assigned to the province; an
  assigned project it did not report this week counts 0, since the agreement follows
  every project every week.
- timeliness: 100 for a report within its week, 0 for a late one.

The score is rounded to two decimals. **Rank**: by score, highest first; provinces with
the same score share a rank and the next rank skips (1, 2, 2, 4). A province that did not
report has no score and no rank. **Top and bottom five**: the five highest and the five
lowest ranked among those that reported (with fewer than ten reporting, they overlap).

**Roll-up.** For each figure, how many provinces reported it; for a share, their mean
(each province counting once), lowest and highest; for a count, the total.

**Allocation.** A budget (whole rials, 1 to `MAX_BUDGET`) is split among the provinces in
proportion to their scores; a province that did not report, or scored 0, gets nothing, so
its part goes to those that did. Shares are whole rials that sum exactly to the budget, by
the largest remainder: each province gets the whole part of its exact quota, and the rials
left go one each to the largest fractional parts (ties: the higher score, then the
province's code). Exact: scores are counted in hundredths of a point, in integers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Literal

from services.metrics.domain.provincial_reports import FIGURES
from shared.persian import to_ascii_digits

SCORE_WEIGHTS = {"coverage": 0.6, "projects": 0.3, "timeliness": 0.1}
SHARE_FIGURES = tuple(code for code, kind in FIGURES.items() if kind == "share")
COUNT_FIGURES = tuple(code for code, kind in FIGURES.items() if kind == "count")
TOP_AND_BOTTOM = 5
#: The largest budget split (rials): every share stays exact for readers of JSON that
#: hold numbers as doubles (below 2^53).
MAX_BUDGET = 10**15


@dataclass(frozen=True)
class Score:
    """A province's score for a week and its parts (each 0 to 100)."""

    coverage: float
    projects: float
    timeliness: float
    total: float


def score_of(
    figures: Mapping[str, float],
    projects: Mapping[str, float],
    assigned: Sequence[str],
    *,
    late: bool,
) -> Score:
    """The score of a province's report (the rule of the module's docstring)."""
    shares = [figures[code] for code in SHARE_FIGURES if code in figures]
    coverage = fmean(shares) if shares else 0.0
    progress = fmean(projects.get(code, 0.0) for code in assigned) if assigned else 0.0
    timeliness = 0.0 if late else 100.0
    total = (
        SCORE_WEIGHTS["coverage"] * coverage
        + SCORE_WEIGHTS["projects"] * progress
        + SCORE_WEIGHTS["timeliness"] * timeliness
    )
    return Score(round(coverage, 2), round(progress, 2), timeliness, round(total, 2))


def league_order(scores: Mapping[str, float]) -> list[str]:
    """The provinces scored, highest score first (ties by code)."""
    return sorted(scores, key=lambda province: (-scores[province], province))


def ranks(scores: Mapping[str, float]) -> dict[str, int]:
    """Each province's rank: one more than the number of provinces scoring higher."""
    return {
        province: 1 + sum(1 for other in scores.values() if other > score)
        for province, score in scores.items()
    }


def top_and_bottom(
    scores: Mapping[str, float], count: int = TOP_AND_BOTTOM
) -> tuple[list[str], list[str]]:
    """The `count` highest-ranked provinces and the `count` lowest, each in league order."""
    order = league_order(scores)
    return order[:count], order[-count:] if order else []


@dataclass(frozen=True)
class FigureRollUp:
    """A figure across the provinces that reported it."""

    figure: str
    provinces: int
    total: float | None
    mean: float | None
    lowest: float | None
    highest: float | None


def roll_up(reported: Mapping[str, Mapping[str, float]]) -> list[FigureRollUp]:
    """Every figure's roll-up over the provinces' reports (province → its figures)."""
    rolled = []
    for code, kind in FIGURES.items():
        values = [figures[code] for figures in reported.values() if code in figures]
        if not values:
            rolled.append(FigureRollUp(code, 0, None, None, None, None))
        elif kind == "count":
            rolled.append(FigureRollUp(code, len(values), sum(values), None, None, None))
        else:
            rolled.append(
                FigureRollUp(
                    code, len(values), None, round(fmean(values), 2), min(values), max(values)
                )
            )
    return rolled


AllocationProblem = Literal["budget_invalid", "no_scores"]

ALLOCATION_MESSAGES: dict[str, dict[Literal["fa", "en"], str]] = {
    "budget_invalid": {
        "fa": "بودجه باید عددی درست به ریال، از ۱ تا ۱۰ به توان ۱۵ (۱٬۰۰۰٬۰۰۰٬۰۰۰٬۰۰۰٬۰۰۰) باشد.",
        "en": "The budget must be a whole number of rials, from 1 to 10^15 "
        "(1,000,000,000,000,000).",
    },
    "no_scores": {
        "fa": "در این هفته هیچ استانی امتیازی بیش از صفر ندارد؛ بودجه را بر پایه چیزی "
        "نمی‌توان تقسیم کرد.",
        "en": "No province has a score above zero this week; there is nothing to split "
        "the budget by.",
    },
}


class AllocationRefused(Exception):
    """The allocation cannot be made; `code` says why (`ALLOCATION_MESSAGES`)."""

    def __init__(self, code: AllocationProblem) -> None:
        super().__init__(ALLOCATION_MESSAGES[code]["en"])
        self.code = code


_SEPARATORS = re.compile(r"[\s,_\u066c\u060c]")


def parse_budget(text: str) -> int:
    """A budget as people write it: ASCII, Persian or Arabic-Indic digits, with or without
    thousands separators; AllocationRefused `budget_invalid` unless it is a whole number
    of rials from 1 to `MAX_BUDGET`."""
    digits = _SEPARATORS.sub("", to_ascii_digits(text))
    if not digits.isascii() or not digits.isdigit() or len(digits) > 16:
        raise AllocationRefused("budget_invalid")
    budget = int(digits)
    if not 1 <= budget <= MAX_BUDGET:
        raise AllocationRefused("budget_invalid")
    return budget


def allocate(budget: int, scores: Mapping[str, float]) -> dict[str, int]:
    """Split `budget` among the provinces scored, by the rule of the module's docstring;
    every province of `scores` is in the answer (0 if it scored 0). AllocationRefused
    `budget_invalid` for a budget out of bounds, `no_scores` if no score is above 0."""
    if not 1 <= budget <= MAX_BUDGET:
        raise AllocationRefused("budget_invalid")
    points = {province: max(0, round(score * 100)) for province, score in scores.items()}
    total = sum(points.values())
    if total == 0:
        raise AllocationRefused("no_scores")
    shares = {province: budget * p // total for province, p in points.items()}
    left = budget - sum(shares.values())
    by_remainder = sorted(
        (province for province, p in points.items() if p > 0),
        key=lambda province: (-(budget * points[province] % total), -points[province], province),
    )
    for province in by_remainder[:left]:
        shares[province] += 1
    return shares


def unscored(all_provinces: Iterable[str], scores: Mapping[str, float]) -> list[str]:
    """The provinces (in the order given) that have no score: they did not report."""
    return [province for province in all_provinces if province not in scores]
