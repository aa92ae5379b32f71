"""Events of the catalog: the register of agencies and services, and service deliveries."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any, Literal

from pydantic import AwareDatetime, ConfigDict, Field, model_validator

from shared.envelope import Event
from shared.reference.provinces import ProvinceCode
from shared.registry import event
from shared.topics import Topic
from shared.vocabulary import AgencyCode, Channel, Localized, Maturity, PseudonymousId

ServiceId = str
Audience = Literal["citizens", "businesses", "agencies"]
ServiceStatus = Literal["draft", "published", "retired"]
Outcome = Literal["completed", "rejected", "abandoned"]

_AGENCY_EXAMPLE: dict[str, Any] = {
    "code": "education",
    "name_fa": "وزارت آموزش و پرورش",
    "name_en": "Ministry of Education",
    "ministry_fa": "وزارت آموزش و پرورش",
    "ministry_en": "Ministry of Education",
    "province": None,
    "window_connected_since": "2019-06-01",
    "exchange_connected_since": "2018-03-01",
    "active": True,
    "revision": 3,
}


@event
class AgencyRecorded(Event):
    """The current state of one agency in the register (a compacted state record)."""

    event_type = "AgencyRecorded"
    schema_version = 1
    topic = Topic.CATALOG_AGENCIES
    model_config = ConfigDict(json_schema_extra={"examples": [_AGENCY_EXAMPLE]})

    code: AgencyCode
    name_fa: Localized
    name_en: Localized
    ministry_fa: Localized | None = Field(description="Parent ministry or branch, if any.")
    ministry_en: Localized | None
    province: ProvinceCode | None = Field(description="None for a national agency.")
    window_connected_since: date | None = Field(
        description="Since when its services are in the window; None: not connected."
    )
    exchange_connected_since: date | None = Field(
        description="Since when it is linked to the exchange; None: not linked."
    )
    active: bool
    revision: int = Field(ge=1, description="Grows by one with every change.")


_SERVICE_EXAMPLE: dict[str, Any] = {
    "service_id": "education.report-card",
    "agency": "education",
    "title_fa": "مشاهده کارنامه دانش‌آموز",
    "title_en": "View a pupil's report card",
    "description_fa": "والدین کارنامه فرزند خود را بدون مراجعه به مدرسه می‌بینند.",
    "description_en": "Parents see their child's report card without visiting the school.",
    "category": "education",
    "audiences": ["citizens"],
    "channels": ["online"],
    "maturity": 5,
    "data_needs": ["civil-registration.person"],
    "status": "published",
    "revision": 2,
}


@event
class ServiceRecorded(Event):
    """The current state of one service in the window (a compacted state record)."""

    event_type = "ServiceRecorded"
    schema_version = 1
    topic = Topic.CATALOG_SERVICES
    model_config = ConfigDict(json_schema_extra={"examples": [_SERVICE_EXAMPLE]})

    service_id: ServiceId = Field(pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9.-]+$")
    agency: AgencyCode
    title_fa: Localized
    title_en: Localized
    description_fa: Localized
    description_en: Localized
    category: str = Field(min_length=1)
    audiences: list[Audience] = Field(min_length=1)
    channels: list[Channel] = Field(min_length=1)
    maturity: Maturity
    data_needs: list[str] = Field(description="Exchange data service ids the service uses.")
    status: ServiceStatus
    revision: int = Field(ge=1)


class _Change(Event):
    topic = Topic.CATALOG_CHANGES
    revision: int = Field(ge=1)
    changed_fields: list[str] = Field(description="Fields whose value this change set.")
    changed_by: str = Field(description="The agency system or operator that made it.")


@event
class AgencyRegistered(_Change):
    """An agency entered the register."""

    event_type = "AgencyRegistered"
    schema_version = 1
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "agency": "education",
                    "revision": 1,
                    "changed_fields": ["code", "name_fa"],
                    "changed_by": "operator:reference-data",
                }
            ]
        }
    )
    agency: AgencyCode


@event
class AgencyUpdated(_Change):
    """An agency's entry changed (names, ministry, connection to the window or exchange)."""

    event_type = "AgencyUpdated"
    schema_version = 1
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "agency": "foreign-affairs",
                    "revision": 2,
                    "changed_fields": ["window_connected_since"],
                    "changed_by": "operator:alice",
                }
            ]
        }
    )
    agency: AgencyCode


