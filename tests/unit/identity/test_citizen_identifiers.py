"""The national ID rule, its normalisation, mobiles, birth dates and the pseudonym."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.identity.domain.citizens import (
    InvalidInput,
    is_valid_national_id,
    national_id_check_digit,
    normalise_mobile,
    normalise_national_id,
    parse_birth_date,
    pseudonym,
)

PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")

nine_digits = st.text(alphabet="0123456789", min_size=9, max_size=9)


def reference_valid(candidate: str) -> bool:
    """The rule as the civil registration states it, written independently."""
    if len(candidate) != 10 or not candidate.isdigit() or len(set(candidate)) == 1:
        return False
    total = sum(int(candidate[i]) * (10 - i) for i in range(9))
    remainder = total % 11
    check = int(candidate[9])
    return (remainder < 2 and check == remainder) or (remainder >= 2 and check == 11 - remainder)


@st.composite
def valid_ids(draw: st.DrawFn) -> str:
    first = draw(nine_digits.filter(lambda d: len(set(d)) > 1))
    return first + str(national_id_check_digit(first))


def test_known_valid_ids_pass() -> None:
    assert is_valid_national_id("0499370899")
    assert is_valid_national_id("0790419904")


@given(st.text(alphabet="0123456789", min_size=10, max_size=10))
def test_the_rule_agrees_with_the_reference_on_every_ten_digit_string(candidate: str) -> None:
    assert is_valid_national_id(candidate) == reference_valid(candidate)


@given(valid_ids(), st.integers(min_value=1, max_value=9))
def test_changing_the_check_digit_makes_an_id_invalid(national_id: str, shift: int) -> None:
    wrong = national_id[:9] + str((int(national_id[9]) + shift) % 10)
    assert not is_valid_national_id(wrong)


@given(st.sampled_from("0123456789"))
def test_one_repeated_digit_is_invalid_even_with_a_fitting_check_digit(digit: str) -> None:
    with pytest.raises(InvalidInput):
        normalise_national_id(digit * 10)


@given(
    valid_ids(),
    st.sampled_from([PERSIAN, ARABIC_INDIC, str.maketrans("", "")]),
    st.lists(st.sampled_from([" ", "-", "\u200c", "‐"]), max_size=10),
    st.randoms(use_true_random=False),
)
def test_persian_digits_spaces_and_dashes_normalise_to_the_same_id(
    national_id: str, digits: dict[int, str], separators: list[str], rng: object
) -> None:
    typed = list(national_id.translate(digits))
    for separator in separators:
        typed.insert(rng.randrange(len(typed) + 1), separator)  # type: ignore[attr-defined]
    assert normalise_national_id(f"  {''.join(typed)} ") == national_id


@given(st.text(max_size=14))
def test_normalisation_returns_a_valid_id_or_refuses_with_a_reason(text: str) -> None:
    refusal: InvalidInput | None = None
    try:
        result = normalise_national_id(text)
    except InvalidInput as error:
        refusal = error
    if refusal is None:
        assert is_valid_national_id(result)
    else:
        assert refusal.code == "invalid_national_id"
        assert refusal.reason


@given(st.text(alphabet="0123456789", min_size=1, max_size=9).filter(lambda d: len(d) != 10))
def test_ids_of_another_length_are_refused(digits: str) -> None:
    with pytest.raises(InvalidInput, match="10 digits"):
        normalise_national_id(digits)


@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_every_accepted_form_of_a_mobile_is_one_e164_number(rest: str) -> None:
    canonical = f"+989{rest}"
    forms = [
        f"09{rest}",
        f"9{rest}",
        f"989{rest}",
        f"00989{rest}",
        f"+98 9{rest[:2]} {rest[2:5]} {rest[5:]}",
        f"09{rest}".translate(PERSIAN),
        f"0{rest[:0]}9{rest[:2]}-{rest[2:]}",
    ]
    assert {normalise_mobile(form) for form in forms} == {canonical}


@pytest.mark.parametrize(
    "typed", ["02112345678", "+14155550100", "0912123456", "091212345678", "abc", "", "+98 21 1234"]
)
def test_landlines_foreign_and_malformed_mobiles_are_refused(typed: str) -> None:
    with pytest.raises(InvalidInput) as refusal:
        normalise_mobile(typed)
    assert refusal.value.code == "invalid_mobile"


def test_birth_dates_in_either_calendar_give_the_same_day() -> None:
    today = date(2026, 1, 1)
    assert parse_birth_date("1370/01/15", None, today).gregorian == date(1991, 4, 4)
    assert parse_birth_date("۱۳۷۰-۰۱-۱۵", "jalali", today).gregorian == date(1991, 4, 4)
    assert parse_birth_date("1991-04-04", None, today).jalali == "1370/01/15"


@pytest.mark.parametrize(
    ("typed", "calendar"),
    [("1370/13/01", None), ("1991-02-30", None), ("2030-01-01", None), ("1370", None), ("x", None)],
)
def test_impossible_or_future_birth_dates_are_refused(typed: str, calendar: None) -> None:
    with pytest.raises(InvalidInput) as refusal:
        parse_birth_date(typed, calendar, date(2026, 1, 1))
    assert refusal.value.code == "invalid_birth_date"


@given(valid_ids(), valid_ids())
def test_the_pseudonym_is_stable_keyed_and_distinct(first: str, second: str) -> None:
    key = b"k" * 32
    assert pseudonym(first, key) == pseudonym(first, key)
    assert len(pseudonym(first, key)) == 64
    assert pseudonym(first, key) != pseudonym(first, b"other-key")
    assert (pseudonym(first, key) == pseudonym(second, key)) == (first == second)
    assert first not in pseudonym(first, key)
