"""Persian text as users type it, made comparable.

Users type Arabic yeh and kaf (ي ك) for Persian (ی ک), Persian or Arabic-Indic digits
for ASCII ones, and drop, add or misplace the zero-width non-joiner (ZWNJ). Identifiers
and search must treat all of these as the same text. These functions are pure; PostgreSQL
search applies the same folding in SQL (see each service's migrations) so that both sides
of a comparison agree.
"""

from __future__ import annotations

import re
import unicodedata

ZWNJ = "\u200c"

# Persian (U+06F0..) and Arabic-Indic (U+0660..) digits to ASCII.
_DIGITS = str.maketrans(
    "۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩",
    "01234567890123456789",
)

# Letter forms that users type interchangeably, folded to the standard Persian form.
_LETTERS = str.maketrans(
    {
        "ي": "ی",  # Arabic yeh
        "ى": "ی",  # alef maksura
        "ئ": "ی",  # yeh with hamza
        "ك": "ک",  # Arabic kaf
        "ة": "ه",  # teh marbuta
        "ۀ": "ه",  # heh with yeh above
        "ؤ": "و",  # waw with hamza
        "أ": "ا",  # alef with hamza above
        "إ": "ا",  # alef with hamza below
        "آ": "ا",  # alef with madda
        "ٱ": "ا",  # alef wasla
    }
)

# Harakat, tanwin, shadda, sukun, superscript alef, and the tatweel (kashida).
_MARKS = re.compile("[\u064b-\u065f\u0670\u0640]")
_SPACES = re.compile(r"[\s\u200c\u200d\u200e\u200f\u00a0\ufeff]+")


def to_ascii_digits(text: str) -> str:
    """Persian and Arabic-Indic digits replaced by ASCII digits; nothing else changed."""
    return text.translate(_DIGITS)


def fold(text: str) -> str:
    """Text folded for comparison and search.

    NFKC; letter variants to one form; diacritics and tatweel removed; digits to ASCII;
    ZWNJ and every run of white space to a single space; lower case; trimmed. So
    «می‌خواهم», «ميخواهم» and «می خواهم» fold to words that match.
    """
    text = unicodedata.normalize("NFKC", text)
    text = _MARKS.sub("", text)
    text = text.translate(_LETTERS).translate(_DIGITS)
    text = _SPACES.sub(" ", text)
    return text.strip().lower()


def fold_joined(text: str) -> str:
    """`fold`, with ZWNJ removed instead of spaced: «می‌خواهم» → «میخواهم».

    Users drop the ZWNJ as often as they replace it with a space; a search index keeps
    both foldings so either way of typing finds the word.
    """
    text = unicodedata.normalize("NFKC", text).replace(ZWNJ, "")
    return fold(text)
