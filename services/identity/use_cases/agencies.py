"""Agencies' use cases: client credentials (by operators) and signing keys (by agencies),
and the projection of the catalog's register they depend on.

The operator's scopes (`exchange:admin`, `programme:admin`) are given only to clients of the
platform operator's agencies, and `programme:report` only to the provincial ICT
directorates'; an agency's keys are registered and revoked only by its own systems holding
`identity:agency-keys`.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.identity.domain.agency_keys import accept_public_jwk, thumbprint
from services.identity.domain.tokens import (
    AGENCY_KEYS_SCOPE,
    AGENCY_SCOPES,
    ClientRegistration,
    scopes_beyond_agency,
)
from services.identity.use_cases.ports import SOURCE, Dependencies, IdentityWork, Statements
from shared.auth import Principal
from shared.envelope import Envelope
from shared.errors import Conflict, Forbidden, Invalid, NotFound
from shared.events.catalog import AgencyRecorded
from shared.events.identity import AgencyKeyPublished, AgencyKeyRevoked


async def project_agency(work: IdentityWork, agency: AgencyRecorded) -> None:
    """Keep identity's projection of an agency at the newest revision seen."""
    await work.upsert_agency(agency.model_dump(mode="python"))


@dataclass(frozen=True)
class NewClient:
    client_id: str
    client_secret: str
    agency: str
    scopes: list[str]


async def create_client(
    statements: Statements,
    deps: Dependencies,
    *,
    agency: str,
    name: str,
    scopes: list[str],
    now: datetime,
) -> NewClient:
    """New credentials for one of the agency's systems; the secret is returned only here."""
    unknown = sorted(set(scopes) - AGENCY_SCOPES)
    if unknown or not scopes:
        raise Invalid(
            "invalid_scope",
            f"unknown scopes: {' '.join(unknown)}" if unknown else "name at least one scope",
        )
    beyond = scopes_beyond_agency(frozenset(scopes), agency, deps.settings.operator_agencies)
    if beyond:
        raise Invalid(
            "invalid_scope",
            f"a client of {agency} may not hold {' '.join(sorted(beyond))} (the operator's"
            " scopes are its agencies' alone, programme:report the provincial directorates')",
        )
    client_id = f"{agency}.{secrets.token_hex(8)}"
    secret = secrets.token_urlsafe(32)
    secret_hash = await asyncio.to_thread(deps.hasher.hash, secret)
    async with statements.transaction() as work:
        if not await work.agency_active(agency):
            raise NotFound("unknown_agency", f"no active agency {agency!r}")
        await work.insert_client(
            ClientRegistration(client_id, agency, name, secret_hash, sorted(set(scopes)), now)
        )
    return NewClient(client_id, secret, agency, sorted(set(scopes)))


async def revoke_client(work: IdentityWork, agency: str, client_id: str, now: datetime) -> None:
    if not await work.revoke_client(agency, client_id, now):
        raise NotFound("unknown_client", f"no client {client_id!r} of {agency!r}")


async def clients(statements: Statements, agency: str) -> list[dict[str, Any]]:
    return await statements.clients_of(agency)


@dataclass(frozen=True)
class KeyRequest:
    """An agency's public key as its system submits it."""

    jwk: dict[str, Any]
    kid: str | None = None
    not_before: datetime | None = None
    expires_at: datetime | None = None
    replaces: str | None = None


def key_keeper(principal: Principal) -> str:
    """The agency whose keys this token's system may register and revoke: its own, and
    only with `identity:agency-keys`. Forbidden otherwise."""
    if principal.agency is None:
        raise Forbidden("not_an_agency_token", "this needs an agency system's token")
    if not principal.has(AGENCY_KEYS_SCOPE):
        raise Forbidden("forbidden", f"missing scope: {AGENCY_KEYS_SCOPE}")
    return principal.agency


async def register_key(
    statements: Statements, request: KeyRequest, *, keeper: Principal, now: datetime
) -> AgencyKeyPublished:
    """Register and publish a public key of the keeper's agency; with `replaces`, revoke
    that key too (rotation), in the same transaction."""
    agency = key_keeper(keeper)
    # The thumbprint is computed only once private members are refused.
    accept_public_jwk(request.jwk, "probe")
    chosen_kid = request.kid or f"{agency}-{thumbprint(request.jwk)}"
    algorithm, public = accept_public_jwk(request.jwk, chosen_kid)
    starts = request.not_before or now
    if request.expires_at is not None and request.expires_at <= starts:
        raise Invalid("invalid_key", "the key expires before it becomes valid")
    published = AgencyKeyPublished(
        agency=agency,
        kid=chosen_kid,
        algorithm=algorithm,
        jwk=public,
        not_before=starts,
        expires_at=request.expires_at,
    )
    async with statements.transaction() as work:
        if not await work.insert_agency_key(published, keeper.subject):
            raise Conflict("key_exists", f"the key id {chosen_kid!r} is taken")
        await work.publish([Envelope.wrap(published, source=SOURCE, subject=chosen_kid)])
        if request.replaces is not None:
            await revoke_key(work, agency, request.replaces, "rotated", now)
    return published


async def revoke_own_key(
    work: IdentityWork, keeper: Principal, kid: str, reason: str, now: datetime
) -> None:
    """Revoke a key of the keeper's agency; published as `AgencyKeyRevoked`."""
    await revoke_key(work, key_keeper(keeper), kid, reason, now)


async def revoke_key(work: IdentityWork, agency: str, kid: str, reason: str, now: datetime) -> None:
    revoked = await work.revoke_agency_key(agency, kid, now, reason)
    if revoked is None:
        raise NotFound("unknown_key", f"no key {kid!r} of {agency!r}")
    if revoked:
        event = AgencyKeyRevoked(agency=agency, kid=kid, reason=reason)
        await work.publish([Envelope.wrap(event, source=SOURCE, subject=kid)])


async def keys_of(statements: Statements, agency: str) -> list[dict[str, Any]]:
    return await statements.agency_keys(agency)
