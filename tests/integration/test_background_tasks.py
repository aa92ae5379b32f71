"""A service's background task that fails is restarted, and `/health` tells the truth.

The service runs whole (database pool, outbox relay, health route) on the real broker and
database; its background task is one of the test's own that fails on purpose.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from services.metrics.settings import MetricsSettings
from shared.runtime import Runtime, create_app
from shared.supervision import RestartPolicy
from tests.polling import eventually

pytestmark = pytest.mark.integration

QUICK = RestartPolicy(first_delay=0.2, max_delay=1.0, healthy_after=1.0)


@asynccontextmanager
async def service_with(
    task: Callable[[Runtime], Any],
    credentials_file: Callable[[str], str],
    database_urls: Mapping[str, str],
) -> AsyncIterator[httpx.AsyncClient]:
    settings = MetricsSettings(
        kafka_credentials_file=credentials_file("metrics"), database_url=database_urls["metrics"]
    )
    app = create_app(settings, title="supervised", background={"sweeper": task}, restarts=QUICK)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            yield client


async def health_until(client: httpx.AsyncClient, status: int) -> dict[str, Any]:
    """The body of the first `/health` answer with this status (within 10 seconds)."""

    async def poll() -> dict[str, Any]:
        while (response := await client.get("/health")).status_code != status:
            await asyncio.sleep(0.05)
        body: dict[str, Any] = response.json()
        return body

    return await asyncio.wait_for(poll(), 10)


@pytest.mark.allows_error_logs
async def test_a_failing_background_task_is_restarted_and_health_is_degraded_until_it_recovers(
    credentials_file: Callable[[str], str], database_urls: Mapping[str, str]
) -> None:
    # It fails until the test lets it recover: had it recovered by itself after a few
    # runs, a busy machine could start the service too slowly for `/health` to be asked
    # while it was failing.
    runs = 0
    may_recover = asyncio.Event()
    recovered = asyncio.Event()

    async def sweeper(runtime: Runtime) -> None:
        nonlocal runs
        runs += 1
        if not may_recover.is_set():
            raise RuntimeError("sweep failed")
        recovered.set()
        await asyncio.Event().wait()

    async with service_with(sweeper, credentials_file, database_urls) as client:
        failing = await health_until(client, 503)
        assert failing["status"] == "degraded"
        assert "sweep failed" in failing["checks"]["sweeper"]
        await eventually(lambda: runs >= 3, timeout=20)  # restarted, again and again
        failed = runs
        may_recover.set()
        await asyncio.wait_for(recovered.wait(), 10)
        assert runs == failed + 1
        assert await health_until(client, 200) == {
            "service": "metrics",
            "status": "ok",
            "checks": {"database": "ok", "outbox-relay": "running", "sweeper": "running"},
        }


@pytest.mark.allows_error_logs
async def test_a_background_task_that_keeps_failing_keeps_health_degraded(
    credentials_file: Callable[[str], str], database_urls: Mapping[str, str]
) -> None:
    runs = 0

    async def broken(runtime: Runtime) -> None:
        nonlocal runs
        runs += 1
        raise ConnectionError("the key store refuses us")

    async with service_with(broken, credentials_file, database_urls) as client:
        await eventually(lambda: runs >= 4, timeout=20)
        response = await client.get("/health")
        assert response.status_code == 503
        assert response.json()["status"] == "degraded"
        assert "the key store refuses us" in response.json()["checks"]["sweeper"]
