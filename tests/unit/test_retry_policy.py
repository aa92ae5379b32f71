"""How long a consumer waits between attempts."""

from __future__ import annotations

from shared.kafka import RetryPolicy


def test_delays_double_and_stop_growing_at_the_cap() -> None:
    policy = RetryPolicy(first_delay=0.5, max_delay=3.0)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
