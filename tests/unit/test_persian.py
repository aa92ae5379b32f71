"""Persian text folds to one comparable form however it was typed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.persian import fold, fold_joined, to_ascii_digits


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("۰۱۲۳۴۵۶۷۸۹", "0123456789"),
        ("٠١٢٣٤٥٦٧٨٩", "0123456789"),
        ("كد ملي", "کد ملی"),  # Arabic kaf and yeh
        ("مدرسة", "مدرسه"),
        ("مُحَمَّد", "محمد"),  # diacritics
        ("پنجـــره", "پنجره"),  # tatweel
        ("می\u200cخواهم", "می خواهم"),
        ("  خدمات   دولت  ", "خدمات دولت"),
        ("آموزش", "اموزش"),
        ("Report CARD", "report card"),
    ],
)
def test_fold(typed: str, expected: str) -> None:
    assert fold(typed) == expected


def test_zwnj_dropped_or_spaced_both_fold_to_forms_a_search_can_match() -> None:
    with_zwnj, dropped, spaced = "کارنامه\u200cها", "کارنامهها", "کارنامه ها"
    assert fold_joined(with_zwnj) == fold_joined(dropped) == "کارنامهها"
    assert fold(with_zwnj) == fold(spaced) == "کارنامه ها"


def test_digits_only_change_digits() -> None:
    assert to_ascii_digits("کد ۱۲۳-٤٥") == "کد 123-45"


@given(st.text())
def test_fold_is_idempotent(text: str) -> None:
    assert fold(fold(text)) == fold(text)


@given(st.text())
def test_fold_joined_is_idempotent(text: str) -> None:
    assert fold_joined(fold_joined(text)) == fold_joined(text)
