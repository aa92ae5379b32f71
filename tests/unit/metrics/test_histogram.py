"""Latency percentiles from fixed buckets."""

from __future__ import annotations

from collections import Counter

import pytest

from services.metrics.domain.histogram import bucket_of, percentile


def test_a_latency_falls_in_the_first_bucket_whose_bound_holds_it() -> None:
    assert bucket_of(0) == "5"
    assert bucket_of(5) == "5"
    assert bucket_of(5.1) == "10"
    assert bucket_of(10_000_000) == "inf"


def test_percentiles_interpolate_within_the_bucket() -> None:
    counts = Counter(bucket_of(ms) for ms in [60] * 90 + [400] * 9 + [2500])
    assert 50 < percentile(counts, 0.50) <= 75
    assert 300 < percentile(counts, 0.95) <= 500
    assert 300 < percentile(counts, 0.99) <= 500
    assert percentile(counts, 1.0) == 3000


def test_no_observations_give_zero_and_a_bad_quantile_is_refused() -> None:
    assert percentile({}, 0.5) == 0.0
    with pytest.raises(ValueError, match="quantile"):
        percentile({"5": 1}, 0)
