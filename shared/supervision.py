"""Background tasks that come back: restarted with backoff after an unexpected error.

A service's background task (key rotation, a sweeper) runs until the service stops. If it
raises, or returns when it should not, the supervisor logs why, waits (longer after each
failure in a row), and starts it again. While it is failing, `/health` says so; once a
restart has run `healthy_after` seconds without failing, it counts as recovered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from shared.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class RestartPolicy:
    """How long to wait before each restart, and when a restart counts as recovered."""

    first_delay: float = 0.5
    max_delay: float = 60.0
    healthy_after: float = 30.0

    def delay(self, failures: int) -> float:
        return float(min(self.max_delay, self.first_delay * 2 ** max(0, failures - 1)))


@dataclass
class TaskHealth:
    """What `/health` says about one supervised task."""

    name: str
    failures: int = 0
    """Failures in a row since the task last ran `healthy_after` seconds."""
    restarts: int = 0
    last_error: str | None = None
    _generation: int = field(default=0, repr=False)

    @property
    def failing(self) -> bool:
        return self.failures > 0

    def describe(self) -> str:
        if not self.failing:
            return "running"
        return f"failing: {self.last_error} (failed {self.failures} times in a row, restarting)"

    def begin_run(self) -> int:
        self._generation += 1
        return self._generation

    def settle(self, generation: int) -> None:
        # Only the run that is still going may clear the failure it recovered from.
        if generation == self._generation and self.failing:
            log.info("background task recovered", task=self.name, restarts=self.restarts)
            self.failures = 0

    def record_failure(self, error: str) -> None:
        self.failures += 1
        self.last_error = error


async def supervise(
    health: TaskHealth,
    work: Callable[[], Awaitable[None]],
    policy: RestartPolicy | None = None,
) -> None:
    """Run `work` until cancelled, restarting it with backoff whenever it fails or ends."""
    policy = policy or RestartPolicy()
    loop = asyncio.get_running_loop()
    while True:
        generation = health.begin_run()
        settling = loop.call_later(policy.healthy_after, health.settle, generation)
        try:
            await work()
            reason = "it stopped although it should run until the service stops"
            log.error("background task ended early; restarting", task=health.name)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # any failure of the task is what supervision is for
            reason = repr(error)
            log.exception("background task failed; restarting", task=health.name)
        finally:
            settling.cancel()
        health.record_failure(reason)
        await asyncio.sleep(policy.delay(health.failures))
        health.restarts += 1
