"""Bounded password hashing: argon2 takes 64 MiB for each hash it computes.

Every unauthenticated `/oauth/token` call with client credentials verifies a secret, so
without a bound, a flood of them would take memory until the process dies. Two bounds:
`HashingGate` refuses a request at once (429, Retry-After) when as many hashes as
allowed are running, before any work is done; `BoundedHasher` makes sure no more than
that many ever run, whoever calls it (operators creating clients too), by waiting.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.identity.use_cases.ports import SecretHasher
from shared.errors import TooManyAttempts

RETRY_AFTER_SECONDS = 1


class HashingBusy(TooManyAttempts):
    """Every hashing slot is taken: try again in a moment."""

    def __init__(self) -> None:
        super().__init__(
            "hashing_busy",
            "too many credentials are being checked at once",
            headers={"retry-after": str(RETRY_AFTER_SECONDS)},
        )


class HashingGate:
    """Admits at most `slots` requests that hash at once; refuses the next at once."""

    def __init__(self, slots: int) -> None:
        self._slots = asyncio.Semaphore(slots)

    @asynccontextmanager
    async def admitted(self) -> AsyncIterator[None]:
        if self._slots.locked():
            raise HashingBusy()
        async with self._slots:
            yield


class BoundedHasher:
    """A `SecretHasher` that runs at most `slots` hashes at once (the others wait)."""

    def __init__(self, hasher: SecretHasher, slots: int) -> None:
        self._hasher = hasher
        self._slots = threading.BoundedSemaphore(slots)

    def hash(self, secret: str) -> str:
        with self._slots:
            return self._hasher.hash(secret)

    def verify(self, stored: str, secret: str) -> bool:
        with self._slots:
            return self._hasher.verify(stored, secret)

    def check_needs_rehash(self, stored: str) -> bool:
        return self._hasher.check_needs_rehash(stored)
