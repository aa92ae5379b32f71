"""The catalog's use cases: what the window, the agencies, the operators and the consumer
of delivery reports ask of the register.

Each use case takes a unit of work (`CatalogWork`, or `CatalogReading` for the window's
reads), lets the domain decide, and returns a result or raises a `shared.errors` kind. A
change of the register writes the record's new state and its revision row and publishes,
in the same transaction, the record's new state (on the compacted `catalog.agencies` /
`catalog.services`) and the change event (on `catalog.changes`); the envelope subject,
which is also the record key, is the agency code or the service id.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from opentelemetry.context import Context

from services.catalog import domain
from services.catalog.domain import (
    AgencyEntry,
    ChangeKind,
    DeliveryClaim,
    DeliveryProblem,
    Editor,
    ListedService,
    Revision,
    SearchPage,
    SearchQuery,
    ServiceContent,
    ServiceEntry,
    ServiceView,
)
from shared.envelope import Envelope, Event
from shared.errors import Conflict, Invalid, NotFound
from shared.events.catalog import (
    AgencyRecorded,
    AgencyRegistered,
    AgencyUpdated,
    DeliveryRecorded,
    DeliveryReported,
    ServiceDrafted,
    ServicePublished,
    ServiceRecorded,
    ServiceRetired,
    ServiceUpdated,
    delivery_event_id,
)
from shared.unit_of_work import Publisher

SOURCE = "catalog"


class CatalogReading(Protocol):
    """What the window's reads need of the register (no transaction required)."""

    async def get_agency(self, code: str, *, for_update: bool = False) -> AgencyRecorded | None:
        """The agency, or None; `for_update` locks its row to the end of the transaction."""

    async def get_service(
        self, service_id: str, *, for_update: bool = False
    ) -> ServiceRecorded | None:
        """The service, or None; `for_update` locks its row to the end of the transaction."""

    async def list_agencies(self, province: str | None = None) -> list[AgencyRecorded]:
        """Every agency by code; with a province, the national ones and that province's."""

    async def search(self, query: SearchQuery) -> SearchPage:
        """One page of the published services matching the query, most relevant first."""

    async def service_history(self, service_id: str) -> list[Revision]:
        """Every revision of a service, oldest first (none for an unknown service)."""

    async def agency_history(self, code: str) -> list[Revision]:
        """Every revision of an agency, oldest first (none for an unknown agency)."""

    async def service_view(self, service_id: str) -> ServiceView | None:
        """What a delivery of the service is checked against; None if it is unknown."""

    async def service_views(self, service_ids: Sequence[str]) -> dict[str, ServiceView]:
        """`service_view` of many services at once, by id (unknown ones absent)."""


class CatalogWork(CatalogReading, Publisher, Protocol):
    """The unit of work the register changes through, in one transaction."""

    async def write_agency(
        self, record: AgencyRecorded, change: str, fields: Sequence[str], by: str
    ) -> None:
        """Store the agency's new state and the revision row of this change."""

    async def write_service(
        self, record: ServiceRecorded, change: str, fields: Sequence[str], by: str
    ) -> None:
        """Store the service's new state (with its search texts) and this change's revision."""

    async def insert_deliveries(self, deliveries: Sequence[DeliveryRecorded]) -> set[uuid.UUID]:
        """Keep deliveries, each report id once ever; the report ids that were new."""


# -- the register ---------------------------------------------------------------------


Outcome = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True)
class Written:
    """What a use case left in the register."""

    outcome: Outcome
    revision: int


async def register_agency(work: CatalogWork, entry: AgencyEntry, editor: Editor) -> AgencyRecorded:
    """Enter a new agency at revision 1 (operators only); Conflict `agency_exists` if it is
    there."""
    editor.check_operator()
    if await work.get_agency(entry.code, for_update=True) is not None:
        raise Conflict("agency_exists", f"agency {entry.code!r} is already registered")
    record = entry.recorded(1)
    fields = domain.changed_fields(None, record.model_dump())
    await _store_agency(work, record, "AgencyRegistered", fields, editor.name)
    return record


