"""Identity figures: registrations, sign-ins, failures, lockouts, people authenticated."""

from __future__ import annotations

from datetime import datetime

import faust

from services.metrics.domain import identity
from services.metrics.domain.figures import Cell, Figure
from services.metrics.domain.reference import load_reference
from services.metrics.worker.app import app, decoded, partitions_of, source_topic
from services.metrics.worker.batches import BATCH_SIZE, BATCH_WITHIN_SECONDS, whole_batch_or_none
from services.metrics.worker.counters import Counters, FirstSeen
from services.metrics.worker.publisher import Source, register
from shared.events.identity import CitizenAuthenticated
from shared.events.metrics import IdentityMetricUpdated
from shared.topics import Topic

reference = load_reference()
citizens_topic = source_topic(Topic.IDENTITY_CITIZENS)
authentications = source_topic(Topic.IDENTITY_AUTHENTICATIONS)

registrations = Counters("identity-registrations", partitions_of(Topic.IDENTITY_CITIZENS))
signins = Counters("identity-signins", partitions_of(Topic.IDENTITY_AUTHENTICATIONS))
# Kept apart from the sign-in counters so the people figures only scan these cells.
people = Counters("identity-people", partitions_of(Topic.IDENTITY_AUTHENTICATIONS))
# Keyed by the citizen: the topic is keyed by citizen too, so each citizen's first
# sign-in is decided on one partition, and "ever authenticated" is exact.
authenticated = FirstSeen("identity-authenticated", partitions_of(Topic.IDENTITY_AUTHENTICATIONS))


@app.agent(citizens_topic)
async def count_registrations(stream: faust.StreamT[bytes]) -> None:
    async for batch in stream.take_events(BATCH_SIZE, BATCH_WITHIN_SECONDS):  # type: ignore[attr-defined]
        with whole_batch_or_none():
            for event in batch:
                envelope = await decoded(event)
                if envelope is None:
                    continue
                for cell in identity.increments(envelope):  # type: ignore[arg-type]
                    registrations.stage(cell, event)
            registrations.write_staged()


@app.agent(authentications)
async def count_authentications(stream: faust.StreamT[bytes]) -> None:
    async for batch in stream.take_events(BATCH_SIZE, BATCH_WITHIN_SECONDS):  # type: ignore[attr-defined]
        with whole_batch_or_none():
            for event in batch:
                envelope = await decoded(event)
                if envelope is None:
                    continue
                for cell in identity.increments(envelope):  # type: ignore[arg-type]
                    signins.stage(cell, event)
                payload = envelope.payload
                if isinstance(payload, CitizenAuthenticated) and authenticated.is_first(
                    payload.citizen, event
                ):
                    for cell in identity.first_authentication(envelope):  # type: ignore[arg-type]
                        people.stage(cell, event)
            signins.write_staged()
            people.write_staged()


def figures(now: datetime) -> list[Figure]:
    merged = (registrations.merged, signins.merged, people.merged)
    changed = set().union(*(counts.take_changed() for counts in merged))

    class _All:
        def value(self, cell: Cell) -> float:
            return sum(counts.value(cell) for counts in merged)

        def cells(self, metric: str) -> list[Cell]:
            source = people if metric == identity.COHORT else signins
            return list(source.merged.cells(metric))

    return identity.figures(changed, _All(), reference, now)


def _mark_all_changed() -> None:
    for counters in (registrations, signins, people):
        counters.merged.mark_all_changed()


register(Source("identity", IdentityMetricUpdated, figures, _mark_all_changed))
