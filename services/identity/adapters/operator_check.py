"""The operator check: does this mobile number belong to the holder of this national ID?

The real check is the regulator's (mobile operators' subscriber register); identity
depends only on the `OperatorCheck` port and ships a development adapter.
"""

from __future__ import annotations

from typing import Protocol


class OperatorCheckUnavailable(Exception):
    """The check could not be made now (the regulator's service is down or slow)."""


class OperatorCheck(Protocol):
    """The port. Contract: answers True or False for normalised values (ten-digit national
    ID, E.164 mobile), or raises `OperatorCheckUnavailable`; it may block on the network."""

    async def mobile_belongs_to(self, national_id: str, mobile: str) -> bool: ...


class DevelopmentOperatorCheck:
    """Says yes, except for mobiles ending in 0000: those belong to somebody else.

    The exception gives development and tests a predictable "not theirs" answer.
    """

    async def mobile_belongs_to(self, national_id: str, mobile: str) -> bool:
        return not mobile.endswith("0000")
