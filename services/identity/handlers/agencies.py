"""Agencies' use cases: client credentials (by operators) and signing keys (by agencies)."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.identity import storage
from services.identity.domain.agency_keys import accept_public_jwk, thumbprint
from services.identity.domain.tokens import AGENCY_SCOPES
from services.identity.handlers.context import SOURCE, Identity
from shared.envelope import Envelope
from shared.events.identity import AgencyKeyPublished, AgencyKeyRevoked
from shared.http import ProblemError
from shared.outbox import enqueue


@dataclass(frozen=True)
class NewClient:
    client_id: str
    client_secret: str
    agency: str
    scopes: list[str]


async def create_client(
    identity: Identity, *, agency: str, name: str, scopes: list[str], now: datetime
) -> NewClient:
    """New credentials for one of the agency's systems; the secret is returned only here."""
    unknown = sorted(set(scopes) - AGENCY_SCOPES)
    if unknown or not scopes:
        raise ProblemError(
            422,
            "invalid_scope",
            f"unknown scopes: {' '.join(unknown)}" if unknown else "name at least one scope",
        )
    client_id = f"{agency}.{secrets.token_hex(8)}"
    secret = secrets.token_urlsafe(32)
    secret_hash = await asyncio.to_thread(identity.hasher.hash, secret)
    async with identity.pool.acquire() as connection, connection.transaction():
        found = await storage.agency(connection, agency)
        if found is None or not found["active"]:
            raise ProblemError(404, "unknown_agency", f"no active agency {agency!r}")
        await storage.insert_client(
            connection,
            client_id=client_id,
            agency_code=agency,
            name=name,
            secret_hash=secret_hash,
            scopes=sorted(set(scopes)),
            now=now,
        )
    return NewClient(client_id, secret, agency, sorted(set(scopes)))


async def revoke_client(identity: Identity, agency: str, client_id: str, now: datetime) -> None:
    async with identity.pool.acquire() as connection, connection.transaction():
        if not await storage.revoke_client(connection, agency, client_id, now):
            raise ProblemError(404, "unknown_client", f"no client {client_id!r} of {agency!r}")


async def clients(identity: Identity, agency: str) -> list[dict[str, Any]]:
    async with identity.pool.acquire() as connection:
        return await storage.clients_of(connection, agency)


async def register_key(
    identity: Identity,
    *,
    agency: str,
    registered_by: str,
    jwk: dict[str, Any],
    kid: str | None,
    not_before: datetime | None,
    expires_at: datetime | None,
    replaces: str | None,
    now: datetime,
) -> AgencyKeyPublished:
    """Register and publish an agency's public key; with `replaces`, revoke that key too
    (rotation), in the same transaction."""
    chosen_kid = kid or f"{agency}-{thumbprint(_public_only(jwk))}"
    algorithm, public = accept_public_jwk(jwk, chosen_kid)
    starts = not_before or now
    if expires_at is not None and expires_at <= starts:
        raise ProblemError(422, "invalid_key", "the key expires before it becomes valid")
    published = AgencyKeyPublished(
        agency=agency,
        kid=chosen_kid,
        algorithm=algorithm,
        jwk=public,
        not_before=starts,
        expires_at=expires_at,
    )
    async with identity.pool.acquire() as connection, connection.transaction():
        if not await storage.insert_agency_key(
            connection,
            kid=chosen_kid,
            agency_code=agency,
            algorithm=algorithm,
            jwk=public,
            not_before=starts,
            expires_at=expires_at,
            registered_by=registered_by,
        ):
            raise ProblemError(409, "key_exists", f"the key id {chosen_kid!r} is taken")
        await enqueue(connection, Envelope.wrap(published, source=SOURCE, subject=chosen_kid))
        if replaces is not None:
            await _revoke(connection, agency, replaces, now, "rotated")
    return published


async def revoke_key(identity: Identity, agency: str, kid: str, reason: str, now: datetime) -> None:
    async with identity.pool.acquire() as connection, connection.transaction():
        await _revoke(connection, agency, kid, now, reason)


async def _revoke(connection: Any, agency: str, kid: str, now: datetime, reason: str) -> None:
    revoked = await storage.revoke_agency_key(connection, agency, kid, now, reason)
    if revoked is None:
        raise ProblemError(404, "unknown_key", f"no key {kid!r} of {agency!r}")
    if revoked:
        event = AgencyKeyRevoked(agency=agency, kid=kid, reason=reason)
        await enqueue(connection, Envelope.wrap(event, source=SOURCE, subject=kid))


async def keys_of(identity: Identity, agency: str) -> list[dict[str, Any]]:
    async with identity.pool.acquire() as connection:
        return await storage.agency_keys(connection, agency)


def _public_only(jwk: dict[str, Any]) -> dict[str, Any]:
    # The thumbprint is computed only after private members are refused, below.
    accept_public_jwk(jwk, "probe")
    return jwk
