"""Exchange figures: every finished transaction on `exchange.transactions`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import faust

from services.metrics.domain import exchange
from services.metrics.domain.figures import Figure
from services.metrics.domain.windows import Window, window_of
from services.metrics.worker.app import (
    Follower,
    app,
    decoded,
    partitions_of,
    settings,
    source_topic,
)
from services.metrics.worker.batches import BATCH_SIZE, BATCH_WITHIN_SECONDS, whole_batch_or_none
from services.metrics.worker.counters import Counters, FirstSeen
from services.metrics.worker.publisher import Source, register
from shared.events.exchange import TransactionRecorded
from shared.events.metrics import ExchangeMetricUpdated
from shared.topics import Topic

transactions = source_topic(Topic.EXCHANGE_TRANSACTIONS)
counters = Counters("exchange-counters", partitions_of(Topic.EXCHANGE_TRANSACTIONS))
# A transaction is counted once, however often it is recorded: an exchange restored from a
# backup takes again the requests it had finished after the backup, and records them again.
recorded = FirstSeen(
    "exchange-recorded",
    partitions_of(Topic.EXCHANGE_TRANSACTIONS),
    forget_after=settings.dedup_horizon,
)
# Each window's agencies that used the exchange (rebuilt from the counters on recovery).
users: dict[Window, set[str]] = {}
#: Others counting each transaction (the evaluation of agencies), then told the batch is in.
followers: list[Follower] = []
after_batch: list[Callable[[], None]] = []


@app.agent(transactions)
async def count_transactions(stream: faust.StreamT[bytes]) -> None:
    async for batch in stream.take_events(BATCH_SIZE, BATCH_WITHIN_SECONDS):  # type: ignore[attr-defined]
        with whole_batch_or_none():
            for event in batch:
                envelope = await decoded(event)
                if envelope is None or not isinstance(envelope.payload, TransactionRecorded):
                    continue
                if not recorded.is_first(str(envelope.payload.transaction_id), event):
                    continue
                for cell in exchange.increments(envelope.payload):
                    counters.stage(cell, event)
                for follow in followers:
                    follow(envelope, event)
            counters.write_staged()
            for done in after_batch:
                done()


def figures(now: datetime) -> list[Figure]:
    before = len(users_this_quarter(now))
    out = exchange.figures(counters.merged.take_changed(), counters.merged, users)
    if len(users_this_quarter(now)) != before:
        on_new_user()
    return out


def users_this_quarter(now: datetime) -> set[str]:
    """The agencies that used the exchange in the current Jalali quarter."""
    return users.get(window_of("quarter", now), set())


def _nothing() -> None:
    return None


#: Called when an agency uses the exchange for the first time this quarter (the adoption
#: figures count it as connected); set by the adoption module.
on_new_user: Callable[[], None] = _nothing


register(Source("exchange", ExchangeMetricUpdated, figures, counters.merged.mark_all_changed))
