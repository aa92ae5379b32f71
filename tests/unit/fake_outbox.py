"""The outbox side of a fake unit of work: what a use case published, in order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context

from shared.envelope import Envelope


@dataclass
class FakeOutbox:
    """Keeps every published envelope and the trace context it was published under."""

    published: list[Envelope[Any]] = field(default_factory=list)
    parents: list[otel_context.Context | None] = field(default_factory=list)

    async def publish(
        self,
        envelopes: Sequence[Envelope[Any]],
        parents: Sequence[otel_context.Context | None] | None = None,
    ) -> None:
        self.published.extend(envelopes)
        self.parents.extend(parents if parents is not None else [None] * len(envelopes))

    def events(self, kind: type[Any] | None = None) -> list[Any]:
        """The payloads published (of one event type, if given), in order."""
        return [e.payload for e in self.published if kind is None or isinstance(e.payload, kind)]
