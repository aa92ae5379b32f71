"""Token use cases: sessions with rotating refresh tokens, revocation, client credentials.

A session ends when it has been unused for the refresh tokens' lifetime, when it reaches
its absolute lifetime (no token of it outlives that, however often it was refreshed), or
when it is revoked: revocation is published (`SessionRevoked`), and every service that
verifies tokens refuses the session's access tokens from then on.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2.exceptions import InvalidHashError, VerificationError

from services.identity.domain.tokens import (
    NewSession,
    SessionEnd,
    SessionLifetimes,
    agency_claims,
    citizen_claims,
    granted_scopes,
    hash_secret,
    new_refresh_token,
    scopes_beyond_agency,
    session_revoked,
)
from services.identity.use_cases.ports import (
    SOURCE,
    Dependencies,
    IdentityWork,
    SecretHasher,
    Statements,
)
from shared.auth import InvalidToken
from shared.envelope import Envelope
from shared.errors import DomainError, NotAuthenticated
from shared.events.identity import AuthenticationFailed

# Verified against when the client id is unknown, so that an unknown client takes as long
# to refuse as a wrong secret.
_DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$88P7/BuoYkp2yrEkW2wjAw$"
    "fjvy+IKSj/AQ5+iaBswYfpSHIbuIWZqaNLT2kgByqrk"
)


class InvalidGrant(DomainError, status=400):
    """OAuth's `invalid_grant` and `invalid_scope` (RFC 6749 §5.2) answer 400."""


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


def session_lifetimes(deps: Dependencies) -> SessionLifetimes:
    return SessionLifetimes(
        access=deps.access_lifetime,
        idle=deps.refresh_lifetime,
        absolute=timedelta(hours=deps.settings.session_lifetime_hours),
    )


def _citizen_access(
    deps: Dependencies,
    *,
    citizen: str,
    level_of_assurance: int,
    channel: str,
    family_id: uuid.UUID,
    now: datetime,
    lifetime: timedelta,
) -> str:
    claims = citizen_claims(
        issuer=deps.settings.issuer,
        citizen=citizen,
        level_of_assurance=level_of_assurance,
        channel=channel,
        session=str(family_id),
        now=now,
        lifetime=lifetime,
    )
    return deps.signer.sign(claims, now)


def new_session(
    deps: Dependencies, *, citizen: str, channel: str, level_of_assurance: int, now: datetime
) -> tuple[NewSession, TokenResponse]:
    """A new sign-in session (refresh-token family) and its first tokens; the caller stores
    the session in the transaction that signs the citizen in."""
    family_id = uuid.uuid4()
    refresh = new_refresh_token()
    lifetimes = session_lifetimes(deps)
    session = NewSession(
        family_id=family_id,
        citizen=citizen,
        channel=channel,
        level_of_assurance=level_of_assurance,
        first_token_hash=hash_secret(refresh),
        created_at=now,
        expires_at=lifetimes.refresh_token_expiry(now, now),
    )
    access_lifetime = lifetimes.access_token_lifetime(now, now)
    access = _citizen_access(
        deps,
        citizen=citizen,
        level_of_assurance=level_of_assurance,
        channel=channel,
        family_id=family_id,
        now=now,
        lifetime=access_lifetime,
    )
    response = TokenResponse(
        access_token=access,
        expires_in=int(access_lifetime.total_seconds()),
        refresh_token=refresh,
    )
    return session, response


async def refresh(
    statements: Statements, deps: Dependencies, token: str, now: datetime
) -> TokenResponse:
    """Exchange a refresh token for new tokens; the old one is spent.

    A spent token presented again means it was stolen or replayed: its whole family (the
    session) is revoked, and whoever holds any of its tokens must sign in again. Neither
    the new refresh token nor the access token outlives the session's absolute lifetime.
    """
    refusal: InvalidGrant | None = None
    lifetimes = session_lifetimes(deps)
    await deps.signer.ready(now)
    async with statements.transaction() as work:
        found = await work.lock_refresh_token(hash_secret(token))
        if found is None or found.family_revoked_at is not None or found.expires_at <= now:
            refusal = InvalidGrant("invalid_grant", "the refresh token is not valid")
        elif found.rotated_at is not None:
            await end_session(work, deps, found.family_id, "refresh_token_reused", now)
            refusal = InvalidGrant(
                "invalid_grant", "the refresh token was already used; the session is revoked"
            )
        elif lifetimes.ends_at(found.session_started_at) <= now:
            refusal = InvalidGrant(
                "invalid_grant", "the session reached its absolute lifetime; sign in again"
            )
        else:
            await work.rotate_refresh_token(found.token_hash, now)
            new_refresh = new_refresh_token()
            await work.insert_refresh_token(
                hash_secret(new_refresh),
                found.family_id,
                now,
                lifetimes.refresh_token_expiry(found.session_started_at, now),
            )
            access_lifetime = lifetimes.access_token_lifetime(found.session_started_at, now)
            access = _citizen_access(
                deps,
                citizen=found.citizen,
                level_of_assurance=found.level_of_assurance,
                channel=found.channel,
                family_id=found.family_id,
                now=now,
                lifetime=access_lifetime,
            )
    # Raised once the transaction committed: a reused token's session stays revoked.
    if refusal is not None:
        raise refusal
    return TokenResponse(
        access_token=access,
        expires_in=int(access_lifetime.total_seconds()),
        refresh_token=new_refresh,
    )


