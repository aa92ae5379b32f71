"""The league's rules, pure: the score, ranks with ties, top and bottom five, the
national roll-up, and the performance-based allocation (exact, by largest remainder)."""

from __future__ import annotations

import pytest

from services.metrics.domain.league import (
    MAX_BUDGET,
    AllocationRefused,
    allocate,
    parse_budget,
    ranks,
    roll_up,
    score_of,
    top_and_bottom,
)


def test_the_score_weighs_coverage_projects_and_timeliness() -> None:
    score = score_of(
        {"coverage_4g_share": 80, "mobile_coverage_share": 100, "villages_connected": 9999},
        {"a": 50, "b": 100},
        ["a", "b"],
        late=False,
    )
    assert (score.coverage, score.projects, score.timeliness) == (90, 75, 100)
    assert score.total == pytest.approx(0.6 * 90 + 0.3 * 75 + 0.1 * 100)


def test_counts_are_not_scored_and_an_unreported_project_counts_zero() -> None:
    small = score_of(
        {"coverage_4g_share": 50, "high_speed_ports": 10}, {"a": 60}, ["a", "b"], late=False
    )
    large = score_of(
        {"coverage_4g_share": 50, "high_speed_ports": 10**7}, {"a": 60}, ["a", "b"], late=False
    )
    assert small == large
    assert small.projects == 30


def test_a_late_report_loses_its_timeliness() -> None:
    on_time = score_of({"coverage_4g_share": 50}, {}, [], late=False)
    late = score_of({"coverage_4g_share": 50}, {}, [], late=True)
    assert on_time.total - late.total == pytest.approx(10)


def test_no_share_reported_is_no_coverage() -> None:
    assert score_of({"villages_connected": 100}, {}, [], late=False).coverage == 0


def test_equal_scores_share_a_rank_and_the_next_rank_skips() -> None:
    assert ranks({"IR-01": 80, "IR-02": 70, "IR-03": 70, "IR-04": 60}) == {
        "IR-01": 1,
        "IR-02": 2,
        "IR-03": 2,
        "IR-04": 4,
    }


def test_top_and_bottom_five_are_in_league_order_and_overlap_with_few_provinces() -> None:
    scores = {f"IR-{n:02d}": float(n) for n in range(12)}
    top, bottom = top_and_bottom(scores)
    assert top == ["IR-11", "IR-10", "IR-09", "IR-08", "IR-07"]
    assert bottom == ["IR-04", "IR-03", "IR-02", "IR-01", "IR-00"]
    few = {"IR-01": 3.0, "IR-02": 2.0, "IR-03": 1.0}
    assert top_and_bottom(few) == (["IR-01", "IR-02", "IR-03"], ["IR-01", "IR-02", "IR-03"])
    assert top_and_bottom({}) == ([], [])


def test_the_roll_up_averages_shares_and_sums_counts() -> None:
    rolled = {
        r.figure: r
        for r in roll_up(
            {
                "IR-01": {"coverage_4g_share": 70, "villages_connected": 100},
                "IR-02": {"coverage_4g_share": 80, "villages_connected": 250},
                "IR-03": {"villages_connected": 5},
            }
        )
    }
    share = rolled["coverage_4g_share"]
    assert (share.provinces, share.mean, share.lowest, share.highest, share.total) == (
        2,
        75,
        70,
        80,
        None,
    )
    count = rolled["villages_connected"]
    assert (count.provinces, count.total, count.mean) == (3, 355, None)
    assert rolled["rural_ict_offices"].provinces == 0


def test_the_allocation_is_proportional_and_sums_exactly_to_the_budget() -> None:
    shares = allocate(1_000_000, {"IR-01": 75.5, "IR-02": 50.25, "IR-03": 10})
    assert sum(shares.values()) == 1_000_000
    total = 75.5 + 50.25 + 10
    for province, score in {"IR-01": 75.5, "IR-02": 50.25, "IR-03": 10}.items():
        assert abs(shares[province] - 1_000_000 * score / total) < 1


def test_the_rials_left_go_to_the_largest_remainders_ties_by_score_then_code() -> None:
    # 10 among three equal scores: 3 each, the one rial left to the first code.
    assert allocate(10, {"IR-02": 50, "IR-01": 50, "IR-03": 50}) == {
        "IR-01": 4,
        "IR-02": 3,
        "IR-03": 3,
    }
    # Quotas 100 × (2/7, 5/7): 28.57… and 71.42…: the larger remainder gets the rial.
    assert allocate(100, {"IR-01": 20, "IR-02": 50}) == {"IR-01": 29, "IR-02": 71}


def test_a_province_scoring_zero_gets_nothing_and_no_scores_is_refused() -> None:
    assert allocate(7, {"IR-01": 0, "IR-02": 30}) == {"IR-01": 0, "IR-02": 7}
    with pytest.raises(AllocationRefused) as refused:
        allocate(7, {"IR-01": 0})
    assert refused.value.code == "no_scores"
    with pytest.raises(AllocationRefused):
        allocate(7, {})


def test_the_largest_budget_is_split_exactly() -> None:
    scores = {f"IR-{n:02d}": 33.33 + n for n in range(31)}
    shares = allocate(MAX_BUDGET, scores)
    assert sum(shares.values()) == MAX_BUDGET


@pytest.mark.parametrize(
    ("typed", "budget"),
    [("1000", 1000), ("۱۲٬۵۰۰٬۰۰۰", 12_500_000), ("٣,٠٠٠", 3000), ("1 000 000", 1_000_000)],
)
def test_a_budget_is_read_as_people_write_it(typed: str, budget: int) -> None:
    assert parse_budget(typed) == budget


@pytest.mark.parametrize(
    "typed", ["", "0", "-5", "12.5", "1e6", "ten", str(MAX_BUDGET + 1), "9" * 40]
)
def test_a_budget_out_of_bounds_or_not_whole_is_refused(typed: str) -> None:
    with pytest.raises(AllocationRefused) as refused:
        parse_budget(typed)
    assert refused.value.code == "budget_invalid"