async def update_agency(
    work: CatalogWork, code: str, entry: AgencyEntry, editor: Editor
) -> tuple[AgencyRecorded, bool]:
    """Set the entry of agency `code` (operators only); (record, whether anything changed).

    Invalid `invalid_change` if the entry names another agency, NotFound if it is unknown.
    """
    editor.check_operator()
    if entry.code != code:
        raise Invalid("invalid_change", "the body's code differs from the address")
    current = await work.get_agency(entry.code, for_update=True)
    if current is None:
        raise NotFound("not_found", f"agency {entry.code!r} is not registered")
    revised = domain.revise_agency(current, entry)
    if revised is None:
        return current, False
    record, fields = revised
    await _store_agency(work, record, "AgencyUpdated", fields, editor.name)
    return record, True


async def put_agency(work: CatalogWork, entry: AgencyEntry, editor: Editor) -> Written:
    """Register the agency, or bring it to `entry` if it differs (operators only)."""
    if await work.get_agency(entry.code) is None:
        return Written("created", (await register_agency(work, entry, editor)).revision)
    record, changed = await update_agency(work, entry.code, entry, editor)
    return Written("updated" if changed else "unchanged", record.revision)


async def _store_agency(
    work: CatalogWork,
    record: AgencyRecorded,
    change: Literal["AgencyRegistered", "AgencyUpdated"],
    fields: list[str],
    by: str,
) -> None:
    await work.write_agency(record, change, fields, by)
    kind = AgencyRegistered if change == "AgencyRegistered" else AgencyUpdated
    event = kind(agency=record.code, revision=record.revision, changed_fields=fields, changed_by=by)
    await _announce(work, record.code, [record, event])


async def draft_service(work: CatalogWork, entry: ServiceEntry, editor: Editor) -> ServiceRecorded:
    """A new service of the editor's agency, as a draft (not in the window until published)."""
    editor.check_may_change(entry.service_id)
    if await work.get_service(entry.service_id, for_update=True) is not None:
        raise Conflict("service_exists", f"service {entry.service_id!r} already exists")
    agency = await work.get_agency(domain.owner_of(entry.service_id))
    record = domain.new_service(entry, agency)
    fields = domain.changed_fields(None, record.model_dump())
    await _store_service(work, record, "ServiceDrafted", fields, editor.name)
    return record


async def update_service(
    work: CatalogWork, service_id: str, content: ServiceContent, editor: Editor
) -> ServiceRecorded:
    """New content for a draft or published service (a no-op if nothing differs)."""
    editor.check_may_change(service_id)
    current = await _current_service(work, service_id)
    revised = domain.revise_service(current, content)
    if revised is None:
        return current
    record, fields = revised
    await _store_service(work, record, "ServiceUpdated", fields, editor.name)
    return record


async def publish_service(work: CatalogWork, service_id: str, editor: Editor) -> ServiceRecorded:
    """Put a draft in the window (a no-op if it is published already)."""
    return await _move_service(work, service_id, "published", editor)


async def retire_service(work: CatalogWork, service_id: str, editor: Editor) -> ServiceRecorded:
    """Take a service out of the window for good; its deliveries are refused from then on."""
    return await _move_service(work, service_id, "retired", editor)


async def add_service_if_missing(
    work: CatalogWork, listed: ListedService, editor: Editor
) -> Outcome:
    """Draft a listed service, and give it its listed status, unless the register has it:
    then it stays as its agency keeps it."""
    if await work.get_service(listed.service_id) is not None:
        return "unchanged"
    entry = ServiceEntry.model_validate(listed.model_dump(exclude={"status"}))
    await draft_service(work, entry, editor)
    if listed.status != "draft":
        await _move_service(work, listed.service_id, listed.status, editor)
    return "created"


async def _move_service(
    work: CatalogWork,
    service_id: str,
    status: Literal["published", "retired"],
    editor: Editor,
) -> ServiceRecorded:
    editor.check_may_change(service_id)
    current = await _current_service(work, service_id)
    moved = domain.move_service(current, status)
    if moved is None:
        return current
    record, kind = moved
    await _store_service(work, record, kind, ["status"], editor.name)
    return record


async def _current_service(work: CatalogWork, service_id: str) -> ServiceRecorded:
    current = await work.get_service(service_id, for_update=True)
    if current is None:
        raise NotFound("not_found", f"service {service_id!r} does not exist")
    return current


_SERVICE_CHANGES: dict[
    str, type[ServiceDrafted | ServicePublished | ServiceUpdated | ServiceRetired]
] = {
    "ServiceDrafted": ServiceDrafted,
    "ServicePublished": ServicePublished,
    "ServiceUpdated": ServiceUpdated,
    "ServiceRetired": ServiceRetired,
}


