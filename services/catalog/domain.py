"""The catalog's domain: the register's rules and the checks on deliveries. Pure, no I/O.

The register holds agencies and their services. Every change yields a new revision of the
record, the names of the fields it set, and one change event; storage keeps the history
and the outbox announces it. A service's life is draft → published → retired; a retired
service is final (its deliveries are refused from then on). An agency's system changes
its own services only; the window's operators keep the register of agencies. Refusals
are `shared.errors` kinds with the catalog's codes (`messages.py`).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.errors import Conflict, DomainError, Forbidden, Invalid
from shared.events.catalog import (
    AgencyRecorded,
    Audience,
    DeliveryRecorded,
    DeliveryReported,
    Outcome,
    ServiceRecorded,
    ServiceStatus,
)
from shared.persian import fold, fold_joined
from shared.reference.provinces import BY_CODE, ProvinceCode
from shared.vocabulary import AgencyCode, Channel, Localized, Maturity

MATURITY_SCALE: dict[int, dict[str, str]] = {
    0: {"fa": "فقط اطلاع‌رسانی", "en": "Information only"},
    1: {"fa": "دریافت فرم", "en": "Forms to download"},
    2: {
        "fa": "ثبت برخط، تکمیل کاغذی یا حضوری",
        "en": "Submitted online, finished on paper or in person",
    },
    3: {
        "fa": "کاملاً برخط با برخی مراحل انسانی",
        "en": "Fully online with some human steps",
    },
    4: {
        "fa": "کاملاً برخط، بدون مدرک و مراجعه",
        "en": "Fully online, no document or visit",
    },
    5: {
        "fa": "هوشمند: خودکار از ابتدا تا انتها",
        "en": "Smart: fully automated end to end",
    },
}
"""The electronic-maturity scale (see `shared.vocabulary.Maturity`): 3-5 electronic, 5 smart."""

ELECTRONIC_FROM = 3
SMART = 5

# Reports from clocks a little ahead of ours are not "in the future".
CLOCK_SKEW = timedelta(minutes=5)

ChangeKind = Literal[
    "AgencyRegistered",
    "AgencyUpdated",
    "ServiceDrafted",
    "ServicePublished",
    "ServiceUpdated",
    "ServiceRetired",
]


# The window shows every date in the Jalali calendar too, which begins on 622-03-21 and
# which the calendar library carries up to the end of Jalali year 9377 (9999-03-19).
ConnectionDate = Annotated[date, Field(ge=date(622, 3, 21), le=date(9999, 3, 19))]


class AgencyEntry(BaseModel):
    """An agency as an operator enters it (everything but the revision)."""

    model_config = ConfigDict(extra="forbid")

    code: AgencyCode
    name_fa: Localized
    name_en: Localized
    ministry_fa: Localized | None = None
    ministry_en: Localized | None = None
    province: ProvinceCode | None = Field(default=None, description="None: national scope.")
    window_connected_since: ConnectionDate | None = None
    exchange_connected_since: ConnectionDate | None = None
    active: bool = True

    def recorded(self, revision: int) -> AgencyRecorded:
        return AgencyRecorded(**self.model_dump(), revision=revision)


class ServiceContent(BaseModel):
    """What an agency says about one of its services (owner and status are the register's)."""

    model_config = ConfigDict(extra="forbid")

    title_fa: Localized
    title_en: Localized
    description_fa: Localized
    description_en: Localized
    category: str = Field(min_length=1, max_length=80, pattern=r"^[a-z][a-z0-9-]*$")
    audiences: list[Audience] = Field(min_length=1)
    channels: list[Channel] = Field(min_length=1)
    maturity: Maturity = Field(description="0..5: see GET /maturity-levels; 3-5 electronic.")
    data_needs: list[str] = Field(default_factory=list)

    @field_validator("audiences", "channels", "data_needs")
    @classmethod
    def _no_duplicates(cls, values: list[str]) -> list[str]:
        return list(dict.fromkeys(values))


class ServiceEntry(ServiceContent):
    """A new service: its id starts with the owning agency's code (`education.report-card`)."""

    service_id: str = Field(pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9.-]+$", max_length=120)


def owner_of(service_id: str) -> str:
    """The agency code a service id belongs to: the part before the first dot."""
    return service_id.split(".", 1)[0]


class ListedService(ServiceEntry):
    """A service as a list of the register gives it (the reference data): with its status."""

    status: ServiceStatus = "published"


@dataclass(frozen=True)
class Editor:
    """Who changes the register, and the name its history keeps for them (`changed_by`).

    An agency's system changes its own services only. An operator keeps the register of
    agencies, and may change any service (the reference data is loaded so).
    """

    name: str
    agency: str | None = None
    operator: bool = False

    @classmethod
    def of_agency(cls, agency: str | None, subject: str) -> Editor:
        """An agency's system, as its token names it."""
        return cls(f"agency:{agency}:{subject}", agency)

    @classmethod
    def of_operator(cls, agency: str | None, subject: str, operators: Collection[str]) -> Editor:
        """A system asking to keep the register of agencies: an operator if `operators`
        lists its agency."""
        return cls(
            f"operator:{agency}:{subject}",
            agency,
            operator=agency is not None and agency in operators,
        )

    def check_may_change(self, service_id: str) -> None:
        """Forbidden `not_your_service` unless the service is this editor's to change."""
        if self.operator:
            return
        if self.agency is None or self.agency != owner_of(service_id):
            raise Forbidden(
                "not_your_service", f"{service_id!r} does not belong to {self.agency!r}"
            )

    def check_operator(self) -> None:
        """Forbidden `not_operator` unless this editor keeps the register of agencies."""
        if not self.operator:
            raise Forbidden("not_operator", f"{self.agency!r} is not an operator")


def changed_fields(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """Fields of `after` whose value differs from `before` (all of them for a new record)."""
    skip = {"revision"}
    if before is None:
        return [name for name in after if name not in skip]
    return [name for name in after if name not in skip and before.get(name) != after[name]]


def new_service(entry: ServiceEntry, agency: AgencyRecorded | None) -> ServiceRecorded:
    """Revision 1 of a service, as a draft; refused for an unknown or inactive agency."""
    owner = owner_of(entry.service_id)
    if agency is None or agency.code != owner:
        raise Invalid("unknown_agency", f"agency {owner!r} is not in the register")
    if not agency.active:
        raise Conflict("agency_inactive", f"agency {owner!r} is not active")
    content = entry.model_dump(exclude={"service_id"})
    return ServiceRecorded(
        service_id=entry.service_id,
        agency=owner,
        status="draft",
        revision=1,
        **content,
    )


def revise_service(
    current: ServiceRecorded, content: ServiceContent
) -> tuple[ServiceRecorded, list[str]] | None:
    """The service with new content and its changed fields; None if nothing changes."""
    if current.status == "retired":
        raise Conflict("service_retired", f"{current.service_id} is retired")
    after = {**current.model_dump(), **content.model_dump()}
    changes = changed_fields(current.model_dump(), after)
    if not changes:
        return None
    after["revision"] = current.revision + 1
    return ServiceRecorded(**after), changes


def move_service(
    current: ServiceRecorded, to: ServiceStatus
) -> tuple[ServiceRecorded, ChangeKind] | None:
    """The service moved to status `to`, and the change's kind; None if it is there already."""
    if current.status == to:
        return None
    allowed: dict[ServiceStatus, set[ServiceStatus]] = {
        "draft": {"published", "retired"},
        "published": {"retired"},
        "retired": set(),
    }
    if to not in allowed[current.status]:
        raise Conflict(
            "status_transition_refused",
            f"{current.service_id} cannot go from {current.status} to {to}",
        )
    kind: ChangeKind = "ServicePublished" if to == "published" else "ServiceRetired"
    moved = current.model_copy(update={"status": to, "revision": current.revision + 1})
    return moved, kind


def revise_agency(
    current: AgencyRecorded, entry: AgencyEntry
) -> tuple[AgencyRecorded, list[str]] | None:
    """The agency as entered, with its changed fields; None if nothing changes."""
    if entry.code != current.code:
        raise Invalid("invalid_change", "an agency's code cannot change")
    changes = changed_fields(current.model_dump(), entry.model_dump())
    if not changes:
        return None
    return entry.recorded(current.revision + 1), changes


@dataclass(frozen=True)
class SearchText:
    """The folded texts stored with a service, so queries folded the same way match."""

    title: str
    description: str


def search_text(service: ServiceRecorded) -> SearchText:
    """Both foldings (ZWNJ spaced and ZWNJ dropped) of titles and descriptions."""

    def both(*texts: str) -> str:
        spaced = " ".join(fold(text) for text in texts)
        seen = set(spaced.split())
        # Only the words that differ when the ZWNJ is dropped (دانشاموز beside دانش اموز).
        joined = [w for w in " ".join(fold_joined(t) for t in texts).split() if w not in seen]
        return " ".join([spaced, *dict.fromkeys(joined)])

    title = both(service.title_fa, service.title_en)
    description = both(service.description_fa, service.description_en, service.category)
    return SearchText(title=title, description=description)


def folded_query(query: str) -> tuple[str, str]:
    """A query folded as the stored texts are: (ZWNJ as space, ZWNJ dropped)."""
    return fold(query), fold_joined(query)


@dataclass(frozen=True)
class SearchQuery:
    """A search of the window: text (any language, any letter forms) and filters."""

    text: str = ""
    agency: str | None = None
    category: str | None = None
    channel: str | None = None
    maturity: int | None = None
    min_maturity: int | None = None
    province: str | None = None
    limit: int = 20
    offset: int = 0


@dataclass(frozen=True)
class SearchHit:
    service: ServiceRecorded
    agency_name_fa: str
    agency_name_en: str
    rank: float


@dataclass(frozen=True)
class SearchPage:
    total: int
    hits: list[SearchHit] = field(default_factory=list)


@dataclass(frozen=True)
class Revision:
    """One change of a record, as history keeps it."""

    revision: int
    change: str
    changed_fields: list[str]
    changed_by: str
    recorded_at: str
    record: dict[str, Any]


def in_window(service: ServiceRecorded | None) -> bool:
    """Whether the window shows the service: a draft is its agency's alone."""
    return service is not None and service.status != "draft"


@dataclass(frozen=True)
class ServiceView:
    """What the register knows that a delivery is checked against."""

    service_id: str
    agency: str
    status: ServiceStatus
    channels: tuple[str, ...]
    maturity: Maturity
    agency_province: str | None


@dataclass(frozen=True)
class DeliveryProblem:
    """Why a delivery report is refused: a stable code and a reason in words."""

    code: str
    reason: str

    def __str__(self) -> str:
        return f"{self.code}: {self.reason}"

    def error(self) -> DomainError:
        """The refusal of a report made directly: a report for another agency is forbidden,
        any other problem makes the report invalid."""
        kind = Forbidden if self.code == "not_your_service" else Invalid
        return kind(self.code, self.reason)


class DeliveryClaim(BaseModel):
    """One delivery as an agency reports it (the fields of `DeliveryReported`), unchecked."""

    model_config = ConfigDict(extra="forbid")

    report_id: uuid.UUID
    agency: str
    service_id: str
    channel: Channel
    province: str
    started_at: AwareDatetime
    finished_at: AwareDatetime
    outcome: Outcome
    citizen: str | None = None


def claimed_report(
    claim: DeliveryClaim, reporter: str | None
) -> DeliveryReported | DeliveryProblem:
    """The claim as a report of `reporter`'s, or why it is refused before the register is
    asked: another agency's delivery, or a report `DeliveryReported` does not admit."""
    if reporter is None or claim.agency != reporter:
        return DeliveryProblem(
            "not_your_service", f"the token speaks for {reporter!r}, not {claim.agency!r}"
        )
    try:
        return DeliveryReported.model_validate_json(claim.model_dump_json())
    except ValidationError as error:
        impossible = any("finished_at" in str(e.get("msg", "")) for e in error.errors())
        code = "impossible_times" if impossible else "invalid_delivery"
        return DeliveryProblem(code, "; ".join(str(e.get("msg", "")) for e in error.errors()))


def recorded_delivery(report: DeliveryReported, service: ServiceView) -> DeliveryRecorded:
    """A checked report as the catalog records it: with the service's maturity."""
    return DeliveryRecorded(**report.model_dump(), maturity=service.maturity)


def check_delivery(
    report: DeliveryReported, service: ServiceView | None, now: datetime
) -> DeliveryProblem | None:
    """None if the report may be recorded; otherwise the first problem found.

    Checked against the register: the service exists, is published (a draft or retired
    service delivers nothing), belongs to the reporting agency, offers the channel, and a
    provincial agency reports only in its province; and against the clock: a delivery
    finishes after it starts and not in the future.
    """
    if report.province not in BY_CODE:
        return DeliveryProblem("unknown_province", f"{report.province!r} is not a province")
    if report.finished_at < report.started_at:
        return DeliveryProblem("impossible_times", "finished_at is before started_at")
    if report.finished_at > now + CLOCK_SKEW:
        return DeliveryProblem("impossible_times", "finished_at is in the future")
    if service is None:
        return DeliveryProblem(
            "unknown_service", f"service {report.service_id!r} is not in the register"
        )
    if service.agency != report.agency:
        return DeliveryProblem(
            "wrong_agency",
            f"service {service.service_id!r} belongs to {service.agency!r}, not {report.agency!r}",
        )
    if service.status == "retired":
        return DeliveryProblem("service_retired", f"service {service.service_id!r} is retired")
    if service.status != "published":
        return DeliveryProblem(
            "service_not_published", f"service {service.service_id!r} is not published"
        )
    if report.channel not in service.channels:
        return DeliveryProblem(
            "channel_not_offered",
            f"service {service.service_id!r} is not offered through {report.channel!r}",
        )
    if service.agency_province is not None and report.province != service.agency_province:
        return DeliveryProblem(
            "outside_agency_scope",
            f"agency {service.agency!r} serves {service.agency_province}, not {report.province}",
        )
    return None
