"""The register's use cases: each change stored, kept in history and announced, atomically.

Every function runs in the caller's transaction (`connection.transaction()`): it reads the
current record with a row lock, lets the domain decide, writes the new state and its
revision row, and enqueues to the outbox the record's new state (on the compacted
`catalog.agencies` / `catalog.services`) and the change event (on `catalog.changes`). The
envelope subject, which is also the record key, is the agency code or the service id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from services.catalog import domain, storage
from services.catalog.domain import (
    AgencyEntry,
    ChangeKind,
    RegisterError,
    ServiceContent,
    ServiceEntry,
)
from shared.db import Connection
from shared.envelope import Envelope, Event
from shared.events.catalog import (
    AgencyRecorded,
    AgencyRegistered,
    AgencyUpdated,
    ServiceDrafted,
    ServicePublished,
    ServiceRecorded,
    ServiceRetired,
    ServiceUpdated,
)
from shared.outbox import enqueue

SOURCE = "catalog"

Outcome = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True)
class Written:
    """What a use case left in the register."""

    outcome: Outcome
    revision: int


async def _announce(
    connection: Connection, subject: str, events: list[Event], correlation: uuid.UUID | None
) -> None:
    for payload in events:
        await enqueue(
            connection,
            Envelope.wrap(payload, source=SOURCE, subject=subject, correlation_id=correlation),
        )


async def register_agency(
    connection: Connection, entry: AgencyEntry, *, by: str, correlation: uuid.UUID | None = None
) -> AgencyRecorded:
    """Enter a new agency at revision 1; RegisterError `agency_exists` if it is there."""
    if await storage.get_agency(connection, entry.code, for_update=True) is not None:
        raise RegisterError("agency_exists", f"agency {entry.code!r} is already registered")
    record = entry.recorded(1)
    fields = domain.changed_fields(None, record.model_dump())
    await _store_agency(connection, record, "AgencyRegistered", fields, by, correlation)
    return record


async def update_agency(
    connection: Connection, entry: AgencyEntry, *, by: str, correlation: uuid.UUID | None = None
) -> tuple[AgencyRecorded, bool]:
    """Set an agency's entry; (record, whether anything changed). 404 if it is unknown."""
    current = await storage.get_agency(connection, entry.code, for_update=True)
    if current is None:
        raise RegisterError("not_found", f"agency {entry.code!r} is not registered", status=404)
    revised = domain.revise_agency(current, entry)
    if revised is None:
        return current, False
    record, fields = revised
    await _store_agency(connection, record, "AgencyUpdated", fields, by, correlation)
    return record, True


async def put_agency(connection: Connection, entry: AgencyEntry, *, by: str) -> Written:
    """Register the agency, or bring it to `entry` if it differs (used by reference data)."""
    if await storage.get_agency(connection, entry.code) is None:
        return Written("created", (await register_agency(connection, entry, by=by)).revision)
    record, changed = await update_agency(connection, entry, by=by)
    return Written("updated" if changed else "unchanged", record.revision)


async def _store_agency(
    connection: Connection,
    record: AgencyRecorded,
    change: Literal["AgencyRegistered", "AgencyUpdated"],
    fields: list[str],
    by: str,
    correlation: uuid.UUID | None,
) -> None:
    await storage.write_agency(connection, record, change, fields, by)
    kind = AgencyRegistered if change == "AgencyRegistered" else AgencyUpdated
    event = kind(agency=record.code, revision=record.revision, changed_fields=fields, changed_by=by)
    await _announce(connection, record.code, [record, event], correlation)


async def draft_service(
    connection: Connection,
    entry: ServiceEntry,
    *,
    by: str,
    correlation: uuid.UUID | None = None,
) -> ServiceRecorded:
    """A new service, as a draft (not in the window until published)."""
    if await storage.get_service(connection, entry.service_id, for_update=True) is not None:
        raise RegisterError("service_exists", f"service {entry.service_id!r} already exists")
    agency = await storage.get_agency(connection, domain.owner_of(entry.service_id))
    record = domain.new_service(entry, agency)
    fields = domain.changed_fields(None, record.model_dump())
    await _store_service(connection, record, "ServiceDrafted", fields, by, correlation)
    return record


async def update_service(
    connection: Connection,
    service_id: str,
    content: ServiceContent,
    *,
    by: str,
    correlation: uuid.UUID | None = None,
) -> ServiceRecorded:
    """New content for a draft or published service (a no-op if nothing differs)."""
    current = await _current_service(connection, service_id)
    revised = domain.revise_service(current, content)
    if revised is None:
        return current
    record, fields = revised
    await _store_service(connection, record, "ServiceUpdated", fields, by, correlation)
    return record


async def set_service_status(
    connection: Connection,
    service_id: str,
    status: Literal["published", "retired"],
    *,
    by: str,
    correlation: uuid.UUID | None = None,
) -> ServiceRecorded:
    """Publish or retire a service (a no-op if it already has that status)."""
    current = await _current_service(connection, service_id)
    moved = domain.move_service(current, status)
    if moved is None:
        return current
    record, kind = moved
    await _store_service(connection, record, kind, ["status"], by, correlation)
    return record


async def _current_service(connection: Connection, service_id: str) -> ServiceRecorded:
    current = await storage.get_service(connection, service_id, for_update=True)
    if current is None:
        raise RegisterError("not_found", f"service {service_id!r} does not exist", status=404)
    return current


_SERVICE_CHANGES: dict[
    str, type[ServiceDrafted | ServicePublished | ServiceUpdated | ServiceRetired]
]
_SERVICE_CHANGES = {
    "ServiceDrafted": ServiceDrafted,
    "ServicePublished": ServicePublished,
    "ServiceUpdated": ServiceUpdated,
    "ServiceRetired": ServiceRetired,
}


async def _store_service(
    connection: Connection,
    record: ServiceRecorded,
    change: ChangeKind,
    fields: list[str],
    by: str,
    correlation: uuid.UUID | None,
) -> None:
    await storage.write_service(connection, record, change, fields, by)
    event = _SERVICE_CHANGES[change](
        service_id=record.service_id,
        agency=record.agency,
        revision=record.revision,
        changed_fields=fields,
        changed_by=by,
    )
    await _announce(connection, record.service_id, [record, event], correlation)
