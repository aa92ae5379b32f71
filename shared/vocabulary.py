"""Identifiers and small value types that cross service boundaries."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

AgencyCode = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,39}$"),
    Field(description="An agency's stable code, e.g. `civil-registration`."),
]

PseudonymousId = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-f]{64}$"),
    Field(
        description=(
            "A citizen as events know them: a keyed hash (HMAC-SHA-256, hex) of the national "
            "ID, stable per person, never reversible without identity's key."
        )
    ),
]

Channel = Literal["online", "pishkhan", "in_person"]
"""How a service is delivered: online, at a pishkhan service office, or at a counter."""

AuthenticationChannel = Literal["web", "mobile_app", "pishkhan", "agency_system"]

LevelOfAssurance = Literal[1, 2, 3]
"""1: something you know; 2: a one-time code to a mobile proven to be yours; 3: in person."""

Maturity = Literal[0, 1, 2, 3, 4, 5]
"""Electronic maturity of a service.

0 information only; 1 forms to download; 2 submitted online, finished on paper or in
person; 3 fully online with some human steps; 4 fully online, no document or visit;
5 smart: fully automated end to end (no paper, no visit, no human sign-off).
Levels 3 to 5 count as electronic; level 5 as smart.
"""

Localized = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
