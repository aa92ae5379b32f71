"""A fake unit of work for the catalog's use cases: the register in dictionaries.

It implements `CatalogWork` (and so `CatalogReading`) the way `CatalogStorage` does, minus
the SQL: rows are kept current and every write adds a revision; `publish` keeps what the
outbox would get. Search is a plain filter (no ranking): what the use cases decide on is
which services are in the window, not how Postgres ranks them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from services.catalog.domain import (
    Revision,
    SearchHit,
    SearchPage,
    SearchQuery,
    ServiceView,
    folded_query,
    search_text,
)
from shared.events.catalog import AgencyRecorded, DeliveryRecorded, ServiceRecorded
from tests.unit.fake_outbox import FakeOutbox


class FakeCatalog(FakeOutbox):
    """The register, its history, its deliveries and its outbox, in memory."""

    def __init__(self) -> None:
        super().__init__()
        self.agencies: dict[str, AgencyRecorded] = {}
        self.services: dict[str, ServiceRecorded] = {}
        self.agency_revisions: dict[str, list[Revision]] = {}
        self.service_revisions: dict[str, list[Revision]] = {}
        self.deliveries: dict[uuid.UUID, DeliveryRecorded] = {}

    # -- reads --------------------------------------------------------------------------

    async def get_agency(self, code: str, *, for_update: bool = False) -> AgencyRecorded | None:
        return self.agencies.get(code)

    async def get_service(
        self, service_id: str, *, for_update: bool = False
    ) -> ServiceRecorded | None:
        return self.services.get(service_id)

    async def list_agencies(self, province: str | None = None) -> list[AgencyRecorded]:
        return [
            agency
            for code, agency in sorted(self.agencies.items())
            if province is None or agency.province in (None, province)
        ]

    async def search(self, query: SearchQuery) -> SearchPage:
        spaced, _ = folded_query(query.text)
        found = [
            service
            for service in self.services.values()
            if service.status == "published" and self._passes(service, query, spaced)
        ]
        found.sort(key=lambda s: (s.title_fa, s.service_id))
        page = found[query.offset : query.offset + query.limit]
        hits = [
            SearchHit(
                service=service,
                agency_name_fa=self.agencies[service.agency].name_fa,
                agency_name_en=self.agencies[service.agency].name_en,
                rank=0.0,
            )
            for service in page
        ]
        return SearchPage(total=len(found), hits=hits)

    def _passes(self, service: ServiceRecorded, query: SearchQuery, words: str) -> bool:
        text = search_text(service)
        province = self.agencies[service.agency].province
        return (
            all(word in f"{text.title} {text.description}" for word in words.split())
            and query.agency in (None, service.agency)
            and query.category in (None, service.category)
            and (query.channel is None or query.channel in service.channels)
            and query.maturity in (None, service.maturity)
            and (query.min_maturity is None or service.maturity >= query.min_maturity)
            and (query.province is None or province in (None, query.province))
        )

    async def service_history(self, service_id: str) -> list[Revision]:
        return list(self.service_revisions.get(service_id, []))

    async def agency_history(self, code: str) -> list[Revision]:
        return list(self.agency_revisions.get(code, []))

    async def service_view(self, service_id: str) -> ServiceView | None:
        service = self.services.get(service_id)
        if service is None:
            return None
        return ServiceView(
            service_id=service.service_id,
            agency=service.agency,
            status=service.status,
            channels=tuple(service.channels),
            maturity=service.maturity,
            agency_province=self.agencies[service.agency].province,
        )

    async def service_views(self, service_ids: Sequence[str]) -> dict[str, ServiceView]:
        views = {service_id: await self.service_view(service_id) for service_id in service_ids}
        return {service_id: view for service_id, view in views.items() if view is not None}

    # -- writes -------------------------------------------------------------------------

    async def write_agency(
        self, record: AgencyRecorded, change: str, fields: Sequence[str], by: str
    ) -> None:
        self.agencies[record.code] = record
        _add_revision(self.agency_revisions, record.code, record, change, fields, by)

    async def write_service(
        self, record: ServiceRecorded, change: str, fields: Sequence[str], by: str
    ) -> None:
        self.services[record.service_id] = record
        _add_revision(self.service_revisions, record.service_id, record, change, fields, by)

    async def insert_deliveries(self, deliveries: Sequence[DeliveryRecorded]) -> set[uuid.UUID]:
        new = {d.report_id for d in deliveries if d.report_id not in self.deliveries}
        self.deliveries.update({d.report_id: d for d in deliveries if d.report_id in new})
        return new

    # -- what tests look at -------------------------------------------------------------

    def payloads(self) -> list[Any]:
        return self.events()

    def event_types(self) -> list[str]:
        return [envelope.type for envelope in self.published]


def _add_revision(
    revisions: dict[str, list[Revision]],
    key: str,
    record: AgencyRecorded | ServiceRecorded,
    change: str,
    fields: Sequence[str],
    by: str,
) -> None:
    """Appends the revision a write leaves, as the register's history table keeps it."""
    revisions.setdefault(key, []).append(
        Revision(
            revision=record.revision,
            change=change,
            changed_fields=list(fields),
            changed_by=by,
            recorded_at=datetime.now(UTC).isoformat(),
            record=record.model_dump(mode="json"),
        )
    )
