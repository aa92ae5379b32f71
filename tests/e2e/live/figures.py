"""The live platform's figures as the metrics service holds them, read from its table."""

from __future__ import annotations

import asyncio
import time

from infra.platform import LocalPlatform
from tests.database import fetch_rows


async def figures(platform: LocalPlatform) -> dict[str, float]:
    rows = await fetch_rows(
        platform.admin_database_url, "SELECT key, value FROM metrics.metric_values"
    )
    return {row["key"]: row["value"] for row in rows}


async def settled_figures(platform: LocalPlatform) -> dict[str, float]:
    """The figures once they have stopped moving (the worker publishes within a second
    of what it counts; the metrics service reads them within another) and count all that
    the catalog and identity recorded: figures that only paused, while a consumer group
    rebalanced, are not settled."""
    last = await figures(platform)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        await asyncio.sleep(6)
        truth, now = await recorded_totals(platform), await figures(platform)
        if now == last and await all_time_national(platform) == as_figures(truth):
            return now
        last = now
    raise AssertionError("the figures never settled")


async def recorded_totals(platform: LocalPlatform) -> dict[str, int]:
    """What the catalog and identity recorded: the ground truth of the worker's figures."""
    [row] = await fetch_rows(
        platform.admin_database_url,
        "SELECT (SELECT count(*) FROM catalog.deliveries) AS deliveries,"
        " (SELECT count(*) FROM identity.sign_ins WHERE outcome = 'succeeded') AS sign_ins",
    )
    return {"deliveries.count": row["deliveries"], "identity.signins": row["sign_ins"]}


async def all_time_national(platform: LocalPlatform) -> dict[str, float]:
    """The worker's all-time national figures of deliveries and sign-ins, as the metrics
    service holds them."""
    rows = await fetch_rows(
        platform.admin_database_url,
        "SELECT metric, value FROM metrics.metric_values"
        " WHERE metric = ANY($1::text[]) AND granularity = 'all_time'"
        " AND dimensions = '{}'::jsonb",
        ["deliveries.count", "identity.signins"],
    )
    return {row["metric"]: row["value"] for row in rows}


def as_figures(totals: dict[str, int]) -> dict[str, float]:
    """Recorded totals as the figures that count them would read."""
    return {metric: float(total) for metric, total in totals.items()}
