"""The reference file names its source and covers every province."""

from __future__ import annotations

import pytest

from services.metrics.domain.reference import load_reference, parse_reference
from shared.reference.provinces import BY_CODE


def test_the_shipped_reference_covers_the_31_provinces_with_the_census_total() -> None:
    reference = load_reference()
    assert set(reference.adults_by_province) == set(BY_CODE)
    assert "Statistical Centre of Iran" in reference.source
    # The census counted 79,926,270 people; adults are estimated as a share of them.
    assert 0.6 * 79_926_270 < reference.adults < 0.8 * 79_926_270


def test_a_reference_missing_a_province_is_refused() -> None:
    text = """
version: 1
source: {name_en: x}
adult_share_estimate: 0.7
provinces: {IR-00: {total_2016: 10}}
baselines: {in_person_visits_per_day: 1}
"""
    with pytest.raises(ValueError, match="missing"):
        parse_reference(text)
