"""The records the metrics workers forward their rows in."""

from __future__ import annotations

import pytest

from services.metrics.worker.rows import RECORD_BYTES, records, rows_of


def test_rows_come_back_whole_and_in_order_from_records_within_the_size() -> None:
    rows = [(f"{p}|cell-{i}", [i, 1000 + i]) for p in range(6) for i in range(20_000)]
    sent = list(records("delivery-counters", rows))
    assert len(sent) > 1
    assert all(len(record) <= RECORD_BYTES for record in sent)
    back = [row for record in sent for row in rows_of(record)[1]]
    assert back == rows
    assert {rows_of(record)[0] for record in sent} == {"delivery-counters"}


def test_a_row_larger_than_a_record_still_goes_alone() -> None:
    huge = ("service-1", [["2026-01-01T00:00:00", n, "tax", 3, True] for n in range(20_000)])
    sent = list(records("evaluation-services", [("a", 1), huge, ("b", 2)]))
    assert [rows_of(record)[1] for record in sent] == [[("a", 1)], [huge], [("b", 2)]]


def test_no_rows_make_no_record() -> None:
    assert list(records("t", [])) == []


@pytest.mark.parametrize("record", [b"not json", b'{"rows": []}', b'{"table": "t", "rows": 3}'])
def test_a_record_that_is_not_one_is_refused(record: bytes) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):
        rows_of(record)
