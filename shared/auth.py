"""Verifying identity's access tokens in any service, without calling identity.

Identity publishes its token-signing public keys on `identity.issuer-keys`, and the
citizens' sessions that ended early on `identity.sessions`. Every service that needs
authorisation runs an `IssuerKeys` projection (it reads the keys from the start, the
revocations of the last hour, and follows both) and verifies bearer tokens locally: a token
of a revoked session is refused within seconds of the revocation.

The token contract (identity issues tokens to it, every service relies on it):
- `iss`: identity's issuer; `aud`: "panjereh"; `exp`, `iat`, `nbf`; `jti`.
- Citizens: `sub` is the pseudonymous id, `loa` the level of assurance (1 to 3),
  `acr` = "loa<N>", `sid` the session.
- An access token lives at most `LONGEST_ACCESS_TOKEN_SECONDS`.
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

from shared.events.identity import IssuerKeyPublished, SessionRevoked
from shared.http import ProblemError
from shared.kafka import dead_letter, new_producer
from shared.kafka_access import KafkaAccess
from shared.logging import get_logger
from shared.registry import UndecodableEvent, decode
from shared.topics import Topic, spec

log = get_logger(__name__)

AUDIENCE = "panjereh"
ALGORITHMS = ("EdDSA", "ES256", "RS256")
CLOCK_SKEW_SECONDS = 30
LONGEST_ACCESS_TOKEN_SECONDS = 3600
"""Identity issues no access token that lives longer: how far back revocations matter."""

FOLLOWED_TOPICS = (Topic.IDENTITY_ISSUER_KEYS, Topic.IDENTITY_SESSIONS)
"""What a service that verifies tokens reads of identity's topics."""

READY_WAIT_SECONDS = 5.0

VERIFIED_TOKENS_KEPT = 10_000
"""Tokens a verifier remembers having verified: one presented again (a citizen's every
request within the token's life) skips the signature check, about 0.3 ms, and is checked
for all that can change (expiry, its key's retirement, its session's revocation)."""


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
    """The token is missing, malformed, unsigned by a known key, expired, of a revoked
    session or not for us."""


@dataclass
class RevokedSessions:
    """The sessions identity revoked whose access tokens may still be unexpired.

    Bounded: a session is forgotten once its last access token has expired (with the
    clock skew verifiers allow), so what is kept is about an hour of revocations.
    """

    _until: dict[str, float] = field(default_factory=dict)
    _next_sweep: float = 0.0

    def apply(self, revoked: SessionRevoked) -> None:
        forget_after = revoked.tokens_expire_by.timestamp() + CLOCK_SKEW_SECONDS
        session = str(revoked.session)
        self._until[session] = max(forget_after, self._until.get(session, 0.0))

    def revoked(self, session: str, now: float) -> bool:
        return self._until.get(session, 0.0) >= now

    def forget_expired(self, now: float) -> None:
        # Once a minute is enough: an expired entry refuses only tokens that have expired.
        if now < self._next_sweep:
            return
        self._next_sweep = now + 60
        for session in [s for s, until in self._until.items() if until < now]:
            del self._until[session]

    def __len__(self) -> int:
        return len(self._until)


