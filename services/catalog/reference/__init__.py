"""The reference register shipped with the catalog: real national agencies and services.

`agencies.yaml` and `services.yaml` hold the starter set drawn from the articles (civil
registration, education with the pupil's report card, tax, social security, the
judiciary, the Ministry of Foreign Affairs as the one agency not connected to the window,
and a few more); the 31 provincial ICT directorates general are derived from
`shared.reference.provinces`. Loading is idempotent: agencies are created or brought to
the reference (the operator owns them); services are created when missing and otherwise
left to their agency. Every change goes through the register, so it is kept in history
and announced like any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

import yaml

from services.catalog import register, storage
from services.catalog.domain import AgencyEntry, ServiceEntry
from shared.db import Pool
from shared.events.catalog import ServiceStatus
from shared.reference.provinces import PROVINCES

CHANGED_BY = "operator:reference-data"
_ICT_MINISTRY = (
    "وزارت ارتباطات و فناوری اطلاعات",
    "Ministry of Information and Communications Technology",
)


class ReferenceService(ServiceEntry):
    status: ServiceStatus = "published"


def _read(name: str) -> list[dict[str, Any]]:
    text = (resources.files(__package__) / name).read_text("utf-8")
    loaded = yaml.safe_load(text)
    if not isinstance(loaded, list):
        raise ValueError(f"{name} must hold a list")
    return loaded


def provincial_directorates() -> list[AgencyEntry]:
    """The ICT directorate general of each of the 31 provinces (provincial scope)."""
    agencies = []
    for province in PROVINCES:
        agencies.append(
            AgencyEntry(
                code=f"ict-{province.code.lower()}",
                name_fa=f"اداره کل ارتباطات و فناوری اطلاعات استان {province.name_fa}",
                name_en=f"Directorate General of ICT, {province.name_en} Province",
                ministry_fa=_ICT_MINISTRY[0],
                ministry_en=_ICT_MINISTRY[1],
                province=province.code,
                window_connected_since=None,
                exchange_connected_since=None,
            )
        )
    return agencies


def reference_agencies() -> list[AgencyEntry]:
    national = [AgencyEntry.model_validate(item) for item in _read("agencies.yaml")]
    return national + provincial_directorates()


def reference_services() -> list[ReferenceService]:
    return [ReferenceService.model_validate(item) for item in _read("services.yaml")]


@dataclass
class LoadReport:
    """What a load changed, per kind of record."""

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


async def load(pool: Pool) -> LoadReport:
    """Bring the register up to the reference data, in one transaction; safe to repeat."""
    report = LoadReport()
    async with pool.acquire() as connection, connection.transaction():
        # Two instances starting on an empty register load one after the other, not both.
        await connection.execute("SELECT pg_advisory_xact_lock(hashtext('catalog-reference'))")
        for agency in reference_agencies():
            written = await register.put_agency(connection, agency, by=CHANGED_BY)
            report.count("agencies", written.outcome)
        for service in reference_services():
            if await storage.get_service(connection, service.service_id) is not None:
                report.count("services", "unchanged")
                continue
            entry = ServiceEntry.model_validate(service.model_dump(exclude={"status"}))
            await register.draft_service(connection, entry, by=CHANGED_BY)
            if service.status != "draft":
                await register.set_service_status(
                    connection, service.service_id, service.status, by=CHANGED_BY
                )
            report.count("services", "created")
    return report


__all__ = ["LoadReport", "load", "reference_agencies", "reference_services"]
