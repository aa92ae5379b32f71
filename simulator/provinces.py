"""Simulated provincial ICT directorates: each submits its province's weekly report.

Every week the development sample covers (`sample_weeks`: the current week and the seven
before it) is reported for each province that has not reported it, oldest week first,
through the metrics service's public API (`PUT /api/provinces/{province}/reports/{week}`)
with the directorate's own credentials (`programme:report`, created as the platform
operator creates any agency's client). The figures are plausible, not real: each
province's first week is drawn from ranges seeded by its code, and each later week grows
a little from its latest earlier report (read back from the API), now and then falling,
with a reason. Lorestan's first week is the one its directorate published (loaded with
the reference register); its later weeks grow from those figures like any province's, once
that first week is in, so its series (its 4G coverage, say) moves from the real figures.

A week a province has reported already is never sent again, so restarts correct nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from services.metrics.domain.provincial_reports import FIGURES, FigureKind, sample_weeks
from shared.logging import get_logger
from shared.reference.provinces import directorate_code
from simulator.actors import Operator, Readiness, expect, retrying

log = get_logger(__name__)

ADAPTER = "report_provinces"
REPORT_SCOPE = "programme:report"
#: Provinces whose first sample week is their directorate's own publication, not simulated.
PUBLISHED_FIRST_WEEK = frozenset({"IR-15"})
CHECK_SECONDS = 600.0

#: A province's first simulated week: each figure drawn within these bounds.
FIRST_WEEK: dict[str, tuple[float, float]] = {
    "villages_connected": (300, 2500),
    "villages_connected_share": (80, 97),
    "mobile_coverage_share": (92, 99),
    "coverage_4g_share": (60, 90),
    "villages_covered_share": (85, 98),
    "villages_fixed_line_share": (70, 95),
    "high_speed_ports": (40_000, 900_000),
    "rural_ict_offices": (80, 500),
}
#: How much a figure grows in a week: counts by whole units (ports: a fraction of them),
#: shares by percentage points.
GROWTH: dict[str, tuple[float, float]] = {
    "villages_connected": (0, 6),
    "villages_connected_share": (0, 0.3),
    "mobile_coverage_share": (0, 0.1),
    "coverage_4g_share": (0, 0.4),
    "villages_covered_share": (0, 0.2),
    "villages_fixed_line_share": (0, 0.2),
    "high_speed_ports": (0.001, 0.006),
    "rural_ict_offices": (0, 1),
}
FALL_CHANCE = 0.03
FALL_REASONS = (
    "آسیب به دکل‌ها در پی سیل؛ بازسازی در جریان است.",
    "قطع برق طولانی در چند بخش استان؛ سایت‌ها موقتاً خاموش‌اند.",
    "بازشماری روستاها پس از ادغام چند آبادی.",
)


def _round(kind: FigureKind, value: float) -> float:
    return float(round(value)) if kind == "count" else round(min(100.0, max(0.0, value)), 1)


def plan_report(
    rng: random.Random,
    province: str,
    earlier: Mapping[str, float],
    projects: list[str],
) -> dict[str, Any]:
    """A plausible weekly report for the province, growing from `earlier` (its latest
    earlier figures; `projects.<code>` for projects): the body of the PUT."""
    first = random.Random(f"first-week:{province}")  # the same first week on every run
    figures: dict[str, float] = {}
    reasons: dict[str, str] = {}
    for code, kind in FIGURES.items():
        low, high = FIRST_WEEK[code]
        start = first.uniform(low, high)
        before = earlier.get(code)
        if before is None:
            figures[code] = _round(kind, start)
            continue
        grow_low, grow_high = GROWTH[code]
        step = rng.uniform(grow_low, grow_high)
        if code == "high_speed_ports":
            step *= before
        value = _round(kind, before + step)
        if rng.random() < FALL_CHANCE:
            value = _round(kind, before - max(1.0, step * 3) if kind == "count" else before - 0.5)
            if value < before:
                reasons[code] = rng.choice(FALL_REASONS)
        figures[code] = max(value, 0.0)
    progress: dict[str, float] = {}
    for code in projects:
        before = earlier.get(f"projects.{code}")
        start = first.uniform(5, 60)
        value = start if before is None else before + rng.uniform(0.2, 2.5)
        progress[code] = _round("share", value)
    return {"figures": figures, "projects": progress, "reasons": reasons}


def latest_before(reports: list[dict[str, Any]], week: str) -> dict[str, float]:
    """The latest figure of each figure and project (`projects.<code>`) in the reports of
    weeks before `week` (labels `YYYY-Www` compare as text)."""
    earlier: dict[str, float] = {}
    for report in sorted(reports, key=lambda r: str(r["week"])):
        if str(report["week"]) >= week:
            break
        earlier.update({code: float(v) for code, v in report.get("figures", {}).items()})
        earlier.update(
            {f"projects.{code}": float(v) for code, v in report.get("projects", {}).items()}
        )
    return earlier


class ProvincialDirectorates:
    """The simulated directorates: every few minutes, each week of the sample a province
    has not reported is reported."""

    def __init__(
        self,
        operator: Operator,
        metrics: httpx.AsyncClient,
        readiness: Readiness,
        rng: random.Random,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.operator = operator
        self.metrics = metrics
        self.readiness = readiness
        self.rng = rng
        self.clock = clock
        self.sent = 0

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            done = await retrying(ADAPTER, self.catch_up, self.readiness, stopping)
            if done is not None:
                self.readiness.working(ADAPTER)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), CHECK_SECONDS)

    async def catch_up(self) -> int:
        """Report every week of the sample each province still owes, oldest first; how
        many reports were sent."""
        sent = 0
        weeks = sample_weeks(self.clock())
        published: set[str] = set()  # provinces whose published first week is in
        for week in weeks:
            overview = expect(await self.metrics.get(f"/api/provinces/reports/{week}"), 200)
            for entry in overview["provinces"]:
                province = str(entry["province"])
                if entry["status"] == "reported":
                    if week == weeks[0]:
                        published.add(province)
                    continue
                if province in PUBLISHED_FIRST_WEEK and (
                    week == weeks[0] or province not in published
                ):
                    continue
                await self.report(province, week)
                sent += 1
        if sent:
            log.info("simulated weekly reports sent", reports=sent)
        return sent

    async def report(self, province: str, week: str) -> None:
        history = expect(await self.metrics.get(f"/api/provinces/{province}/reports"), 200)
        projects = [str(p["code"]) for p in history.get("projects", [])]
        body = plan_report(
            self.rng, province, latest_before(history.get("reports", []), week), projects
        )
        token = await self.operator.agency_token(directorate_code(province), [REPORT_SCOPE])
        expect(
            await self.metrics.put(
                f"/api/provinces/{province}/reports/{week}",
                json=body,
                headers=Operator.bearer(token),
            ),
            200,
        )
        self.sent += 1
        # Working from the first report accepted: the whole backlog takes a while.
        self.readiness.working(ADAPTER)