async def _store_service(
    work: CatalogWork, record: ServiceRecorded, change: ChangeKind, fields: list[str], by: str
) -> None:
    await work.write_service(record, change, fields, by)
    event = _SERVICE_CHANGES[change](
        service_id=record.service_id,
        agency=record.agency,
        revision=record.revision,
        changed_fields=fields,
        changed_by=by,
    )
    await _announce(work, record.service_id, [record, event])


async def _announce(work: CatalogWork, subject: str, events: list[Event]) -> None:
    await work.publish(
        [Envelope.wrap(payload, source=SOURCE, subject=subject) for payload in events]
    )


@dataclass
class LoadReport:
    """What a load of a list of the register changed, per kind of record."""

    agencies: dict[str, int] = field(default_factory=dict)
    services: dict[str, int] = field(default_factory=dict)

    def count(self, kind: Literal["agencies", "services"], outcome: str) -> None:
        tally = self.agencies if kind == "agencies" else self.services
        tally[outcome] = tally.get(outcome, 0) + 1

    def lines(self) -> list[str]:
        return [
            f"{kind}: " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(tally.items()))
            for kind, tally in (("agencies", self.agencies), ("services", self.services))
        ]


async def load_register(
    work: CatalogWork,
    agencies: Sequence[AgencyEntry],
    services: Sequence[ListedService],
    editor: Editor,
) -> LoadReport:
    """Bring the register up to a list: agencies are created or brought to it (the
    operator owns them); services are created when missing and otherwise left to their
    agency. Safe to repeat."""
    report = LoadReport()
    for agency in agencies:
        report.count("agencies", (await put_agency(work, agency, editor)).outcome)
    for service in services:
        report.count("services", await add_service_if_missing(work, service, editor))
    return report


# -- the window's reads ---------------------------------------------------------------


async def search_services(reads: CatalogReading, query: SearchQuery) -> SearchPage:
    """One page of the published services matching the query, most relevant first."""
    return await reads.search(query)


@dataclass(frozen=True)
class ServicePage:
    service: ServiceRecorded
    agency: AgencyRecorded


async def read_service(reads: CatalogReading, service_id: str) -> ServicePage:
    """A service in the window, with its agency; NotFound for a draft or an unknown one."""
    service = await _service_in_window(reads, service_id)
    agency = await reads.get_agency(service.agency)
    if agency is None:
        raise RuntimeError(f"service {service_id!r} has no agency in the register")
    return ServicePage(service, agency)


async def read_service_history(reads: CatalogReading, service_id: str) -> list[Revision]:
    """Every revision of a service in the window; NotFound for a draft or an unknown one."""
    await _service_in_window(reads, service_id)
    return await reads.service_history(service_id)


async def _service_in_window(reads: CatalogReading, service_id: str) -> ServiceRecorded:
    service = await reads.get_service(service_id)
    if service is None or not domain.in_window(service):
        raise NotFound("not_found", f"service {service_id!r} is not in the window")
    return service


async def list_agencies(reads: CatalogReading, province: str | None) -> list[AgencyRecorded]:
    """The register of agencies; with a province, the national ones and that province's."""
    return await reads.list_agencies(province)


@dataclass(frozen=True)
class AgencyPage:
    agency: AgencyRecorded
    services: SearchPage


async def read_agency(reads: CatalogReading, code: str) -> AgencyPage:
    """An agency with its published services (up to 1000); NotFound if it is unknown."""
    agency = await reads.get_agency(code)
    if agency is None:
        raise NotFound("not_found", f"agency {code!r} is not registered")
    return AgencyPage(agency, await reads.search(SearchQuery(agency=code, limit=1000)))


async def read_agency_history(reads: CatalogReading, code: str) -> list[Revision]:
    """Every revision of an agency; NotFound if it has none."""
    revisions = await reads.agency_history(code)
    if not revisions:
        raise NotFound("not_found", f"agency {code!r} is not registered")
    return revisions


# -- deliveries -----------------------------------------------------------------------


async def report_delivery(
    work: CatalogWork, claim: DeliveryClaim, reporter: str | None, now: datetime | None = None
) -> DeliveryReported:
    """Check a delivery an agency reports directly and queue it for recording.

    Forbidden `not_your_service` for another agency's delivery; Invalid with the problem's
    code for any other refusal (the consumer's checks, made now).
    """
    admitted = await _admit(work, claim, reporter, now or datetime.now(UTC))
    if isinstance(admitted, DeliveryProblem):
        raise admitted.error()
    await work.publish([_queued(admitted)])
    return admitted