@dataclass
class IssuerKeys:
    """A projection of identity's token-signing keys (`identity.issuer-keys`) and of the
    sessions it revoked (`identity.sessions`).

    Contract: `run()` reads the keys from their start and the revocations that may still
    matter (the last `LONGEST_ACCESS_TOKEN_SECONDS` and the skew), then follows both until
    `stop()`; `ready` is set once everything present at start-up has been read, so a
    service neither refuses valid tokens nor accepts a revoked session's merely because it
    has not caught up (`require` waits for it). `verify` never blocks. Given no Kafka
    access, the keys are given by hand (`apply`) and the projection is ready at once.
    """

    kafka: KafkaAccess | None
    issuer: str
    # How this reader names itself on what it dead-letters (the service's group name).
    reader: str = "token-verifier"
    _keys: dict[str, IssuerKeyPublished] = field(default_factory=dict)
    # Kids of other issuers already warned about.
    _ignored: set[str] = field(default_factory=set)
    # Token → what its signature proved, oldest first; emptied whenever a key changes.
    _verified: dict[str, _Verified] = field(default_factory=dict)
    verified_kept: int = VERIFIED_TOKENS_KEPT
    revoked_sessions: RevokedSessions = field(default_factory=RevokedSessions)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        if self.kafka is None:
            self.ready.set()

    def apply(self, key: IssuerKeyPublished) -> bool:
        """Take in one key record (the latest record per kid wins); False if refused.

        Only keys of the pinned issuer count: a record naming another issuer is ignored,
        whoever managed to publish it.
        """
        if key.issuer != self.issuer:
            # Once per kid: every start reads the topic from its beginning again.
            if key.kid not in self._ignored:
                self._ignored.add(key.kid)
                log.warning(
                    "issuer key of another issuer ignored", kid=key.kid, claimed_issuer=key.issuer
                )
            return False
        self._keys[key.kid] = key
        self._verified.clear()
        return True

    def verify(self, token: str, now: float | None = None) -> Principal:
        """The principal a token speaks for, or InvalidToken with the reason.

        A token's signature is checked once while it is remembered (`VERIFIED_TOKENS_KEPT`);
        its key, claims and session are checked on every call.
        """
        moment = now if now is not None else time.time()
        verified = self._verified.get(token)
        if verified is None:
            verified = self._signed(token, moment)
            self._check(verified, moment)
            self._remember(token, verified)
        else:
            self._check(verified, moment)
        return verified.principal

    def _signed(self, token: str, moment: float) -> _Verified:
        """What the token's signature proves, or InvalidToken."""
        kid = _unverified_header(token).get("kid")
        record = self._keys.get(kid) if isinstance(kid, str) else None
        if record is None or not isinstance(kid, str):
            raise InvalidToken("the token is not signed by a key identity published")
        _check_key(record, moment)
        try:
            decoded = jwt.decode(
                token,
                KeySet([import_key(record.jwk)]),
                algorithms=[record.algorithm],
            )
        except (JoseError, ValueError) as error:
            raise InvalidToken(f"bad signature: {error}") from None
        return _Verified(kid, _principal(decoded.claims))

    def _check(self, verified: _Verified, moment: float) -> None:
        """What may have changed since the signature was checked: InvalidToken if it did."""
        _check_key(self._keys[verified.kid], moment)
        claims = verified.principal.claims
        _check_registered_claims(claims, moment, self.issuer)
        session = claims.get("sid")
        if isinstance(session, str) and self.revoked_sessions.revoked(session, moment):
            raise InvalidToken("the token's session was revoked")

    def _remember(self, token: str, verified: _Verified) -> None:
        if len(self._verified) >= self.verified_kept:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = verified

    async def run(self) -> None:
        if self.kafka is None:
            raise RuntimeError("these issuer keys follow no topic: they were given by hand")
        consumer = AIOKafkaConsumer(
            **self.kafka.client_options(),
            isolation_level="read_committed",
            enable_auto_commit=False,
            client_id=f"issuer-keys-{uuid.uuid4().hex[:8]}",
        )
        dead_letters = new_producer(self.kafka, client_id=f"{self.reader}-token-verifier-dlq")
        await dead_letters.start()
        await consumer.start()
        try:
            keys = TopicPartition(Topic.IDENTITY_ISSUER_KEYS, 0)
            sessions = [
                TopicPartition(Topic.IDENTITY_SESSIONS, partition)
                for partition in range(spec(Topic.IDENTITY_SESSIONS).partitions)
            ]
            consumer.assign([keys, *sessions])
            await consumer.seek_to_beginning(keys)
            await _seek_to_revocations_that_may_matter(consumer, sessions)
            caught_up_at = await consumer.end_offsets([keys, *sessions])
            while not self._stopping.is_set():
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        refusal = self._take(record.topic, record.value)
                        if refusal is not None:
                            # Read without a group, so each instance that refuses the
                            # record dead-letters it, each under this reader's name.
                            await dead_letter(dead_letters, record, refusal, self.reader)
                self.revoked_sessions.forget_expired(time.time())
                if not self.ready.is_set() and await _reached(consumer, caught_up_at):
                    self.ready.set()
        finally:
            await consumer.stop()
            await dead_letters.stop()

    async def stop(self) -> None:
        self._stopping.set()

    def apply_revocation(self, revoked: SessionRevoked) -> None:
        """Refuse the session's tokens from now on."""
        self.revoked_sessions.apply(revoked)

    def _take(self, topic: str, value: bytes | None) -> str | None:
        """Apply one record; the reason it was refused, if it was."""
        try:
            envelope = decode(value, topic)
        except UndecodableEvent as error:
            # A key we cannot read is a key we do not trust: skip it, say so.
            log.warning("unreadable identity record skipped", topic=topic, reason=error.reason)
            return error.reason
        if isinstance(envelope.payload, IssuerKeyPublished):
            self.apply(envelope.payload)
        elif isinstance(envelope.payload, SessionRevoked):
            self.apply_revocation(envelope.payload)
        return None


async def _seek_to_revocations_that_may_matter(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
) -> None:
    """Position each partition at the first revocation published within the lifetime of
    the longest-lived access token: anything older refuses only expired tokens."""
    since_ms = int((time.time() - LONGEST_ACCESS_TOKEN_SECONDS - CLOCK_SKEW_SECONDS) * 1000)
    found = await consumer.offsets_for_times({partition: since_ms for partition in partitions})
    for partition in partitions:
        offset = found.get(partition)
        if offset is None:
            await consumer.seek_to_end(partition)
        else:
            consumer.seek(partition, offset.offset)


async def _reached(consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> bool:
    for partition, offset in offsets.items():
        if await consumer.position(partition) < offset:
            return False
    return True


@dataclass(frozen=True)
class _Verified:
    """A token whose signature was checked: the key it was checked with, its principal."""

    kid: str
    principal: Principal


def _principal(claims: dict[str, Any]) -> Principal:
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


def _check_key(record: IssuerKeyPublished, moment: float) -> None:
    if record.retired_at is not None and record.retired_at <= datetime.fromtimestamp(moment, UTC):
        raise InvalidToken("the token's signing key is retired")


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
        projection = keys(request)
        if not projection.ready.is_set():
            # Just after start: verified before catching up, a token could pass whose
            # session was revoked moments ago.
            try:
                await asyncio.wait_for(projection.ready.wait(), READY_WAIT_SECONDS)
            except TimeoutError:
                raise ProblemError(
                    503,
                    "unavailable",
                    "identity's keys and revocations are not read yet",
                    headers={"retry-after": "1"},
                ) from None
        try:
            principal = projection.verify(token)
        except InvalidToken as error:
            raise ProblemError(401, "unauthenticated", str(error)) from None
        missing = [scope for scope in scopes if not principal.has(scope)]
        if missing:
            raise ProblemError(403, "forbidden", f"missing scope: {' '.join(missing)}")
        return principal

    return dependency
