"""The issuer's signing keys: creating, rotating, publishing, signing and verifying with them.

Keys live in identity's schema, private halves sealed with the data key; every change to
a key is published as `IssuerKeyPublished` through the outbox in the same transaction. A
process keeps the keys in memory and reloads them every few seconds, far more often than
the time a new key is published ahead of signing, so every instance knows a key before any
signs with it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from datetime import datetime, timedelta
from typing import Any, Literal

from joserfc import jwt
from joserfc.jwk import ECKey, import_key

from services.identity import storage
from services.identity.domain.tokens import (
    SigningKey,
    plan_rotation,
    rotation_due,
    signing_key,
)
from services.identity.settings import IdentitySettings
from shared.auth import InvalidToken, IssuerKeys, Principal
from shared.db import Connection, Pool
from shared.envelope import Envelope
from shared.events.identity import IssuerKeyPublished
from shared.logging import get_logger
from shared.outbox import enqueue
from shared.sealing import Sealer

log = get_logger(__name__)

ALGORITHM: Literal["ES256"] = "ES256"
RELOAD_SECONDS = 5.0
ROTATION_CHECK_SECONDS = 60.0
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('identity-issuer-keys'))"


def new_signing_key(now: datetime, not_before: datetime) -> SigningKey:
    kid = f"identity-{now:%Y%m%d%H%M%S}-{secrets.token_hex(3)}"
    key = ECKey.generate_key(
        "P-256", parameters={"kid": kid, "use": "sig", "alg": ALGORITHM}, private=True
    )
    return SigningKey(
        kid=kid,
        private_jwk=dict(key.as_dict(private=True)),
        public_jwk=dict(key.as_dict(private=False)),
        not_before=not_before,
        retired_at=None,
    )


def published(key: SigningKey, issuer: str) -> IssuerKeyPublished:
    return IssuerKeyPublished(
        issuer=issuer,
        kid=key.kid,
        algorithm=ALGORITHM,
        jwk=key.public_jwk,
        not_before=key.not_before,
        retired_at=key.retired_at,
    )


class KeyRing:
    """The issuer's keys as this process sees them.

    Contract: `sign` and `verify` use keys at most `RELOAD_SECONDS` old; `ensure_key` and
    `rotate` may be called by any number of instances at once (an advisory lock makes one
    of them do the work).
    """

    def __init__(self, settings: IdentitySettings, pool: Pool) -> None:
        self._settings = settings
        self._pool = pool
        self._sealer = Sealer(settings.data_key_bytes)
        self._keys: list[SigningKey] = []
        self._verifier = IssuerKeys(None, issuer=settings.issuer)
        self._loaded_at = float("-inf")
        self._signers: dict[str, Any] = {}
        self._reload_lock = asyncio.Lock()

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
        """Create and publish the first key if there is none; seal keys stored in the clear;
        publish every key again under the issuer of these settings."""
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(_LOCK)
            if sealed := await storage.seal_plain_issuer_keys(connection, self._sealer):
                log.info("issuer keys sealed", count=sealed)
            keys = await storage.issuer_keys(connection, self._sealer)
            if not keys:
                await self._add_key(connection, new_signing_key(now, now))
                log.info("first issuer key created")
            # Services trust keys of the issuer pinned in their settings alone: republish
            # every key under this issuer, so a renamed issuer's tokens stay verifiable.
            for key in keys:
                await enqueue(connection, self._envelope(key))
        self._loaded_at = float("-inf")

    async def rotate(self, now: datetime, *, force: bool = False) -> str | None:
        """Publish a successor key that signs after `key_publish_ahead_seconds`.

        Every key in use is retired for when its last token will have expired. Returns the
        new kid, or None when no rotation was due (unless forced).
        """
        lifetime = timedelta(days=self._settings.signing_key_days)
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(_LOCK)
            keys = await storage.issuer_keys(connection, self._sealer)
            if not force and not rotation_due(keys, now, lifetime):
                return None
            if not keys:
                key = new_signing_key(now, now)
            else:
                plan = plan_rotation(
                    now,
                    timedelta(seconds=self._settings.key_publish_ahead_seconds),
                    timedelta(seconds=self._settings.access_token_seconds),
                )
                key = new_signing_key(now, plan.new_not_before)
                for old in keys:
                    if old.retired_at is None:
                        await storage.retire_issuer_key(connection, old.kid, plan.old_retired_at)
                        retired = SigningKey(
                            old.kid,
                            old.private_jwk,
                            old.public_jwk,
                            old.not_before,
                            plan.old_retired_at,
                        )
                        await enqueue(connection, self._envelope(retired))
            await self._add_key(connection, key)
        self._loaded_at = float("-inf")
        log.info("issuer key rotated", kid=key.kid, signs_from=key.not_before.isoformat())
        return key.kid

    async def _add_key(self, connection: Connection, key: SigningKey) -> None:
        await storage.insert_issuer_key(connection, key, self._sealer)
        await enqueue(connection, self._envelope(key))

    def _envelope(self, key: SigningKey) -> Envelope[IssuerKeyPublished]:
        return Envelope.wrap(
            published(key, self._settings.issuer), source="identity", subject=key.kid
        )

    async def keep_rotating(self, clock: Any) -> None:
        """Run until cancelled: make sure a key exists, then rotate whenever one is due."""
        await self.ensure_key(clock())
        while True:
            await self.rotate(clock())
            await asyncio.sleep(ROTATION_CHECK_SECONDS)
