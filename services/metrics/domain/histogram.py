"""Latency percentiles from a fixed-bucket histogram, so they can live in counters."""

from __future__ import annotations

import math
from collections.abc import Mapping

# Upper bounds in milliseconds; the last bucket holds everything slower.
BOUNDS_MS: tuple[float, ...] = (
    5,
    10,
    20,
    30,
    50,
    75,
    100,
    150,
    200,
    300,
    500,
    750,
    1_000,
    1_500,
    2_000,
    3_000,
    5_000,
    10_000,
    30_000,
    60_000,
    120_000,
    math.inf,
)


def bucket_of(milliseconds: float) -> str:
    """The label (its upper bound) of the bucket a latency falls in."""
    for bound in BOUNDS_MS:
        if milliseconds <= bound:
            return label(bound)
    raise AssertionError("the last bucket is unbounded")


def label(bound: float) -> str:
    return "inf" if math.isinf(bound) else f"{bound:g}"


def percentile(counts: Mapping[str, float], quantile: float) -> float:
    """The latency below which `quantile` of the observations fall, interpolated in-bucket.

    `counts` maps bucket labels to their counts. Exact to the bucket's width; an answer in
    the unbounded bucket is that bucket's lower bound. 0 when nothing was observed.
    """
    if not 0 < quantile <= 1:
        raise ValueError("quantile must be in (0, 1]")
    total = sum(counts.values())
    if total <= 0:
        return 0.0
    rank = quantile * total
    seen = 0.0
    lower = 0.0
    for bound in BOUNDS_MS:
        count = counts.get(label(bound), 0.0)
        if count and seen + count >= rank:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - seen) / count
        seen += count
        lower = bound
    return lower
