"""The simulator's traffic: plausible deliveries at the configured rates."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime

from services.metrics.domain.reference import load_reference
from services.metrics.simulator import SERVICES, Pace, plan_delivery

NOW = datetime(2026, 1, 1, 9, tzinfo=UTC)


def test_deliveries_are_valid_reports_mostly_online_and_weighted_to_populous_provinces() -> None:
    rng = random.Random(1)
    reports = [plan_delivery(rng, NOW, load_reference()) for _ in range(2000)]
    channels = Counter(r.channel for r in reports)
    provinces = Counter(r.province for r in reports)
    assert {(r.agency, r.service_id) for r in reports} <= set(SERVICES)
    assert all(r.finished_at == NOW and r.started_at < NOW for r in reports)
    assert 0.65 < channels["online"] / len(reports) < 0.8
    assert provinces["IR-23"] > provinces["IR-16"]  # Tehran over Ilam
    assert len({r.report_id for r in reports}) == len(reports)


def test_pace_carries_fractions_so_the_rate_holds_over_time() -> None:
    pace = Pace(per_second=2.5)
    assert sum(pace.due(0.1) for _ in range(100)) == 25
    assert Pace(per_second=0).due(10) == 0
