"""The issuer's key ring: the keys as this process sees them, to sign and verify with.

Keys live in identity's schema, private halves sealed with the data key. A process keeps
them in memory and reloads them every few seconds, far more often than the time a new
key is published ahead of signing, so every instance knows a key before any signs with
it. Changes to the keys are the use cases of `use_cases/issuer.py`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from joserfc.jwk import ECKey
from joserfc.jws import JWSRegistry
from joserfc.util import json_b64encode, urlsafe_b64encode

from services.identity import storage
from services.identity.domain.tokens import ALGORITHM, SigningKey, published, signing_key
from services.identity.settings import IdentitySettings
from services.identity.use_cases import issuer
from shared.auth import InvalidToken, IssuerKeys, Principal
from shared.db import Pool
from shared.sealing import Sealer
from shared.unit_of_work import transaction

RELOAD_SECONDS = 5.0
ROTATION_CHECK_SECONDS = 60.0


@dataclass(frozen=True)
class CompactSigner:
    """One issuer key's signer of access tokens: the compact JWS (RFC 7515) that
    `joserfc.jwt.encode` makes, byte for byte but the signature (ECDSA draws a fresh nonce
    each time), from joserfc's own pieces. The header and the key are checked once, when
    the signer is made, instead of at every token, and the header is encoded once."""

    header_segment: bytes
    key: ECKey

    @classmethod
    def of(cls, key: SigningKey) -> CompactSigner:
        jwk = ECKey.import_key(key.private_jwk)
        if jwk.curve_name != "P-256" or not jwk.is_private:
            raise ValueError(f"issuer key {key.kid} is not a private P-256 key ({ALGORITHM})")
        # joserfc puts `typ` first; the key order is kept so the header is the same bytes.
        header = {"typ": "at+jwt", "alg": ALGORITHM, "kid": key.kid}
        return cls(json_b64encode(header), jwk)

    def sign(self, claims: dict[str, Any]) -> str:
        payload = json.dumps(claims, ensure_ascii=False, separators=(",", ":"))
        signing_input = self.header_segment + b"." + urlsafe_b64encode(payload.encode())
        # r and s as JWS wants them (RFC 7518, 3.4), by joserfc's ES256.
        signature = _ALGORITHM.sign(signing_input, self.key)
        return (signing_input + b"." + urlsafe_b64encode(signature)).decode("ascii")


_ALGORITHM = JWSRegistry.algorithms[ALGORITHM]


class KeyRing:
    """The issuer's keys (`use_cases.ports.Signer`).

    Contract: `sign` and `verify` use keys at most `RELOAD_SECONDS` old; `ensure_key` and
    `rotate` may be called by any number of instances at once (a lock makes them take
    turns).
    """

    def __init__(self, settings: IdentitySettings, pool: Pool, sealer: Sealer) -> None:
        self._settings = settings
        self._pool = pool
        self._sealer = sealer
        self._keys: list[SigningKey] = []
        self._verifier = IssuerKeys(None, issuer=settings.issuer)
        self._loaded_at = float("-inf")
        self._signers: dict[str, CompactSigner] = {}
        self._reload_lock = asyncio.Lock()

    def _unit_of_work(self, connection: Any) -> storage.IdentityStorage:
        return storage.IdentityStorage(connection, self._sealer)

    async def current(self) -> list[SigningKey]:
        if time.monotonic() - self._loaded_at > RELOAD_SECONDS:
            async with self._reload_lock:
                if time.monotonic() - self._loaded_at > RELOAD_SECONDS:
                    async with self._pool.acquire() as connection:
                        self._take(await storage.issuer_keys(connection, self._sealer))
        return self._keys

    def _take(self, keys: list[SigningKey]) -> None:
        self._keys = keys
        for key in keys:
            self._verifier.apply(published(key, self._settings.issuer))
        self._loaded_at = time.monotonic()

    async def jwks(self, now: datetime) -> dict[str, Any]:
        """The published key set: every key that may still verify a token."""
        keys = await self.current()
        return {"keys": [k.public_jwk for k in keys if k.verifies_at(now)]}

    async def ready(self, now: datetime) -> None:
        """Make sure `sign` can work without I/O: keys fresh, and one of them signing now.

        Call it before opening a transaction that signs: signing inside a transaction must
        not wait for another pooled connection.
        """
        if signing_key(await self.current(), now) is None:
            await self.ensure_key(now)
            await self.current()

    def sign(self, claims: dict[str, Any], now: datetime) -> str:
        """Sign with the key that signs now, from memory (see `ready`)."""
        key = signing_key(self._keys, now)
        if key is None:
            raise RuntimeError("no issuer key can sign now; call ready() first")
        signer = self._signers.get(key.kid)
        if signer is None:
            signer = self._signers[key.kid] = CompactSigner.of(key)
        return signer.sign(claims)

    async def verify(self, token: str, now: datetime) -> Principal:
        """The principal of one of our tokens, checked exactly as other services check it."""
        await self.current()
        try:
            return self._verifier.verify(token, now.timestamp())
        except InvalidToken:
            # A key newer than our copy may have signed it (another instance rotated).
            self._loaded_at = float("-inf")
            await self.current()
            return self._verifier.verify(token, now.timestamp())

    async def ensure_key(self, now: datetime) -> None:
        async with transaction(self._pool, self._unit_of_work) as work:
            await issuer.ensure_key(work, self._settings, now)
        self._loaded_at = float("-inf")

    async def rotate(self, now: datetime, *, force: bool = False) -> str | None:
        """The new key's kid, or None when no rotation was due (unless forced)."""
        async with transaction(self._pool, self._unit_of_work) as work:
            key = await issuer.rotate(work, self._settings, now, force=force)
        if key is None:
            return None
        self._loaded_at = float("-inf")
        return key.kid

    async def keep_rotating(self, clock: Callable[[], datetime]) -> None:
        """Run until cancelled: make sure a key exists, then rotate whenever one is due."""
        await self.ensure_key(clock())
        while True:
            await self.rotate(clock())
            await asyncio.sleep(ROTATION_CHECK_SECONDS)
