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
    of what it counts; the metrics service reads them within another)."""
    last = await figures(platform)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        await asyncio.sleep(6)
        now = await figures(platform)
        if now == last:
            return now
        last = now
    raise AssertionError("the figures never settled")
