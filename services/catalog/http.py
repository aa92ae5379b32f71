"""The catalog service's HTTP API: the window's public pages, and the agencies' write API.

Public (no token): search, service pages, agency pages, the maturity scale, history.
Agencies (identity's tokens, verified locally): `catalog:write` to draft, change, publish
and retire their own services (the token's `agency` must own the service: a service id
starts with its agency's code); `catalog:deliveries` to report deliveries. Operators:
`catalog:write` from an agency listed in `PANJEREH_CATALOG_OPERATOR_AGENCIES` (by default
`ito`, the Information Technology Organization, which runs the window) register and
update agencies. Every error is problem+json in Persian and English.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

import jdatetime
from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

import services.catalog.messages  # noqa: F401  (registers the catalog's problem codes)
from services.catalog import register, storage
from services.catalog.domain import (
    ELECTRONIC_FROM,
    MATURITY_SCALE,
    SMART,
    AgencyEntry,
    RegisterError,
    ServiceContent,
    ServiceEntry,
    check_delivery,
    owner_of,
)
from services.catalog.settings import CatalogSettings
from shared.auth import Principal
from shared.db import Connection
from shared.envelope import Envelope
from shared.events.catalog import (
    AgencyRecorded,
    DeliveryReported,
    Outcome,
    ServiceRecorded,
)
from shared.http import ProblemError
from shared.outbox import enqueue
from shared.runtime import Runtime, RuntimeDep, require_scopes
from shared.vocabulary import Channel

router = APIRouter()

Writer = Annotated[Principal, Depends(require_scopes("catalog:write"))]
Reporter = Annotated[Principal, Depends(require_scopes("catalog:deliveries"))]


@asynccontextmanager
async def _transaction(runtime: Runtime) -> AsyncIterator[Connection]:
    """A connection in a transaction; register refusals become problem documents."""
    try:
        async with runtime.pool.acquire() as connection, connection.transaction():
            yield connection
    except RegisterError as error:
        raise ProblemError(error.status, error.code, error.detail) from None


def _jalali(day: date | None) -> str | None:
    return jdatetime.date.fromgregorian(date=day).strftime("%Y/%m/%d") if day else None


def _agency_page(agency: AgencyRecorded) -> dict[str, Any]:
    return {
        **agency.model_dump(mode="json"),
        "connected_to_window": agency.window_connected_since is not None,
        "window_connected_since_jalali": _jalali(agency.window_connected_since),
        "exchange_connected_since_jalali": _jalali(agency.exchange_connected_since),
    }


def _service_page(service: ServiceRecorded, **extra: Any) -> dict[str, Any]:
    return {
        **service.model_dump(mode="json"),
        "maturity_label": MATURITY_SCALE[service.maturity],
        "electronic": service.maturity >= ELECTRONIC_FROM,
        "smart": service.maturity == SMART,
        **extra,
    }


# -- the window's public pages ---------------------------------------------------------


@router.get(
    "/maturity-levels", summary="The electronic-maturity scale of services", tags=["window"]
)
async def maturity_levels() -> dict[str, Any]:
    """0 information only … 5 smart; levels 3 to 5 count as electronic, 5 as smart."""
    return {
        "levels": [{"level": level, **texts} for level, texts in MATURITY_SCALE.items()],
        "electronic_from": ELECTRONIC_FROM,
        "smart": SMART,
    }


@router.get("/services", summary="Search the window's services", tags=["window"])
async def search_services(
    runtime: RuntimeDep,
    q: Annotated[str, Query(max_length=200, description="Persian or English, any forms")] = "",
    agency: str | None = None,
    category: str | None = None,
    channel: Channel | None = None,
    maturity: Annotated[int | None, Query(ge=0, le=5, description="Exactly this level")] = None,
    min_maturity: Annotated[int | None, Query(ge=0, le=5, description="At least")] = None,
    province: Annotated[
        str | None, Query(pattern=r"^IR-\d\d$", description="National and this province's")
    ] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    """Published services, most relevant first.

    The query is folded like the stored texts (Arabic ي/ك, digits, diacritics, ZWNJ), so
    «كارنامه دانشآموز» finds «کارنامه دانش‌آموز».
    """
    query = storage.SearchQuery(
        text=q,
        agency=agency,
        category=category,
        channel=channel,
        maturity=maturity,
        min_maturity=min_maturity,
        province=province,
        limit=per_page,
        offset=(page - 1) * per_page,
    )
    async with runtime.pool.acquire() as connection:
        found = await storage.search(connection, query)
    return {
        "total": found.total,
        "page": page,
        "per_page": per_page,
        "results": [
            _service_page(
                hit.service,
                agency_name_fa=hit.agency_name_fa,
                agency_name_en=hit.agency_name_en,
                rank=hit.rank,
            )
            for hit in found.hits
        ],
    }


async def _visible_service(connection: Connection, service_id: str) -> ServiceRecorded:
    service = await storage.get_service(connection, service_id)
    if service is None or service.status == "draft":
        raise ProblemError(404, "not_found", f"service {service_id!r} is not in the window")
    return service


@router.get("/services/{service_id}", summary="A service's page", tags=["window"])
async def service_page(service_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    async with runtime.pool.acquire() as connection:
        service = await _visible_service(connection, service_id)
        agency = await storage.get_agency(connection, service.agency)
    assert agency is not None
    return _service_page(service, agency_page=_agency_page(agency))


@router.get(
    "/services/{service_id}/history", summary="Every revision of a service", tags=["window"]
)
async def service_history(service_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    async with runtime.pool.acquire() as connection:
        await _visible_service(connection, service_id)
        revisions = await storage.service_history(connection, service_id)
    return {"service_id": service_id, "revisions": [r.__dict__ for r in revisions]}


@router.get("/agencies", summary="The register of agencies", tags=["window"])
async def agencies(
    runtime: RuntimeDep,
    province: Annotated[str | None, Query(pattern=r"^IR-\d\d$")] = None,
) -> dict[str, Any]:
    async with runtime.pool.acquire() as connection:
        found = await storage.list_agencies(connection, province)
    return {"agencies": [_agency_page(a) for a in found]}


@router.get("/agencies/{code}", summary="An agency's page, with its services", tags=["window"])
async def agency_page(code: str, runtime: RuntimeDep) -> dict[str, Any]:
    async with runtime.pool.acquire() as connection:
        agency = await storage.get_agency(connection, code)
        if agency is None:
            raise ProblemError(404, "not_found", f"agency {code!r} is not registered")
        found = await storage.search(connection, storage.SearchQuery(agency=code, limit=1000))
    return {
        **_agency_page(agency),
        "services": [_service_page(hit.service) for hit in found.hits],
    }


@router.get("/agencies/{code}/history", summary="Every revision of an agency", tags=["window"])
async def agency_history(code: str, runtime: RuntimeDep) -> dict[str, Any]:
    async with runtime.pool.acquire() as connection:
        revisions = await storage.agency_history(connection, code)
    if not revisions:
        raise ProblemError(404, "not_found", f"agency {code!r} is not registered")
    return {"code": code, "revisions": [r.__dict__ for r in revisions]}


# -- agencies write their services -------------------------------------------------------


def _author(principal: Principal) -> str:
    return f"agency:{principal.agency}:{principal.subject}"


def _owns(principal: Principal, service_id: str) -> None:
    if principal.agency is None or principal.agency != owner_of(service_id):
        raise ProblemError(
            403, "not_your_service", f"{service_id!r} does not belong to {principal.agency!r}"
        )


@router.post("/services", status_code=201, summary="Draft a new service", tags=["agencies"])
async def draft_service(
    entry: ServiceEntry, principal: Writer, runtime: RuntimeDep
) -> dict[str, Any]:
    _owns(principal, entry.service_id)
    async with _transaction(runtime) as connection:
        record = await register.draft_service(connection, entry, by=_author(principal))
    return _service_page(record)


@router.put("/services/{service_id}", summary="Change a service's entry", tags=["agencies"])
async def update_service(
    service_id: str, content: ServiceContent, principal: Writer, runtime: RuntimeDep
) -> dict[str, Any]:
    _owns(principal, service_id)
    async with _transaction(runtime) as connection:
        record = await register.update_service(
            connection, service_id, content, by=_author(principal)
        )
    return _service_page(record)


async def _move(
    service_id: str,
    status: Literal["published", "retired"],
    principal: Principal,
    runtime: Runtime,
) -> dict[str, Any]:
    _owns(principal, service_id)
    async with _transaction(runtime) as connection:
        record = await register.set_service_status(
            connection, service_id, status, by=_author(principal)
        )
    return _service_page(record)


@router.post("/services/{service_id}/publish", summary="Publish a service", tags=["agencies"])
async def publish_service(service_id: str, principal: Writer, runtime: RuntimeDep) -> Any:
    return await _move(service_id, "published", principal, runtime)


@router.post("/services/{service_id}/retire", summary="Retire a service", tags=["agencies"])
async def retire_service(service_id: str, principal: Writer, runtime: RuntimeDep) -> Any:
    return await _move(service_id, "retired", principal, runtime)


# -- operators keep the register of agencies -------------------------------------------------


def _operator(principal: Principal, runtime: Runtime) -> str:
    settings = runtime.settings
    operators = settings.operator_agencies if isinstance(settings, CatalogSettings) else set()
    if principal.agency is None or principal.agency not in operators:
        raise ProblemError(403, "not_operator", f"{principal.agency!r} is not an operator")
    return f"operator:{principal.agency}:{principal.subject}"


@router.post("/agencies", status_code=201, summary="Register an agency", tags=["operators"])
async def register_agency(
    entry: AgencyEntry, principal: Writer, runtime: RuntimeDep
) -> dict[str, Any]:
    by = _operator(principal, runtime)
    async with _transaction(runtime) as connection:
        record = await register.register_agency(connection, entry, by=by)
    return _agency_page(record)


@router.put("/agencies/{code}", summary="Change an agency's entry", tags=["operators"])
async def update_agency(
    code: str, entry: AgencyEntry, principal: Writer, runtime: RuntimeDep
) -> dict[str, Any]:
    by = _operator(principal, runtime)
    if entry.code != code:
        raise ProblemError(422, "invalid_change", "the body's code differs from the address")
    async with _transaction(runtime) as connection:
        record, _ = await register.update_agency(connection, entry, by=by)
    return _agency_page(record)


# -- deliveries, for agencies that cannot speak Kafka ------------------------------------------


class DeliveryReportIn(BaseModel):
    """One delivery as an agency reports it (the fields of `DeliveryReported`)."""

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


class DeliveryBatchIn(BaseModel):
    reports: list[DeliveryReportIn] = Field(min_length=1, max_length=500)


async def _admit(
    connection: Connection, item: DeliveryReportIn, principal: Principal
) -> DeliveryReported | tuple[str, str]:
    """The report, ready to enqueue, or (code, reason) why it is refused now.

    The same check the consumer makes, so what passes here normally passes there; the
    consumer checks again, as the register may change in between.
    """
    if principal.agency is None or item.agency != principal.agency:
        return "not_your_service", f"the token speaks for {principal.agency!r}, not {item.agency!r}"
    try:
        report = DeliveryReported.model_validate_json(item.model_dump_json())
    except ValidationError as error:
        impossible = any("finished_at" in str(e.get("msg", "")) for e in error.errors())
        code = "impossible_times" if impossible else "invalid_delivery"
        return code, "; ".join(str(e.get("msg", "")) for e in error.errors())
    view = await storage.service_view(connection, report.service_id)
    problem = check_delivery(report, view, datetime.now(UTC))
    if problem is not None:
        return problem.code, problem.reason
    return report


async def _enqueue_report(connection: Connection, report: DeliveryReported) -> None:
    await enqueue(connection, Envelope.wrap(report, source="catalog", subject=report.service_id))


@router.post(
    "/deliveries", status_code=202, summary="Report one service delivery", tags=["deliveries"]
)
async def report_delivery(
    item: DeliveryReportIn, principal: Reporter, runtime: RuntimeDep
) -> dict[str, Any]:
    """Checked now against the register (4xx with the reason), then queued for recording."""
    async with runtime.pool.acquire() as connection, connection.transaction():
        admitted = await _admit(connection, item, principal)
        if isinstance(admitted, tuple):
            code, reason = admitted
            raise ProblemError(403 if code == "not_your_service" else 422, code, reason)
        await _enqueue_report(connection, admitted)
    return {"report_id": str(item.report_id), "status": "accepted"}


@router.post(
    "/deliveries/batch",
    status_code=202,
    summary="Report up to 500 service deliveries",
    tags=["deliveries"],
)
async def report_deliveries(
    batch: DeliveryBatchIn, principal: Reporter, runtime: RuntimeDep
) -> Any:
    """Valid reports are queued, refused ones listed with their reasons (422 if none passed)."""
    accepted: list[str] = []
    refused: list[dict[str, Any]] = []
    async with runtime.pool.acquire() as connection, connection.transaction():
        for index, item in enumerate(batch.reports):
            admitted = await _admit(connection, item, principal)
            if isinstance(admitted, tuple):
                code, reason = admitted
                refused.append(
                    {
                        "index": index,
                        "report_id": str(item.report_id),
                        "code": code,
                        "reason": reason,
                    }
                )
                continue
            await _enqueue_report(connection, admitted)
            accepted.append(str(item.report_id))
    if not accepted:
        raise ProblemError(422, "invalid_delivery", "no report was accepted", errors=refused)
    return JSONResponse({"accepted": accepted, "refused": refused}, status_code=202)
