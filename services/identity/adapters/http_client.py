"""Calling a partner's HTTP service resiliently: timeouts, retries with backoff, and a
circuit breaker, for the operator check and the SMS provider alike.

A call either returns the partner's answer or raises `PartnerUnavailable` (the partner is
down, slow, failing, or the breaker is open) or `PartnerRefused` (the partner answered
that this request will never succeed: a 4xx other than 408 and 429). Retries are only
for what may pass: connection errors, timeouts, 408, 429 and 5xx.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from shared.logging import get_logger

log = get_logger(__name__)

RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class PartnerUnavailable(Exception):
    """The partner gave no usable answer now; later it may."""


class PartnerRefused(Exception):
    """The partner answered that this request will never succeed."""


@dataclass(frozen=True)
class PartnerSettings:
    """Where a partner is and how patiently it is called."""

    url: str
    token: str | None = None
    timeout_seconds: float = 2.0
    retries: int = 2
    backoff_seconds: float = 0.2
    failures_to_open: int = 5
    open_seconds: float = 30.0


BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Opens after `failures_to_open` calls in a row failed; while open, calls fail at once
    (the partner gets time to recover, and callers are answered quickly). After
    `open_seconds` one trial call is let through: its success closes the breaker, its
    failure opens it again."""

    def __init__(
        self,
        failures_to_open: int,
        open_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._failures_to_open = failures_to_open
        self._open_seconds = open_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self._open_seconds:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """Whether a call may go to the partner now (in half-open, one at a time)."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._trial_running:
            self._trial_running = True
            return True
        return False

    def succeeded(self) -> None:
        self._failures, self._opened_at, self._trial_running = 0, None, False

    def failed(self) -> None:
        self._failures += 1
        if self._trial_running or self._failures >= self._failures_to_open:
            self._opened_at = self._clock()  # (re)opened: wait the whole period again
        self._trial_running = False


class Partner:
    """One partner's HTTP service: `post` JSON to it, resiliently."""

    def __init__(
        self,
        name: str,
        settings: PartnerSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._settings = settings
        self.breaker = CircuitBreaker(settings.failures_to_open, settings.open_seconds, clock)
        headers = {"authorization": f"Bearer {settings.token}"} if settings.token else {}
        self._http = httpx.AsyncClient(
            timeout=settings.timeout_seconds, headers=headers, transport=transport
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def post(self, body: dict[str, Any]) -> Any:
        """The partner's JSON answer to `body`; raises `PartnerUnavailable` or
        `PartnerRefused`."""
        attempts = 1 + self._settings.retries
        last = "no attempt made"
        for attempt in range(attempts):
            if not self.breaker.allow():
                raise PartnerUnavailable(f"{self.name}: circuit open after repeated failures")
            try:
                response = await self._http.post(self._settings.url, json=body)
            except httpx.HTTPError as error:
                last = f"{type(error).__name__}: {error}"
            else:
                if response.status_code < 400:
                    self.breaker.succeeded()
                    try:
                        return response.json() if response.content else None
                    except ValueError:
                        raise PartnerRefused(f"{self.name}: the answer is not JSON") from None
                if response.status_code not in RETRIED_STATUSES:
                    # The partner is up and answering: the breaker counts it as alive.
                    self.breaker.succeeded()
                    raise PartnerRefused(f"{self.name}: refused with {response.status_code}")
                last = f"answered {response.status_code}"
            self.breaker.failed()
            log.warning("partner call failed", partner=self.name, attempt=attempt + 1, why=last)
            if attempt + 1 < attempts:
                await asyncio.sleep(self._settings.backoff_seconds * 2**attempt)
        raise PartnerUnavailable(f"{self.name}: {last}")