_REVOKED_BECAUSE: dict[SessionEnd, str] = {
    "signed_out": "revoked by the holder",
    "refresh_token_reused": "refresh token reused",
}


async def end_session(
    work: IdentityWork, deps: Dependencies, session: uuid.UUID, reason: SessionEnd, now: datetime
) -> bool:
    """Revoke a session and publish it, in the same transaction, so that every service
    refuses its access tokens too; False (and nothing published) if it was revoked
    already or is unknown. Whatever ends a session early goes through here."""
    if not await work.revoke_family(session, now, _REVOKED_BECAUSE[reason]):
        return False
    event = session_revoked(session, reason, now, deps.access_lifetime)
    await work.publish([Envelope.wrap(event, source=SOURCE, subject=str(session))])
    return True


async def revoke(statements: Statements, deps: Dependencies, token: str, now: datetime) -> None:
    """Revoke the session a refresh or access token belongs to (RFC 7009: unknown tokens are
    not an error).

    What revocation ends is the session: no refresh, identity's own endpoints refuse its
    access tokens at once, and every other service within seconds (`SessionRevoked`).
    """
    async with statements.transaction() as work:
        found = await work.lock_refresh_token(hash_secret(token))
        if found is not None:
            await end_session(work, deps, found.family_id, "signed_out", now)
            return
    try:
        principal = await deps.signer.verify(token, now)
    except InvalidToken:
        return
    session = principal.claims.get("sid")
    if isinstance(session, str):
        try:
            family_id = uuid.UUID(session)
        except ValueError:
            return
        async with statements.transaction() as work:
            await end_session(work, deps, family_id, "signed_out", now)


async def session_active(statements: Statements, session: str) -> bool:
    try:
        family_id = uuid.UUID(session)
    except ValueError:
        return False
    return not await statements.family_revoked(family_id)


async def client_credentials(
    statements: Statements,
    deps: Dependencies,
    *,
    client_id: str,
    client_secret: str,
    scope: str | None,
    now: datetime,
) -> TokenResponse:
    """An access token for an agency system that proves its client secret."""
    found = await statements.client(client_id)
    await statements.release()
    stored = found.secret_hash if found else _DUMMY_HASH
    # argon2 is slow on purpose; off the event loop, so other requests go on meanwhile.
    valid = await asyncio.to_thread(_secret_matches, deps.hasher, stored, client_secret)
    if not (valid and found is not None and found.usable):
        async with statements.transaction() as work:
            failed = AuthenticationFailed(
                citizen=None,
                channel="agency_system",
                reason="invalid_client_credentials",
                agency=found.agency if found else None,
            )
            subject = found.agency if found else "unknown-client"
            await work.publish([Envelope.wrap(failed, source=SOURCE, subject=subject)])
        raise NotAuthenticated(
            "invalid_client",
            "unknown client, wrong secret, or a revoked client",
            headers={"www-authenticate": 'Basic realm="panjereh"'},
        )
    if deps.hasher.check_needs_rehash(stored):
        new_hash = await asyncio.to_thread(deps.hasher.hash, client_secret)
        await statements.update_client_secret(client_id, new_hash)
        await statements.release()
    # Clients given an operator's scope before only the operator could hold one keep the
    # rest of their scopes, never that one.
    held = found.scopes - scopes_beyond_agency(
        found.scopes, found.agency, deps.settings.operator_agencies
    )
    scopes = granted_scopes(held, scope)
    if scopes is None:
        raise InvalidGrant("invalid_scope", "the client does not hold every scope requested")
    await deps.signer.ready(now)
    claims = agency_claims(
        issuer=deps.settings.issuer,
        client_id=client_id,
        agency=found.agency,
        scopes=scopes,
        now=now,
        lifetime=deps.access_lifetime,
    )
    return TokenResponse(
        access_token=deps.signer.sign(claims, now),
        expires_in=deps.settings.access_token_seconds,
        scope=" ".join(sorted(scopes)),
    )


def _secret_matches(hasher: SecretHasher, stored: str, secret: str) -> bool:
    try:
        return hasher.verify(stored, secret)
    except (VerificationError, InvalidHashError):
        return False
