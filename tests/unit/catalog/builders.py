"""The catalog entries tests start from: one pupil's report card, changed where a test says."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from services.catalog.domain import ServiceEntry

NOW = datetime(2024, 6, 23, 9, 0, tzinfo=UTC)


def content(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "title_fa": "مشاهده کارنامه دانش‌آموز",
        "title_en": "View a pupil's report card",
        "description_fa": "والدین کارنامه را می‌بینند.",
        "description_en": "Parents see the report card.",
        "category": "education",
        "audiences": ["citizens"],
        "channels": ["online"],
        "maturity": 5,
    }
    values.update(overrides)
    return values


def service(service_id: str = "education.report-card", **overrides: Any) -> ServiceEntry:
    return ServiceEntry.model_validate({"service_id": service_id, **content(**overrides)})


def delivery(service_id: str = "education.report-card", **overrides: Any) -> dict[str, Any]:
    """The fields of a completed delivery of the report card online, just before NOW."""
    values: dict[str, Any] = {
        "report_id": uuid.uuid4(),
        "agency": "education",
        "service_id": service_id,
        "channel": "online",
        "province": "IR-15",
        "started_at": NOW - timedelta(minutes=3),
        "finished_at": NOW - timedelta(minutes=1),
        "outcome": "completed",
    }
    values.update(overrides)
    return values
