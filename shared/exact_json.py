"""JSON that every reader reads the same: the checks for bodies and events alike.

JSON numbers are doubles to most of the world: an integer beyond ±(2^53−1) silently
changes in a JavaScript client, and NaN or Infinity are not JSON at all (Python's parser
takes them; canonical JSON and PostgreSQL's jsonb do not). PostgreSQL cannot store a NUL
character in text, and an unpaired UTF-16 surrogate (`"\\ud800"`) is no character: it
cannot even be encoded as UTF-8. Such a document is refused where it enters, with the
reason, instead of failing later, deep inside whoever stores or signs it.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

import pydantic_core

MAX_EXACT_INTEGER = 2**53 - 1
MAX_DEPTH = 64
"""Deeper nesting is refused: no document of the platform comes near it, and the parser's
recursion would otherwise end in a RecursionError."""

# A NUL can only be written escaped (a raw control character is not JSON); the fast
# parser refuses unpaired surrogates, NaN and Infinity itself, so only a NUL needs a look
# at the text before it.
_ESCAPED_NUL = b"\\u0000"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


Kind = Literal["number", "character", "depth"]


class InexactJson(ValueError):
    """A JSON document holding what JSON cannot carry exactly; `reason` says what and where,
    `kind` which of the refused things it is."""

    def __init__(self, reason: str, kind: Kind) -> None:
        super().__init__(reason)
        self.reason, self.kind = reason, kind


def _exact_integer(digits: str) -> int:
    # Checked on the text first: int() of thousands of digits is slow, then refused anyway.
    if len(digits.lstrip("-")) > 16 or abs(value := int(digits)) > MAX_EXACT_INTEGER:
        raise InexactJson(f"the integer {_shown(digits)} is beyond ±(2^53−1)", "number")
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise InexactJson(f"the number {_shown(text)} is beyond what a double holds", "number")
    return value


def _no_constant(name: str) -> Any:
    raise InexactJson(f"{name} is not a JSON number", "number")


def _shown(text: str) -> str:
    return text if len(text) <= 24 else f"{text[:20]}… ({len(text)} characters)"


def loads(document: bytes | str) -> Any:
    """`json.loads`, refusing with InexactJson what JSON does not carry exactly.

    Raises InexactJson (integers beyond ±(2^53−1), NaN, Infinity, numbers overflowing a
    double, a NUL or an unpaired surrogate in a string or key, nesting deeper than
    `MAX_DEPTH`) or json.JSONDecodeError / UnicodeDecodeError for what is not JSON.
    """
    try:
        value = json.loads(
            document,
            parse_int=_exact_integer,
            parse_float=_finite_float,
            parse_constant=_no_constant,
        )
    except RecursionError:
        raise InexactJson(
            f"the document is nested deeper than {MAX_DEPTH} levels", "depth"
        ) from None
    check_strings_and_depth(value)
    return value


def parse(document: bytes) -> Any:
    """`loads`, at the fast parser's cost for the usual document.

    pydantic-core's parser (jiter) reads the document at a third of `json.loads`'s cost;
    a walk over what it read then looks for the numbers and the nesting refused. Anything
    it finds, or any document the fast parser refuses, goes through `loads`, so every
    refusal is worded the same whichever parser met it first.
    """
    if _ESCAPED_NUL in document:
        return loads(document)
    try:
        value = pydantic_core.from_json(document, allow_inf_nan=False)
    except ValueError:
        return loads(document)
    if not _exact_and_shallow(value):
        return loads(document)
    return value


def check(document: bytes) -> None:
    """Raise InexactJson if `document` holds what JSON does not carry exactly.

    What is not JSON at all passes, for its reader to refuse in its own words.
    """
    try:
        parse(document)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return


def _exact_and_shallow(value: Any) -> bool:
    """Whether a parsed document has every number exact and no nesting beyond MAX_DEPTH
    (its strings were checked by the parser and for NUL before it)."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    pop, push = pending.pop, pending.append
    while pending:
        item, depth = pop()
        kind = type(item)
        if kind is dict or kind is list:
            if depth >= MAX_DEPTH:
                return False
            for inner in item.values() if kind is dict else item:
                if type(inner) is not str:
                    push((inner, depth + 1))
        elif kind is int:
            if not -MAX_EXACT_INTEGER <= item <= MAX_EXACT_INTEGER:
                return False
        elif kind is float and item in (_INFINITY, -_INFINITY):
            return False
    return True


_INFINITY = float("inf")


def check_strings_and_depth(value: Any) -> None:
    """Raise InexactJson for a NUL or a lone surrogate in any string, or too deep a nesting."""
    pending: list[tuple[Any, str, int]] = [(value, "", 0)]
    while pending:
        item, where, depth = pending.pop()
        if depth >= MAX_DEPTH and isinstance(item, dict | list):
            raise InexactJson(f"the document is nested deeper than {MAX_DEPTH} levels", "depth")
        if isinstance(item, str):
            _check_text(item, where)
        elif isinstance(item, dict):
            for key, inner in item.items():
                inside = f"{where}.{key}" if where else key
                _check_text(key, f"a key in {where or 'the document'}")
                pending.append((inner, inside, depth + 1))
        elif isinstance(item, list):
            pending.extend((inner, f"{where}[{i}]", depth + 1) for i, inner in enumerate(item))


def _check_text(text: str, where: str) -> None:
    found = _UNSTORABLE.search(text)
    if found is not None:
        what = "a NUL character" if found.group() == "\x00" else "an unpaired surrogate"
        raise InexactJson(f"{where or 'the document'} holds {what}", "character")
