"""The unit of work: one transaction's reads, writes and the events they announce.

A use case takes a unit of work and never sees a connection: it reads and writes through
the service's storage methods (a subclass of `UnitOfWork`, in the service's `storage.py`)
and announces events with `publish`, which puts them in the outbox of the same
transaction. The state change and its event commit together or not at all. Unit tests
give the use case a fake with the same methods that keeps rows in dictionaries.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

from opentelemetry import context as otel_context

from shared.db import Connection, Pool
from shared.envelope import Envelope
from shared.outbox import enqueue_many


class Publisher(Protocol):
    """What every unit of work offers its use cases, real or fake."""

    async def publish(
        self,
        envelopes: Sequence[Envelope[Any]],
        parents: Sequence[otel_context.Context | None] | None = None,
    ) -> None: ...


class UnitOfWork:
    """A unit of work on one connection, inside the transaction its caller opened."""

    def __init__(self, connection: Connection) -> None:
        if not connection.is_in_transaction():
            raise RuntimeError("a unit of work runs inside its caller's transaction")
        self.connection = connection

    async def publish(
        self,
        envelopes: Sequence[Envelope[Any]],
        parents: Sequence[otel_context.Context | None] | None = None,
    ) -> None:
        """Announce events through the outbox, in this transaction, in this order.

        Each event's trace continues from its entry in `parents`, else from the current one.
        """
        if envelopes:
            await enqueue_many(self.connection, envelopes, parents)


Work = TypeVar("Work", bound=UnitOfWork)


@asynccontextmanager
async def transaction(pool: Pool, make: Callable[[Connection], Work]) -> AsyncIterator[Work]:
    """A unit of work in a new transaction: committed on leaving, rolled back on error."""
    async with pool.acquire() as connection, connection.transaction():
        yield make(connection)
