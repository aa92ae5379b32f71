"""The operator check: does this mobile number belong to the holder of this national ID?

The real check is the regulator's (mobile operators' subscriber register); identity
depends only on the `OperatorCheck` port. `HttpOperatorCheck` calls it over HTTP;
`DevelopmentOperatorCheck` stands in for it in development and tests, and is refused in
production (`settings.py`).

The HTTP contract (what the regulator's service, or an adapter in front of it, answers):

    POST <PANJEREH_IDENTITY_OPERATOR_CHECK_URL>
    Authorization: Bearer <PANJEREH_IDENTITY_OPERATOR_CHECK_TOKEN>   (if set)
    {"national_id": "0012345679", "mobile": "+989121234567"}

    200 {"owned": true}    the mobile is registered to that national ID's holder
    200 {"owned": false}   it is somebody else's, or nobody's
    408, 429, 5xx          not now: retried with backoff, then "unavailable"
    other 4xx              the request is wrong (a misconfiguration): not retried

Each call has a timeout; after repeated failures a circuit breaker answers "unavailable"
at once for a while, then lets one trial call through.
"""

from __future__ import annotations

from typing import Protocol

from services.identity.adapters.http_client import (
    Partner,
    PartnerRefused,
    PartnerSettings,
    PartnerUnavailable,
)


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


class HttpOperatorCheck:
    """The regulator's check over HTTP (the contract above)."""

    def __init__(self, partner: Partner) -> None:
        self.partner = partner

    @classmethod
    def at(cls, settings: PartnerSettings) -> HttpOperatorCheck:
        return cls(Partner("operator check", settings))

    async def mobile_belongs_to(self, national_id: str, mobile: str) -> bool:
        try:
            answer = await self.partner.post({"national_id": national_id, "mobile": mobile})
        except (PartnerUnavailable, PartnerRefused) as error:
            raise OperatorCheckUnavailable(str(error)) from None
        owned = answer.get("owned") if isinstance(answer, dict) else None
        if not isinstance(owned, bool):
            # An answer we cannot read is no proof of ownership.
            raise OperatorCheckUnavailable("operator check: no `owned` true or false")
        return owned

    async def aclose(self) -> None:
        await self.partner.aclose()
