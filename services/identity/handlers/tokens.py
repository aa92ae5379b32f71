"""Token use cases: sessions with rotating refresh tokens, revocation, client credentials."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from argon2.exceptions import InvalidHashError, VerificationError

from services.identity import storage
from services.identity.domain.tokens import (
    agency_claims,
    citizen_claims,
    granted_scopes,
    hash_secret,
    new_refresh_token,
)
from services.identity.handlers.context import SOURCE, Identity
from shared.auth import InvalidToken
from shared.db import Connection
from shared.envelope import Envelope
from shared.events.identity import AuthenticationFailed
from shared.http import ProblemError
from shared.outbox import enqueue

# Verified against when the client id is unknown, so that an unknown client takes as long
# to refuse as a wrong secret.
_DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$88P7/BuoYkp2yrEkW2wjAw$"
    "fjvy+IKSj/AQ5+iaBswYfpSHIbuIWZqaNLT2kgByqrk"
)


@dataclass(frozen=True)
class TokenResponse:
    """An OAuth 2.0 token response (RFC 6749 §5.1)."""

    access_token: str
    expires_in: int
    refresh_token: str | None = None
    scope: str | None = None
    token_type: str = "Bearer"

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        if self.scope is not None:
            body["scope"] = self.scope
        return body


async def _issue_refresh(
    identity: Identity, connection: Connection, family_id: uuid.UUID, now: datetime
) -> str:
    token = new_refresh_token()
    await storage.insert_refresh_token(
        connection,
        token_hash=hash_secret(token),
        family_id=family_id,
        now=now,
        expires_at=now + identity.refresh_lifetime,
    )
    return token


def _citizen_access(
    identity: Identity,
    *,
    citizen: str,
    level_of_assurance: int,
    channel: str,
    family_id: uuid.UUID,
    now: datetime,
) -> str:
    claims = citizen_claims(
        issuer=identity.settings.issuer,
        citizen=citizen,
        level_of_assurance=level_of_assurance,
        channel=channel,
        session=str(family_id),
        now=now,
        lifetime=identity.access_lifetime,
    )
    return identity.keys.sign(claims, now)


def new_session(
    identity: Identity, *, citizen: str, channel: str, level_of_assurance: int, now: datetime
) -> tuple[storage.NewSession, TokenResponse]:
    """A new sign-in session (refresh-token family) and its first tokens; the caller stores
    the session in the transaction that signs the citizen in."""
    family_id = uuid.uuid4()
    refresh = new_refresh_token()
    session = storage.NewSession(
        family_id=family_id,
        citizen=citizen,
        channel=channel,
        level_of_assurance=level_of_assurance,
        first_token_hash=hash_secret(refresh),
        created_at=now,
        expires_at=now + identity.refresh_lifetime,
    )
    access = _citizen_access(
        identity,
        citizen=citizen,
        level_of_assurance=level_of_assurance,
        channel=channel,
        family_id=family_id,
        now=now,
    )
    response = TokenResponse(
        access_token=access,
        expires_in=identity.settings.access_token_seconds,
        refresh_token=refresh,
    )
    return session, response


async def refresh(identity: Identity, token: str, now: datetime) -> TokenResponse:
    """Exchange a refresh token for new tokens; the old one is spent.

    A spent token presented again means it was stolen or replayed: its whole family (the
    session) is revoked, and whoever holds any of its tokens must sign in again.
    """
    refusal: ProblemError | None = None
    response: TokenResponse | None = None
    await identity.keys.ready(now)
    async with identity.pool.acquire() as connection, connection.transaction():
        found = await storage.lock_refresh_token(connection, hash_secret(token))
        if found is None or found.family_revoked_at is not None or found.expires_at <= now:
            refusal = ProblemError(400, "invalid_grant", "the refresh token is not valid")
        elif found.rotated_at is not None:
            await storage.revoke_family(connection, found.family_id, now, "refresh token reused")
            refusal = ProblemError(
                400, "invalid_grant", "the refresh token was already used; the session is revoked"
            )
        else:
            await storage.rotate_refresh_token(connection, found.token_hash, now)
            new_refresh = await _issue_refresh(identity, connection, found.family_id, now)
            access = _citizen_access(
                identity,
                citizen=found.citizen,
                level_of_assurance=found.level_of_assurance,
                channel=found.channel,
                family_id=found.family_id,
                now=now,
            )
            response = TokenResponse(
                access_token=access,
                expires_in=identity.settings.access_token_seconds,
                refresh_token=new_refresh,
            )
    if refusal is not None:
        raise refusal
    assert response is not None
    return response


async def revoke(identity: Identity, token: str, now: datetime) -> None:
    """Revoke the session a refresh or access token belongs to (RFC 7009: unknown tokens are
    not an error).

    Access tokens are verified by every service on its own and stay valid until they
    expire (minutes); what revocation ends is the session: no refresh, and identity's own
    endpoints refuse the session's access tokens at once.
    """
    async with identity.pool.acquire() as connection, connection.transaction():
        found = await storage.lock_refresh_token(connection, hash_secret(token))
        if found is not None:
            await storage.revoke_family(connection, found.family_id, now, "revoked by the holder")
            return
    try:
        principal = await identity.keys.verify(token, now)
    except InvalidToken:
        return
    session = principal.claims.get("sid")
    if isinstance(session, str):
        try:
            family_id = uuid.UUID(session)
        except ValueError:
            return
        async with identity.pool.acquire() as connection, connection.transaction():
            await storage.revoke_family(connection, family_id, now, "revoked by the holder")


async def session_active(identity: Identity, session: str) -> bool:
    try:
        family_id = uuid.UUID(session)
    except ValueError:
        return False
    async with identity.pool.acquire() as connection:
        return not await storage.family_revoked(connection, family_id)


async def client_credentials(
    identity: Identity,
    *,
    client_id: str,
    client_secret: str,
    scope: str | None,
    now: datetime,
) -> TokenResponse:
    """An access token for an agency system that proves its client secret."""
    async with identity.pool.acquire() as connection:
        found = await storage.client(connection, client_id)
    stored = found["secret_hash"] if found else _DUMMY_HASH
    # argon2 is slow on purpose; off the event loop, so other requests go on meanwhile.
    valid = await asyncio.to_thread(_secret_matches, identity, stored, client_secret)
    usable = found is not None and found["revoked_at"] is None and found["agency_active"]
    if not (valid and usable and found is not None):
        async with identity.pool.acquire() as connection, connection.transaction():
            failed = AuthenticationFailed(
                citizen=None,
                channel="agency_system",
                reason="invalid_client_credentials",
                agency=found["agency"] if found else None,
            )
            subject = found["agency"] if found else "unknown-client"
            await enqueue(connection, Envelope.wrap(failed, source=SOURCE, subject=subject))
        raise ProblemError(
            401,
            "invalid_client",
            "unknown client, wrong secret, or a revoked client",
            headers={"www-authenticate": 'Basic realm="panjereh"'},
        )
    if identity.hasher.check_needs_rehash(stored):
        new_hash = await asyncio.to_thread(identity.hasher.hash, client_secret)
        async with identity.pool.acquire() as connection:
            await storage.update_client_secret(connection, client_id, new_hash)
    scopes = granted_scopes(frozenset(found["scopes"]), scope)
    if scopes is None:
        raise ProblemError(400, "invalid_scope", "the client does not hold every scope requested")
    await identity.keys.ready(now)
    claims = agency_claims(
        issuer=identity.settings.issuer,
        client_id=client_id,
        agency=found["agency"],
        scopes=scopes,
        now=now,
        lifetime=identity.access_lifetime,
    )
    return TokenResponse(
        access_token=identity.keys.sign(claims, now),
        expires_in=identity.settings.access_token_seconds,
        scope=" ".join(sorted(scopes)),
    )


def _secret_matches(identity: Identity, stored: str, secret: str) -> bool:
    try:
        return identity.hasher.verify(stored, secret)
    except (VerificationError, InvalidHashError):
        return False
