"""The quarterly evaluation of agencies, as the metrics service keeps and serves it.

The worker computes each agency's scorecard (`domain/evaluations.py`) and publishes it on
`metrics.evaluations`; the service keeps the latest per agency and quarter
(`project_evaluation`), and answers the quarter's league table and an agency's scorecard.
A quarter is named as analysts write it, `1405-Q3`; a malformed one is refused (422
`invalid_quarter`), one without any scorecard is not found (404 `evaluation_not_found`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from services.metrics.domain.evaluations import MEASURES
from services.metrics.domain.windows import Window, window_from_label
from shared.errors import Invalid, NotFound
from shared.events.metrics import AgencyEvaluated
from shared.messages import register_messages

register_messages(
    {
        "invalid_quarter": {
            "fa": "فصل باید به شکل سال-شماره فصل شمسی نوشته شود، مانند 1405-Q3 (Q1 تا Q4).",
            "en": "A quarter is written as its Jalali year and number, e.g. 1405-Q3 (Q1 to Q4).",
        },
        "evaluation_not_found": {
            "fa": "برای این فصل ارزیابی‌ای از دستگاه‌ها در دست نیست.",
            "en": "There is no evaluation of agencies for this quarter.",
        },
        "agency_evaluation_not_found": {
            "fa": "این دستگاه در این فصل ارزیابی نشده است.",
            "en": "This agency was not evaluated in this quarter.",
        },
    }
)


class EvaluationsWork(Protocol):
    """The storage the evaluation's use cases need (`storage.EvaluationsStorage`)."""

    async def keep_evaluation(self, evaluation: AgencyEvaluated, occurred_at: datetime) -> None:
        """Keep an agency's latest scorecard (never an older over a newer)."""

    async def evaluations_of(self, quarter: str) -> list[tuple[AgencyEvaluated, datetime]]:
        """The quarter's scorecards with when each changed last."""

    async def evaluation_of(
        self, quarter: str, agency: str
    ) -> tuple[AgencyEvaluated, datetime] | None: ...

    async def evaluated_quarters(self) -> list[str]:
        """Every quarter with scorecards, latest first."""


def parse_quarter(text: str) -> Window:
    """The Jalali quarter `text` names (`1405-Q3`); Invalid `invalid_quarter` otherwise."""
    try:
        return window_from_label("quarter", text)
    except (ValueError, OverflowError):
        raise Invalid("invalid_quarter", f"{text[:20]!r} is not a quarter like 1405-Q3") from None


async def project_evaluation(
    work: EvaluationsWork, evaluation: AgencyEvaluated, occurred_at: datetime
) -> None:
    """Keep the agency's scorecard the worker published (a redelivery changes nothing)."""
    await work.keep_evaluation(evaluation, occurred_at)


def _order(entry: tuple[AgencyEvaluated, datetime]) -> tuple[int, float, str]:
    evaluation = entry[0]
    # Ranked first by rank; unscored agencies after, by code.
    return (evaluation.rank or 10**9, -(evaluation.score or 0.0), evaluation.agency)


@dataclass(frozen=True)
class LeagueTable:
    """A quarter's scorecards, best rank first, and when they last changed."""

    quarter: str
    entries: list[tuple[AgencyEvaluated, datetime]]
    quarters: list[str]

    @property
    def updated_at(self) -> datetime:
        return max(changed for _, changed in self.entries)

    def lowest(self, count: int) -> list[AgencyEvaluated]:
        """The `count` lowest-ranked scored agencies, lowest first."""
        ranked = [e for e, _ in self.entries if e.rank is not None]
        return list(reversed(ranked[-count:]))

    def as_json(self) -> dict[str, Any]:
        first = self.entries[0][0]
        weights = {m.indicator: m for m in first.measures}
        return {
            "quarter": self.quarter,
            "first_day": first.first_day,
            "last_day": first.last_day,
            "closed": all(e.closed for e, _ in self.entries),
            "agencies_ranked": max(e.agencies_ranked for e, _ in self.entries),
            "previous_quarter": first.previous_quarter,
            "updated_at": self.updated_at.isoformat(),
            "quarters": self.quarters,
            "measures": [
                {
                    "indicator": m.indicator,
                    "name_fa": weights[m.indicator].name_fa
                    if m.indicator in weights
                    else m.name_fa,
                    "name_en": weights[m.indicator].name_en
                    if m.indicator in weights
                    else m.name_en,
                    "unit": m.unit,
                    "weight": weights[m.indicator].weight if m.indicator in weights else 0.0,
                }
                for m in MEASURES
            ],
            "league": [
                {**e.model_dump(mode="json"), "updated_at": changed.isoformat()}
                for e, changed in self.entries
            ],
        }


async def league_table(work: EvaluationsWork, quarter: str) -> LeagueTable:
    """The quarter's league table; Invalid for a malformed quarter, NotFound for one
    without scorecards."""
    parse_quarter(quarter)
    entries = await work.evaluations_of(quarter)
    if not entries:
        raise NotFound("evaluation_not_found", f"no evaluation of agencies for {quarter}")
    return LeagueTable(quarter, sorted(entries, key=_order), await work.evaluated_quarters())


async def agency_evaluation(
    work: EvaluationsWork, quarter: str, agency: str
) -> tuple[AgencyEvaluated, datetime]:
    """An agency's scorecard in a quarter; Invalid for a malformed quarter, NotFound if the
    agency was not evaluated then."""
    parse_quarter(quarter)
    found = await work.evaluation_of(quarter, agency)
    if found is None:
        raise NotFound("agency_evaluation_not_found", f"{agency[:40]} in {quarter}")
    return found


async def latest_quarter(work: EvaluationsWork, now_quarter: str) -> str:
    """The quarter the dashboard shows by default: the running one if it has scorecards,
    else the latest that has."""
    quarters = await work.evaluated_quarters()
    if now_quarter in quarters or not quarters:
        return now_quarter
    return quarters[0]