@dataclass(frozen=True)
class ClaimRefused:
    """A report of a batch that was not queued, and why."""

    index: int
    report_id: uuid.UUID
    problem: DeliveryProblem

    def document(self) -> dict[str, Any]:
        """As the answer lists it."""
        return {
            "index": self.index,
            "report_id": str(self.report_id),
            "code": self.problem.code,
            "reason": self.problem.reason,
        }


@dataclass(frozen=True)
class ClaimsTaken:
    """What became of a batch of reports: the ones queued, the ones refused."""

    accepted: list[uuid.UUID]
    refused: list[ClaimRefused]


async def report_deliveries(
    work: CatalogWork,
    claims: Sequence[DeliveryClaim],
    reporter: str | None,
    now: datetime | None = None,
) -> ClaimsTaken:
    """`report_delivery` for many reports: the valid ones are queued, the others listed.

    Invalid `invalid_delivery`, listing every refusal, if no report passes.
    """
    moment = now or datetime.now(UTC)
    accepted: list[DeliveryReported] = []
    refused: list[ClaimRefused] = []
    for index, claim in enumerate(claims):
        admitted = await _admit(work, claim, reporter, moment)
        if isinstance(admitted, DeliveryProblem):
            refused.append(ClaimRefused(index, claim.report_id, admitted))
        else:
            accepted.append(admitted)
    if not accepted:
        errors = [refusal.document() for refusal in refused]
        raise Invalid("invalid_delivery", "no report was accepted", errors=errors)
    await work.publish([_queued(report) for report in accepted])
    return ClaimsTaken([report.report_id for report in accepted], refused)


async def _admit(
    work: CatalogReading, claim: DeliveryClaim, reporter: str | None, now: datetime
) -> DeliveryReported | DeliveryProblem:
    # The consumer's own check, so what passes here normally passes there; the consumer
    # checks again, as the register may change in between.
    report = domain.claimed_report(claim, reporter)
    if isinstance(report, DeliveryProblem):
        return report
    view = await work.service_view(report.service_id)
    return domain.check_delivery(report, view, now) or report


def _queued(report: DeliveryReported) -> Envelope[DeliveryReported]:
    return Envelope.wrap(report, source=SOURCE, subject=report.service_id)


Refusal = tuple[Envelope[DeliveryReported], DeliveryProblem]


async def record_deliveries(
    work: CatalogWork,
    envelopes: Sequence[Envelope[Any]],
    parents: Mapping[uuid.UUID, Context] | None = None,
    now: datetime | None = None,
) -> list[Refusal]:
    """Check reported deliveries against the register; pass each report on once.

    Returns the refused reports with their problem. Each valid report becomes a
    `DeliveryRecorded` on `catalog.deliveries` whose envelope id is derived from the report
    id; a report id seen before (in this batch, or ever) is skipped, however it arrived.
    `parents` (by report envelope id) carry each report's trace on to its recorded event.
    Volume is why it takes many at once: one lookup of the register, one insert.
    """
    moment = now or datetime.now(UTC)
    reports: list[Envelope[DeliveryReported]] = [
        e for e in envelopes if isinstance(e.payload, DeliveryReported)
    ]
    views = await work.service_views(sorted({e.payload.service_id for e in reports}))
    refused: list[Refusal] = []
    valid: dict[uuid.UUID, tuple[Envelope[DeliveryReported], DeliveryRecorded]] = {}
    for envelope in reports:
        report = envelope.payload
        view = views.get(report.service_id)
        problem = domain.check_delivery(report, view, moment)
        if problem is not None:
            refused.append((envelope, problem))
        elif view is not None and report.report_id not in valid:
            valid[report.report_id] = (envelope, domain.recorded_delivery(report, view))
    new = await work.insert_deliveries([recorded for _, recorded in valid.values()])
    fresh = [
        (envelope, recorded) for envelope, recorded in valid.values() if recorded.report_id in new
    ]
    await work.publish(
        [
            Envelope.wrap(
                recorded,
                source=SOURCE,
                subject=recorded.service_id,
                correlation_id=envelope.correlation_id,
                event_id=delivery_event_id(recorded.report_id),
            )
            for envelope, recorded in fresh
        ],
        [(parents or {}).get(envelope.id) for envelope, _ in fresh],
    )
    return refused
