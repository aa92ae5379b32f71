"""The issuer's key ring: the keys as this process sees them, to sign and verify with.

Keys live in identity's schema, private halves sealed with the data key. A process keeps
them in memory and reloads them every few seconds, far more often than the time a new
key is published ahead of signing, so every instance knows a key before any signs with
it. Changes to the keys are the use cases of `use_cases/issuer.py`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from joserfc import jwt
from joserfc.jwk import import_key

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
        self._signers: dict[str, Any] = {}
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
            signer = self._signers[key.kid] = import_key(key.private_jwk)
        header = {"alg": ALGORITHM, "kid": key.kid, "typ": "at+jwt"}
        return jwt.encode(header, claims, signer)

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
