"""The registers' use cases: data services, access rights, the agencies and keys projected
from other services, and the exchange's own public keys."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from services.exchange.domain.registers import (
    AccessRight,
    AccessTerms,
    DataService,
    DataServiceTerms,
)
from services.exchange.use_cases.ports import SOURCE, ExchangeWork
from shared.envelope import Envelope
from shared.errors import Conflict, Forbidden, Invalid, NotFound
from shared.events.catalog import AgencyRecorded
from shared.events.exchange import AccessGranted, AccessRevoked, DataServiceRegistered
from shared.events.identity import AgencyKeyPublished, AgencyKeyRevoked


async def register_data_service(
    work: ExchangeWork, agency: str | None, terms: DataServiceTerms
) -> DataServiceRegistered:
    """Register (or update) one of the caller's agency's data services, and announce it."""
    if agency is None or not terms.offered_by(agency):
        raise Forbidden("exchange_not_your_data_service", f"{terms.data_service} is not {agency}'s")
    problem = terms.schema_problem()
    if problem is not None:
        raise Invalid("exchange_invalid_schema", problem)
    if await work.agency(agency) is None:
        raise Invalid("exchange_unknown_agency", agency)
    registered = DataServiceRegistered(provider=agency, **terms.model_dump())
    await work.save_data_service(registered)
    await work.publish([Envelope.wrap(registered, source=SOURCE, subject=registered.data_service)])
    return registered


async def data_services(work: ExchangeWork, provider: str | None = None) -> list[DataService]:
    """The data services offered on the exchange (optionally one provider's)."""
    return await work.data_services(provider)


async def grant_access(work: ExchangeWork, terms: AccessTerms, granted_by: str) -> AccessGranted:
    """Grant a consumer agency a right to a data service, for purposes, in a period;
    `granted_by` (the grantor's token subject) is kept with it and announced."""
    if not terms.period_is_valid():
        raise Invalid("exchange_invalid_period")
    service = await work.data_service(terms.data_service)
    if service is None:
        raise NotFound("exchange_unknown_data_service", terms.data_service)
    unserved = service.unserved(terms.purposes)
    if unserved:
        raise Invalid("exchange_purpose_not_served", ", ".join(unserved))
    if await work.agency(terms.consumer) is None:
        raise Invalid("exchange_unknown_agency", terms.consumer)
    granted = AccessGranted(right_id=uuid.uuid4(), granted_by=granted_by, **terms.model_dump())
    await work.save_right(granted)
    await work.publish([Envelope.wrap(granted, source=SOURCE, subject=str(granted.right_id))])
    return granted


async def revoke_access(
    work: ExchangeWork,
    right_id: uuid.UUID,
    reason: str,
    revoked_by: str,
    *,
    now: datetime | None = None,
) -> AccessRevoked:
    """End a right before its term; requests after this are denied. `revoked_by` (the
    token subject) is kept with it and announced."""
    if await work.access_right(right_id) is None:
        raise NotFound("exchange_unknown_right", str(right_id))
    revoked = AccessRevoked(right_id=right_id, reason=reason, revoked_by=revoked_by)
    if not await work.revoke_right(revoked, now or datetime.now(UTC)):
        raise Conflict("exchange_right_already_revoked", str(right_id))
    await work.publish([Envelope.wrap(revoked, source=SOURCE, subject=str(right_id))])
    return revoked


async def access_right(work: ExchangeWork, right_id: uuid.UUID) -> AccessRight:
    """A right as the register holds it: its terms, who granted it, whether (and by
    whom) it was revoked."""
    right = await work.access_right(right_id)
    if right is None:
        raise NotFound("exchange_unknown_right", str(right_id))
    return right


async def signing_key(work: ExchangeWork) -> str:
    """The kid the exchange signs with, its first key made if it has none.

    The exchange calls this at start, in a transaction of its own. A first key made
    inside a poll's transaction would sign what other polls commit meanwhile; if that
    poll then failed, or the process died before it committed, those records would carry
    a key that `/keys` never lists, and no agency could ever check them.
    """
    return (await work.signer()).kid


async def public_keys(work: ExchangeWork) -> list[tuple[str, dict[str, Any]]]:
    """The exchange's public signing keys (kid, JWK), its first key made if it has none."""
    await work.signer()
    return await work.public_keys()


async def record_agency(work: ExchangeWork, agency: AgencyRecorded) -> None:
    """Keep an agency as the catalog last recorded it."""
    await work.record_agency(agency)


async def record_agency_key(work: ExchangeWork, key: AgencyKeyPublished) -> None:
    """Keep a key an agency signs with. Raises Conflict if the kid is already another
    agency's or another key's: a record cannot move it."""
    if not await work.record_agency_key(key):
        raise Conflict(
            "kid_taken",
            f"key {key.kid} is already another agency's or another key; "
            f"a record for {key.agency} cannot move it",
        )


async def revoke_agency_key(work: ExchangeWork, revoked: AgencyKeyRevoked, at: datetime) -> None:
    """Revoke a key as of `at`. Raises Conflict if the kid is another agency's."""
    if not await work.revoke_agency_key(revoked, at):
        raise Conflict("kid_taken", f"key {revoked.kid} is not {revoked.agency}'s to revoke")
