"""The worker ends itself when its consumer's group coordination fails, and only then."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from services.metrics.worker.exits import EXIT_CONSUMER_FAILED

REPO = Path(__file__).resolve().parents[3]


def _run(outcome: str) -> subprocess.CompletedProcess[str]:
    """A coordination task ended with `outcome` ("error", "done" or "cancelled"), handed
    to the worker's callback in a process of its own."""
    program = textwrap.dedent(
        f"""
        import asyncio
        from services.metrics.worker.exits import exit_if_coordination_failed

        async def main() -> None:
            coordination = asyncio.get_running_loop().create_future()
            if {outcome!r} == "error":
                coordination.set_exception(AssertionError("unsubscribed topic"))
            elif {outcome!r} == "done":
                coordination.set_result(None)
            else:
                coordination.cancel()
            exit_if_coordination_failed(coordination)
            print("still running")

        asyncio.run(main())
        """
    )
    return subprocess.run(
        [sys.executable, "-c", program], cwd=REPO, capture_output=True, text=True, timeout=60
    )


def test_a_coordination_that_failed_ends_the_worker_with_its_own_status() -> None:
    result = _run("error")
    assert result.returncode == EXIT_CONSUMER_FAILED, result.stderr
    assert "still running" not in result.stdout
    assert "group coordination failed" in result.stdout + result.stderr


def test_a_coordination_that_ended_with_the_consumer_leaves_the_worker_running() -> None:
    for outcome in ("done", "cancelled"):
        result = _run(outcome)
        assert result.returncode == 0, result.stderr
        assert "still running" in result.stdout
