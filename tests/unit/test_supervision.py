"""Supervised background tasks: restarted with backoff, failing until a restart holds."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from shared.supervision import RestartPolicy, TaskHealth, supervise
from tests.polling import eventually

FAST = RestartPolicy(first_delay=0.01, max_delay=0.04, healthy_after=0.2)


def test_restart_delays_grow_to_their_ceiling() -> None:
    policy = RestartPolicy(first_delay=0.5, max_delay=60.0)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert policy.delay(30) == 60.0


@pytest.mark.allows_error_logs
async def test_a_task_that_raises_is_restarted_and_recovers_once_a_run_holds() -> None:
    health = TaskHealth("rotation")
    runs = 0

    async def fails_twice_then_runs() -> None:
        nonlocal runs
        runs += 1
        if runs <= 2:
            raise RuntimeError("key store unreachable")
        await asyncio.Event().wait()

    task = asyncio.create_task(supervise(health, fails_twice_then_runs, FAST))
    try:
        await eventually(lambda: runs == 3)
        assert health.failing
        assert "key store unreachable" in health.describe()
        assert health.restarts == 2
        await eventually(lambda: not health.failing)
        assert health.describe() == "running"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.allows_error_logs
async def test_a_task_that_keeps_failing_stays_failing_and_keeps_being_restarted() -> None:
    health = TaskHealth("sweeper")
    runs = 0

    async def always_fails() -> None:
        nonlocal runs
        runs += 1
        raise ValueError(f"failure {runs}")

    task = asyncio.create_task(supervise(health, always_fails, FAST))
    try:
        await eventually(lambda: runs >= 6)
        assert health.failing
        assert health.failures >= 5
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.allows_error_logs
async def test_a_task_that_returns_early_counts_as_failed_and_is_restarted() -> None:
    health = TaskHealth("gateway")
    runs = 0

    async def returns_at_once() -> None:
        nonlocal runs
        runs += 1

    task = asyncio.create_task(supervise(health, returns_at_once, FAST))
    try:
        await eventually(lambda: runs >= 2)
        assert health.failing
        assert "stopped" in health.describe()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_cancelling_the_supervisor_cancels_the_task_and_does_not_restart_it() -> None:
    health = TaskHealth("rotation")
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def runs_until_cancelled() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    task = asyncio.create_task(supervise(health, runs_until_cancelled, FAST))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled.is_set()
    assert not health.failing
