"""JSON that every reader reads the same: what is refused, and what passes untouched."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import exact_json
from shared.exact_json import InexactJson


@pytest.mark.parametrize(
    ("document", "kind"),
    [
        (b'{"amount": 9007199254740992}', "number"),
        (b'{"amount": -9007199254740992}', "number"),
        (b'{"amount": 1' + b"0" * 5000 + b"}", "number"),
        (b'{"ratio": NaN}', "number"),
        (b'{"ratio": Infinity}', "number"),
        (b'{"ratio": [-Infinity]}', "number"),
        (b'{"ratio": 1e400}', "number"),
        (b'{"name": "a\\u0000b"}', "character"),
        (b'{"a\\u0000": 1}', "character"),
        (b'{"name": "\\ud800"}', "character"),
        (b'{"name": ["\\udc00x"]}', "character"),
        (b"[" * 65 + b"]" * 65, "depth"),
        (b"[" * 100_000 + b"]" * 100_000, "depth"),
    ],
)
def test_what_json_does_not_carry_exactly_is_refused_with_its_kind(
    document: bytes, kind: str
) -> None:
    with pytest.raises(InexactJson) as refused:
        exact_json.check(document)
    assert refused.value.kind == kind
    with pytest.raises(InexactJson):
        exact_json.parse(document)


@pytest.mark.parametrize(
    "document",
    [
        b'{"amount": 9007199254740991, "low": -9007199254740991}',
        b'{"ratio": 1.5e-300, "big": 1.7976931348623157e308}',
        b'{"name": "\\ud83d\\ude00 \\u0627\\u06cc\\u0631\\u0627\\u0646"}',
        b'{"id": "3e123456-0000-4000-8000-1234567890123456"}',
        b'{"text": "NaN and Infinity are words here"}',
        b"[" * 64 + b"]" * 64,
    ],
)
def test_exact_documents_parse_as_the_plain_parser_reads_them(document: bytes) -> None:
    exact_json.check(document)
    assert exact_json.parse(document) == json.loads(document)


def test_what_is_not_json_at_all_is_left_to_its_reader() -> None:
    exact_json.check(b"{not json 1e999")
    with pytest.raises(json.JSONDecodeError):
        exact_json.parse(b"{not json 1e999")


def test_the_reason_names_where_the_bad_character_is() -> None:
    with pytest.raises(InexactJson, match=r"payload\.names\[1\] holds a NUL character"):
        exact_json.parse(b'{"payload": {"names": ["ok", "x\\u0000"]}}')


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=())),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(st.characters(exclude_categories=())), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(_JSON_VALUES, st.booleans())
def test_the_fast_path_reads_every_document_as_the_careful_parser_does(
    value: object, ascii_only: bool
) -> None:
    # Two parsers must never disagree: what one takes, the other takes as the same value,
    # and what one refuses, the other refuses with the same reason.
    document = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    assert _outcome(exact_json.parse, document) == _outcome(exact_json.loads, document)


def _outcome(read: Callable[[bytes], object], document: bytes) -> tuple[str, object]:
    try:
        return ("read", read(document))
    except (InexactJson, json.JSONDecodeError, UnicodeDecodeError) as refusal:
        return (type(refusal).__name__, str(refusal))
