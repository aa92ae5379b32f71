"""The exchange's public signing keys: everything the exchange sends an agency is signed.

An agency trusts a forwarded request or an outcome only if the exchange's signature over
it checks out with one of these keys. They come from the exchange's public `GET /keys`
(a JWKS), fetched again when a record names a key id not seen yet (the exchange rotated),
at most once per `refresh_every` seconds so a flood of forged key ids cannot make the
agency hammer the exchange.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import BaseModel

from shared.signing import SignatureInvalid, key_id_of, verify_event


class ExchangeKeys:
    """Verifies the exchange's signatures. Contract: `verify` raises SignatureInvalid for
    anything the exchange did not sign; it may block on one HTTP request to the exchange."""

    def __init__(
        self,
        exchange_url: str | None = None,
        *,
        keys: Mapping[str, dict[str, Any]] | None = None,
        refresh_every: float = 30.0,
    ) -> None:
        if exchange_url is None and not keys:
            raise ValueError("the exchange's keys need its URL or the keys themselves")
        self._url = exchange_url.rstrip("/") if exchange_url else None
        self._keys: dict[str, dict[str, Any]] = dict(keys or {})
        self._refresh_every = refresh_every
        self._fetched_at = float("-inf")

    async def refresh(self) -> None:
        """Fetch the exchange's current keys (no-op without its URL)."""
        if self._url is None:
            return
        self._fetched_at = time.monotonic()
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(f"{self._url}/keys")
            response.raise_for_status()
        self._keys.update({key["kid"]: key for key in response.json()["keys"]})

    async def verify(self, event: BaseModel) -> None:
        """Check the event's `signature` is the exchange's over its content."""
        signature = str(getattr(event, "signature", ""))
        kid = key_id_of(signature)
        if kid not in self._keys and time.monotonic() - self._fetched_at > self._refresh_every:
            try:
                await self.refresh()
            except httpx.HTTPError as error:
                raise SignatureInvalid(f"cannot fetch the exchange's keys: {error}") from None
        jwk = self._keys.get(kid)
        if jwk is None:
            raise SignatureInvalid(f"key {kid!r} is not one of the exchange's")
        verify_event(event, jwk, str(jwk.get("alg", "ES256")))
