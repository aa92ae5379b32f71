"""The reference register shipped with the catalog: real national agencies and services.

`agencies.yaml` and `services.yaml` hold the starter set drawn from the articles (civil
registration, education with the pupil's report card, tax, social security, the
judiciary, the Ministry of Foreign Affairs as the one agency not connected to the window,
and a few more); the 31 provincial ICT directorates general are derived from
`shared.reference.provinces`. Loading is idempotent: agencies are created or brought to
the reference (the operator owns them); services are created when missing and otherwise
left to their agency. Every change goes through the register's use cases, so it is kept
in history and announced like any other.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

from services.catalog import use_cases
from services.catalog.domain import AgencyEntry, Editor, ListedService
from services.catalog.storage import CatalogStorage
from services.catalog.use_cases import LoadReport
from shared.db import Pool
from shared.reference.provinces import PROVINCES, directorate_code
from shared.unit_of_work import transaction

CHANGED_BY = "operator:reference-data"
EDITOR = Editor(CHANGED_BY, operator=True)
_ICT_MINISTRY = (
    "وزارت ارتباطات و فناوری اطلاعات",
    "Ministry of Information and Communications Technology",
)


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
                code=directorate_code(province.code),
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


def reference_services() -> list[ListedService]:
    return [ListedService.model_validate(item) for item in _read("services.yaml")]


async def load(pool: Pool) -> LoadReport:
    """Bring the register up to the reference data, in one transaction; safe to repeat."""
    async with transaction(pool, CatalogStorage) as work:
        await work.wait_for_other_loads()
        return await use_cases.load_register(
            work, reference_agencies(), reference_services(), EDITOR
        )


__all__ = ["LoadReport", "load", "reference_agencies", "reference_services"]
