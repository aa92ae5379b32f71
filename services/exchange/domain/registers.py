"""The exchange's registers: agencies (projected from the catalog), data services, rights.

Pure: value objects, the terms a provider or an administrator submits, and the rules
those terms must keep.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.exchange.domain.schemas import schema_refusal
from shared.vocabulary import AgencyCode, Localized


@dataclass(frozen=True)
class Agency:
    code: str
    active: bool


@dataclass(frozen=True)
class DataService:
    data_service: str
    version: int
    provider: str
    request_schema: dict[str, Any]
    response_schema: dict[str, Any]
    timeout_ms: int
    purposes: tuple[str, ...]
    personal_data: bool
    active: bool

    def unserved(self, purposes: Iterable[str]) -> list[str]:
        """The purposes named that this data service does not serve, sorted."""
        return sorted(set(purposes) - set(self.purposes))


@dataclass(frozen=True)
class AccessRight:
    right_id: uuid.UUID
    consumer: str
    data_service: str
    purposes: tuple[str, ...]
    legal_basis: str
    valid_from: datetime
    valid_until: datetime | None
    revoked_at: datetime | None
    # Who granted and who revoked it (token subjects); None for rights granted before
    # the exchange recorded it.
    granted_by: str | None = None
    revoked_by: str | None = None
    revoked_reason: str | None = None

    def allows(self, purpose: str, at: datetime) -> bool:
        return (
            purpose in self.purposes
            and self.valid_from <= at
            and (self.valid_until is None or at < self.valid_until)
            and (self.revoked_at is None or at < self.revoked_at)
        )


class DataServiceTerms(BaseModel):
    """A provider's data service and its terms."""

    model_config = ConfigDict(extra="forbid")

    data_service: str = Field(pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9.-]+$")
    version: int = Field(ge=1)
    name_fa: Localized
    name_en: Localized
    request_schema: dict[str, Any]
    response_schema: dict[str, Any]
    timeout_ms: int = Field(ge=100, le=120_000)
    purposes: list[str] = Field(min_length=1)
    personal_data: bool
    active: bool = True

    def offered_by(self, agency: str | None) -> bool:
        """Whether the data service is `agency`'s own: its id starts with the agency's code."""
        return agency is not None and self.data_service.startswith(f"{agency}.")

    def schema_problem(self) -> str | None:
        """The first of the two JSON schemas that the exchange will not run, and why: not
        a valid schema, or not safe to run on payloads (`schemas.schema_refusal`)."""
        for name in ("request_schema", "response_schema"):
            refusal = schema_refusal(getattr(self, name))
            if refusal is not None:
                return f"{name}: {refusal}"
        return None


class AccessTerms(BaseModel):
    """A right an administrator grants: a consumer, a data service, purposes, a period."""

    model_config = ConfigDict(extra="forbid")

    consumer: AgencyCode
    data_service: str
    purposes: list[str] = Field(min_length=1)
    legal_basis: str = Field(min_length=1)
    valid_from: AwareDatetime
    valid_until: AwareDatetime | None = None

    def period_is_valid(self) -> bool:
        return self.valid_until is None or self.valid_from < self.valid_until
