"""Pausing the live platform's simulator for a test that needs the figures to hold still,
and giving the platform back with its simulator at work again."""

from __future__ import annotations

import asyncio
from typing import Any

from infra.platform import SERVICE_PROCESSES, LocalPlatform
from infra.platform.processes import http_json
from tests.integration.exchange.helpers import eventually

SIMULATOR = next(process for process in SERVICE_PROCESSES if process.name == "simulator")


def stop_simulator(platform: LocalPlatform) -> None:
    platform.process(SIMULATOR).stop()


async def restart_simulator(platform: LocalPlatform) -> None:
    """Start it again and wait until each of its activities has worked since: the modules
    after this one find the platform as the package started it."""
    platform.start_service(SIMULATOR)
    url = platform.service_url(SIMULATOR) + "/health"

    async def every_activity_working() -> bool:
        health: Any = await asyncio.to_thread(http_json, url)
        if not isinstance(health, dict):
            return False
        working = health.get("working") or {}
        wired = [name for name, on in (health.get("wired") or {}).items() if on]
        return bool(working) and set(working.values()) == {"working"} and len(working) >= len(wired)

    await eventually(every_activity_working, timeout=180)
