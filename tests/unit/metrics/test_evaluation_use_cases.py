"""The metrics service's side of the evaluation: keeping each scorecard the worker publishes,
and answering the league table (`services/metrics/use_cases/evaluations.py`), on a unit of
work in memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.metrics.domain import evaluations as ev
from services.metrics.use_cases import evaluations
from shared.errors import Invalid, NotFound
from shared.events.metrics import AgencyEvaluated
from tests.unit.metrics.fakes import FakeCounts
from tests.unit.metrics.test_evaluations import _evaluate, count, entry, transaction

AT = datetime(2025, 8, 1, tzinfo=UTC)


class FakeEvaluationsWork:
    """`EvaluationsWork` in memory: the latest scorecard per quarter and agency."""

    def __init__(self) -> None:
        self.kept: dict[tuple[str, str], tuple[AgencyEvaluated, datetime, datetime]] = {}

    async def keep_evaluation(self, evaluation: AgencyEvaluated, occurred_at: datetime) -> None:
        key = (evaluation.quarter, evaluation.agency)
        known = self.kept.get(key)
        if known is not None and (known[1] > occurred_at or known[0] == evaluation):
            return
        self.kept[key] = (evaluation, occurred_at, occurred_at)

    async def evaluations_of(self, quarter: str) -> list[tuple[AgencyEvaluated, datetime]]:
        return [
            (e, changed) for (q, _), (e, _, changed) in sorted(self.kept.items()) if q == quarter
        ]

    async def evaluation_of(
        self, quarter: str, agency: str
    ) -> tuple[AgencyEvaluated, datetime] | None:
        known = self.kept.get((quarter, agency))
        return None if known is None else (known[0], known[2])

    async def evaluated_quarters(self) -> list[str]:
        return sorted({q for q, _ in self.kept}, reverse=True)


def _records() -> list[AgencyEvaluated]:
    """1404-Q1 (busy asked half: both used the exchange) and the running 1404-Q2."""
    counts = FakeCounts()
    count(counts, ev.transaction_increments(transaction("busy", "half")))
    return _evaluate(counts, [entry("busy"), entry("half"), entry("idle")])


async def test_the_league_table_lists_the_quarters_agencies_best_first() -> None:
    work = FakeEvaluationsWork()
    for record in _records():
        await evaluations.project_evaluation(work, record, AT)

    table = await evaluations.league_table(work, "1404-Q1")
    answer = table.as_json()

    # Every measure weighs 0.1. half: in the window, used as a provider, no refusals, fast:
    # 40 of 100; busy: in the window, used as a consumer, no refusals (its p95 does not
    # apply): 30 of 90; idle: in the window (refusals and p95 do not apply): 10 of 80.
    assert [(e["agency"], e["score"], e["rank"]) for e in answer["league"]] == [
        ("half", 40.0, 1),
        ("busy", 33.33, 2),
        ("idle", 12.5, 3),
    ]
    assert answer["closed"] is True
    assert answer["first_day"] == "1404-01-01"
    assert [e.agency for e in table.lowest(2)] == ["idle", "busy"]
    assert answer["quarters"] == ["1404-Q2", "1404-Q1"]


async def test_a_scorecard_published_again_or_late_changes_nothing() -> None:
    work = FakeEvaluationsWork()
    records = _records()
    for record in records:
        await evaluations.project_evaluation(work, record, AT)
    newer = records[0].model_copy(update={"score": 1.0})
    await evaluations.project_evaluation(work, newer, AT + timedelta(seconds=1))
    await evaluations.project_evaluation(work, records[0], AT)

    kept, _ = await evaluations.agency_evaluation(work, records[0].quarter, records[0].agency)
    assert kept.score == 1.0


@pytest.mark.parametrize("quarter", ["1405-Q5", "1405-q3", "1405", "autumn", "۱۴۰۵-Q3", "9" * 16])
async def test_a_malformed_quarter_is_refused(quarter: str) -> None:
    with pytest.raises(Invalid) as refused:
        await evaluations.league_table(FakeEvaluationsWork(), quarter)
    assert refused.value.code == "invalid_quarter"


async def test_a_quarter_without_evaluations_or_an_agency_not_evaluated_is_not_found() -> None:
    work = FakeEvaluationsWork()
    for record in _records():
        await evaluations.project_evaluation(work, record, AT)
    with pytest.raises(NotFound) as quarter:
        await evaluations.league_table(work, "1390-Q1")
    with pytest.raises(NotFound) as agency:
        await evaluations.agency_evaluation(work, "1404-Q1", "nobody")
    assert quarter.value.code == "evaluation_not_found"
    assert agency.value.code == "agency_evaluation_not_found"


async def test_the_dashboard_shows_the_running_quarter_or_else_the_latest_evaluated() -> None:
    work = FakeEvaluationsWork()
    assert await evaluations.latest_quarter(work, "1405-Q3") == "1405-Q3"
    for record in _records():
        await evaluations.project_evaluation(work, record, AT)
    assert await evaluations.latest_quarter(work, "1405-Q3") == "1404-Q2"
    assert await evaluations.latest_quarter(work, "1404-Q1") == "1404-Q1"
