"""Verifying identity's access tokens in any service, without calling identity.

Identity publishes its token-signing public keys on `identity.issuer-keys`. Every service
that needs authorisation runs an `IssuerKeys` projection (it reads that compacted topic
from the start and follows it) and verifies bearer tokens locally.

The token contract (identity issues tokens to it, every service relies on it):
- `iss`: identity's issuer; `aud`: "panjereh"; `exp`, `iat`, `nbf`; `jti`.
- Citizens: `sub` is the pseudonymous id, `loa` the level of assurance (1 to 3),
  `acr` = "loa<N>".
- Agency systems: `sub` is the client id, `agency` the agency code, `scope` the
  space-separated scopes granted (e.g. "catalog:write catalog:deliveries").
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import Request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, import_key

from shared.events.identity import IssuerKeyPublished
from shared.http import ProblemError
from shared.kafka_access import KafkaAccess
from shared.logging import get_logger
from shared.registry import UndecodableEvent, decode
from shared.topics import Topic

log = get_logger(__name__)

AUDIENCE = "panjereh"
ALGORITHMS = ("EdDSA", "ES256", "RS256")
CLOCK_SKEW_SECONDS = 30


@dataclass(frozen=True)
class Principal:
    """Who a verified token speaks for."""

    subject: str
    agency: str | None
    scopes: frozenset[str]
    level_of_assurance: int | None
    token_id: str
    claims: dict[str, Any] = field(repr=False)

    def has(self, scope: str) -> bool:
        return scope in self.scopes


class InvalidToken(Exception):
    """The token is missing, malformed, unsigned by a known key, expired or not for us."""


@dataclass
class IssuerKeys:
    """A projection of identity's token-signing keys, built from `identity.issuer-keys`.

    Contract: `run()` reads the topic from its start and then follows it until `stop()`;
    `ready` is set once everything present at start-up has been read, so a service does
    not refuse valid tokens merely because it has not caught up. `verify` never blocks.
    """

    kafka: KafkaAccess | None
    issuer: str
    _keys: dict[str, IssuerKeyPublished] = field(default_factory=dict)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def apply(self, key: IssuerKeyPublished) -> bool:
        """Take in one key record (the latest record per kid wins); False if refused.

        Only keys of the pinned issuer count: a record naming another issuer is ignored,
        whoever managed to publish it.
        """
        if key.issuer != self.issuer:
            log.warning(
                "issuer key of another issuer ignored", kid=key.kid, claimed_issuer=key.issuer
            )
            return False
        self._keys[key.kid] = key
        return True

    def verify(self, token: str, now: float | None = None) -> Principal:
        """The principal a token speaks for, or InvalidToken with the reason."""
        moment = now if now is not None else time.time()
        kid = _unverified_header(token).get("kid")
        record = self._keys.get(kid) if isinstance(kid, str) else None
        if record is None:
            raise InvalidToken("the token is not signed by a key identity published")
        at = datetime.fromtimestamp(moment, UTC)
        if record.retired_at is not None and record.retired_at <= at:
            raise InvalidToken("the token's signing key is retired")
        try:
            decoded = jwt.decode(
                token,
                KeySet([import_key(record.jwk)]),
                algorithms=[record.algorithm],
            )
        except (JoseError, ValueError) as error:
            raise InvalidToken(f"bad signature: {error}") from None
        claims = decoded.claims
        _check_registered_claims(claims, moment, self.issuer)
        scope = claims.get("scope", "")
        loa = claims.get("loa")
        return Principal(
            subject=str(claims.get("sub", "")),
            agency=claims.get("agency") if isinstance(claims.get("agency"), str) else None,
            scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
            level_of_assurance=loa if isinstance(loa, int) else None,
            token_id=str(claims.get("jti", "")),
            claims=claims,
        )

    async def run(self) -> None:
        if self.kafka is None:
            raise RuntimeError("these issuer keys follow no topic: they were given by hand")
        consumer = AIOKafkaConsumer(
            **self.kafka.client_options(),
            isolation_level="read_committed",
            enable_auto_commit=False,
            client_id=f"issuer-keys-{uuid.uuid4().hex[:8]}",
        )
        await consumer.start()
        try:
            tp = TopicPartition(Topic.IDENTITY_ISSUER_KEYS, 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            caught_up_at = (await consumer.end_offsets([tp]))[tp]
            while not self._stopping.is_set():
                batch = await consumer.getmany(tp, timeout_ms=500)
                for record in batch.get(tp, []):
                    self._take(record.value)
                if not self.ready.is_set() and await consumer.position(tp) >= caught_up_at:
                    self.ready.set()
        finally:
            await consumer.stop()

    async def stop(self) -> None:
        self._stopping.set()

    def _take(self, value: bytes | None) -> None:
        try:
            envelope = decode(value, Topic.IDENTITY_ISSUER_KEYS)
        except UndecodableEvent as error:
            # A key we cannot read is a key we do not trust: skip it, say so.
            log.warning("unreadable issuer key record skipped", reason=error.reason)
            return
        if isinstance(envelope.payload, IssuerKeyPublished):
            self.apply(envelope.payload)


def _unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, read only to choose the key; the signature is checked after."""
    try:
        encoded = token.split(".")[0]
        padded = encoded + "=" * (-len(encoded) % 4)
        header = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, IndexError) as error:
        raise InvalidToken(f"malformed token: {error}") from None
    if not isinstance(header, dict):
        raise InvalidToken("malformed token header")
    return header


def _check_registered_claims(claims: dict[str, Any], now: float, issuer: str) -> None:
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if AUDIENCE not in audiences:
        raise InvalidToken("the token is not meant for Panjereh")
    if claims.get("iss") != issuer:
        raise InvalidToken("the token has another issuer")
    expires, not_before = claims.get("exp"), claims.get("nbf", claims.get("iat", 0))
    if not isinstance(expires, int | float) or expires + CLOCK_SKEW_SECONDS < now:
        raise InvalidToken("the token has expired")
    if isinstance(not_before, int | float) and not_before - CLOCK_SKEW_SECONDS > now:
        raise InvalidToken("the token is not valid yet")


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ProblemError(401, "unauthenticated", "a bearer token is required")
    return token.strip()


def require(
    keys: Callable[[Request], IssuerKeys], *scopes: str
) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the request's principal, holding every scope named.

    401 (problem+json) when the token is missing or invalid, 403 when a scope is missing.
    """

    async def dependency(request: Request) -> Principal:
        token = bearer(request)
        try:
            principal = keys(request).verify(token)
        except InvalidToken as error:
            raise ProblemError(401, "unauthenticated", str(error)) from None
        missing = [scope for scope in scopes if not principal.has(scope)]
        if missing:
            raise ProblemError(403, "forbidden", f"missing scope: {' '.join(missing)}")
        return principal

    return dependency
