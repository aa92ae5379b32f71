"""Which dead letters a replay may send back: only those whose original is younger than the
dedup horizon, since every consumer of the topic sees a replay, those that handled the
original too, and they remember it only that long."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from infra.dead_letters import DeadLetter, past_horizon

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
HORIZON = timedelta(days=45)


def letter(offset: int, *, at: datetime, original_at: datetime | None) -> DeadLetter:
    return DeadLetter(
        topic="catalog.deliveries.dlq",
        partition=0,
        offset=offset,
        at=at,
        original_at=original_at,
        reason="refused",
        source_topic="catalog.deliveries",
        source_partition=0,
        source_offset=offset,
        consumer="metrics",
        key=None,
        value=b"{}",
        original_headers=(),
    )


def test_a_letter_is_judged_by_when_its_original_reached_the_broker() -> None:
    young = letter(1, at=NOW - timedelta(days=2), original_at=NOW - timedelta(days=44))
    # Dead-lettered yesterday, by a consumer that read it late: its original is too old.
    late = letter(2, at=NOW - timedelta(days=1), original_at=NOW - timedelta(days=46))
    replayable, too_old = past_horizon([young, late], HORIZON, now=NOW)
    assert replayable == [young]
    assert too_old == [late]


def test_a_letter_that_does_not_say_is_judged_by_when_it_was_dead_lettered() -> None:
    recent = letter(1, at=NOW - timedelta(days=10), original_at=None)
    ancient = letter(2, at=NOW - timedelta(days=50), original_at=None)
    assert past_horizon([recent, ancient], HORIZON, now=NOW) == ([recent], [ancient])
