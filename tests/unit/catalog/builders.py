"""The catalog entries tests start from: one pupil's report card, changed where a test says."""

from __future__ import annotations

from typing import Any

from services.catalog.domain import ServiceEntry


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
