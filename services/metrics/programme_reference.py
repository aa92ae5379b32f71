"""The programme's reference register, shipped in `reference/programme.yaml`: the indicators
the smart government programme is monitored by, the targets the plans and laws set on
them, and the historical figures the sources give, each with its source.

Loading is idempotent: an entry the register does not have is recorded through the
register's use cases (kept in history, published like any other, written by
`operator:reference-data`); an entry it has is left as the operator keeps it.
`python -m services.metrics.programme_reference` (or `panjereh programme load-reference`)
loads it; in development the service loads it at start into an empty register, with the
sample's first weekly reports (`sample_reports`: Lorestan's published figures), each
submitted as its province's directorate for the earliest week the sample covers.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import yaml

from services.metrics.domain.programme_register import (
    IndicatorDefinition,
    ObservationReport,
    TargetEntry,
    day_in_tehran,
)
from services.metrics.domain.provincial_reports import load_projects, sample_weeks
from services.metrics.settings import MetricsSettings
from services.metrics.storage import ProgrammeStorage
from services.metrics.use_cases import provinces
from services.metrics.use_cases.programme import LoadReport, load_register
from shared.db import Pool, create_pool
from shared.reference.provinces import directorate_code
from shared.unit_of_work import transaction

CHANGED_BY = "operator:reference-data"


@dataclass(frozen=True)
class ReferenceRegister:
    """The entries of `reference/programme.yaml`, checked against the entry models."""

    version: int
    indicators: list[tuple[str, IndicatorDefinition]]
    targets: list[tuple[str, TargetEntry]]
    observations: list[ObservationReport]


def _entries(document: dict[str, Any], name: str) -> list[dict[str, Any]]:
    entries = document.get(name)
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError(f"programme.yaml: {name} must be a list of entries")
    return entries


def parse_reference(text: str) -> ReferenceRegister:
    """Read the reference register; ValueError (or a validation error) if it is malformed."""
    document = yaml.safe_load(text)
    if not isinstance(document, dict):
        raise ValueError("programme.yaml must hold a mapping")
    indicators = [
        (
            entry["code"],
            IndicatorDefinition.model_validate({k: v for k, v in entry.items() if k != "code"}),
        )
        for entry in _entries(document, "indicators")
    ]
    targets = [
        (
            entry["target_id"],
            TargetEntry.model_validate({k: v for k, v in entry.items() if k != "target_id"}),
        )
        for entry in _entries(document, "targets")
    ]
    observations = [ObservationReport.model_validate(e) for e in _entries(document, "observations")]
    return ReferenceRegister(int(document["version"]), indicators, targets, observations)


def reference_register() -> ReferenceRegister:
    """The register shipped with the service."""
    text = (resources.files("services.metrics.reference") / "programme.yaml").read_text("utf-8")
    return parse_reference(text)


async def load(pool: Pool, register: ReferenceRegister | None = None) -> LoadReport:
    """Record what the register is missing of the reference, in one transaction; safe to
    repeat."""
    chosen = register or reference_register()
    async with transaction(pool, ProgrammeStorage) as work:
        await work.wait_for_other_loads()
        return await load_register(
            work,
            chosen.indicators,
            chosen.targets,
            chosen.observations,
            CHANGED_BY,
            day_in_tehran(datetime.now(UTC)),
        )


@dataclass(frozen=True)
class SampleReport:
    """A province's first weekly report in the development sample."""

    province: str
    entry: provinces.ReportEntry


def sample_reports() -> list[SampleReport]:
    """The sample's first reports shipped in the register file."""
    text = (resources.files("services.metrics.reference") / "programme.yaml").read_text("utf-8")
    entries = _entries(yaml.safe_load(text), "sample_reports")
    return [
        SampleReport(str(e["province"]), provinces.ReportEntry(figures=e["figures"]))
        for e in entries
    ]


async def load_sample_reports(pool: Pool, now: datetime) -> list[str]:
    """Submit each sample report whose province has reported nothing yet, as its
    directorate, for the sample's first week; the provinces so loaded. Safe to repeat."""
    week = sample_weeks(now)[0]
    projects = load_projects()
    loaded = []
    for sample in sample_reports():
        async with transaction(pool, ProgrammeStorage) as work:
            # Locks the province's reports, so two instances starting together submit once.
            await work.report(sample.province, week, for_update=True)
            if await work.reports_of_province(sample.province):
                continue
            await provinces.submit_report(
                work,
                sample.province,
                week,
                sample.entry,
                agency=directorate_code(sample.province),
                projects=projects,
                now=now,
            )
        loaded.append(sample.province)
    return loaded


async def _main() -> None:
    settings = MetricsSettings()
    pool = await create_pool(settings.database_url, settings.database_schema, max_size=2)
    try:
        for line in (await load(pool)).lines():
            print(line)
    finally:
        await pool.close()


def main() -> None:
    """Load the programme's indicators, targets and figures shipped in reference/."""
    asyncio.run(_main())


if __name__ == "__main__":
    main()
