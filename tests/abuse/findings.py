"""Findings the abuse suite knows about that are still being fixed.

A case that meets an open finding is marked `while_open(...)`: a strict xfail, so it fails
as soon as the finding is fixed; whoever sees that removes the finding from `OPEN`.
"""

from __future__ import annotations

import pytest

ISSUER_KEY_READERS = "issuer-key-readers"

#: The open findings, with what is wrong (the reason shown with each xfail).
OPEN: dict[str, str] = {
    ISSUER_KEY_READERS: (
        "found by the abuse suite: the services' token verifiers (shared/auth.py) skip an "
        "unreadable record on the topics they follow with a warning, and dead-letter nothing"
    ),
}


def while_open(finding: str) -> pytest.MarkDecorator:
    """A strict xfail while `finding` is open; no mark once it is fixed."""
    if finding in OPEN:
        return pytest.mark.xfail(strict=True, reason=OPEN[finding])
    return pytest.mark.usefixtures()
