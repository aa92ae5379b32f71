"""The offset the metrics worker commits, from the offsets acknowledged and the gaps."""

from __future__ import annotations

from services.metrics.worker.commits import next_commit


def test_records_each_followed_by_a_transaction_marker_are_committed_whole() -> None:
    # Records at even offsets, markers at odd ones; each gap as Faust records it, running
    # up to and including the record after it.
    assert next_commit([0, 2, 4, 6], [(1, 3), (3, 5), (5, 7)], None) == (7, [])


def test_the_marker_after_the_last_commit_does_not_hold_the_next_one_back() -> None:
    assert next_commit([12, 14], [(13, 15)], 11) == (15, [])


def test_nothing_is_committed_past_an_offset_not_yet_acknowledged() -> None:
    assert next_commit([0, 1, 3], [], None) == (2, [3])


def test_nothing_is_committed_when_the_offsets_after_the_last_commit_are_not_acknowledged() -> None:
    assert next_commit([13, 14], [], 10) == (None, [13, 14])


def test_a_gap_reaching_past_the_last_acknowledged_record_is_not_committed_past_it() -> None:
    # The record closing the gap (offset 4) has been read but not acknowledged yet.
    assert next_commit([0], [(1, 5)], None) == (1, [])


def test_nothing_acknowledged_commits_nothing() -> None:
    assert next_commit([], [(1, 5)], 0) == (None, [])