_SERVICE_CHANGE_EXAMPLE: dict[str, Any] = {
    "service_id": "education.report-card",
    "agency": "education",
    "revision": 2,
    "changed_fields": ["status"],
    "changed_by": "agency:education",
}


class _ServiceChange(_Change):
    model_config = ConfigDict(json_schema_extra={"examples": [_SERVICE_CHANGE_EXAMPLE]})
    service_id: ServiceId
    agency: AgencyCode


@event
class ServiceDrafted(_ServiceChange):
    """An agency drafted a new service; not visible in the window yet."""

    event_type = "ServiceDrafted"
    schema_version = 1


@event
class ServicePublished(_ServiceChange):
    """A service became visible in the window."""

    event_type = "ServicePublished"
    schema_version = 1


@event
class ServiceUpdated(_ServiceChange):
    """A service's entry changed (texts, channels, maturity, data needs)."""

    event_type = "ServiceUpdated"
    schema_version = 1


@event
class ServiceRetired(_ServiceChange):
    """A service left the window; deliveries of it are no longer accepted."""

    event_type = "ServiceRetired"
    schema_version = 1


_DELIVERY_EXAMPLE: dict[str, Any] = {
    "report_id": "6f1c1f0e-8d0b-4a53-9d8a-0b8a4f1f2e31",
    "agency": "education",
    "service_id": "education.report-card",
    "channel": "online",
    "province": "IR-15",
    "started_at": "2024-03-20T08:30:00Z",
    "finished_at": "2024-03-20T08:31:10Z",
    "outcome": "completed",
    "citizen": "9f2c" + "0" * 60,
}


class _Delivery(Event):
    report_id: uuid.UUID = Field(
        description="The agency's own id for this delivery: a report sent twice has one id."
    )
    agency: AgencyCode
    service_id: ServiceId
    channel: Channel
    province: ProvinceCode
    started_at: AwareDatetime
    finished_at: AwareDatetime
    outcome: Outcome
    citizen: PseudonymousId | None = Field(
        default=None, description="Who was served, where identity knows them."
    )

    @model_validator(mode="after")
    def _finished_after_started(self) -> _Delivery:
        if self.finished_at < self.started_at:
            raise ValueError("finished_at is before started_at")
        return self


@event
class DeliveryReported(_Delivery):
    """An agency reports one service request and its outcome (unvalidated input)."""

    event_type = "DeliveryReported"
    schema_version = 1
    topic = Topic.AGENCY_DELIVERIES
    agency_field = "agency"
    model_config = ConfigDict(json_schema_extra={"examples": [_DELIVERY_EXAMPLE]})


@event
class DeliveryRecorded(_Delivery):
    """A delivery the catalog checked against the register; each report once.

    Its envelope id is derived from `report_id` (UUID v5), so a report that reaches the
    catalog twice yields the same event id and counts once downstream.
    """

    event_type = "DeliveryRecorded"
    schema_version = 1
    topic = Topic.CATALOG_DELIVERIES
    model_config = ConfigDict(
        json_schema_extra={"examples": [{**_DELIVERY_EXAMPLE, "maturity": 5}]}
    )

    maturity: Maturity = Field(description="The service's maturity when it was delivered.")


def delivery_event_id(report_id: uuid.UUID) -> uuid.UUID:
    """The envelope id of the DeliveryRecorded for a report: one per report, forever."""
    return uuid.uuid5(_DELIVERY_NAMESPACE, str(report_id))


_DELIVERY_NAMESPACE = uuid.UUID("5b0f9d0e-2a47-4f0b-9a3e-6d1c4b7e8f10")

__all__ = [
    "AgencyRecorded",
    "AgencyRegistered",
    "AgencyUpdated",
    "DeliveryRecorded",
    "DeliveryReported",
    "ServiceDrafted",
    "ServicePublished",
    "ServiceRecorded",
    "ServiceRetired",
    "ServiceUpdated",
    "delivery_event_id",
]
