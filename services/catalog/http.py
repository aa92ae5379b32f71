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

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

import services.catalog.messages  # noqa: F401  (registers the catalog's problem codes)
from services.catalog import use_cases
from services.catalog.domain import (
    ELECTRONIC_FROM,
    MATURITY_SCALE,
    SMART,
    AgencyEntry,
    DeliveryClaim,
    Editor,
    SearchQuery,
    ServiceContent,
    ServiceEntry,
)
from services.catalog.settings import CatalogSettings
from services.catalog.storage import CatalogReads, CatalogStorage
from shared.auth import Principal
from shared.events.catalog import AgencyRecorded, ServiceRecorded
from shared.jalali import jalali_date
from shared.runtime import Runtime, RuntimeDep, require_scopes
from shared.unit_of_work import transaction
from shared.vocabulary import Channel

router = APIRouter()

Writer = Annotated[Principal, Depends(require_scopes("catalog:write"))]
Reporter = Annotated[Principal, Depends(require_scopes("catalog:deliveries"))]


def _jalali(day: date | None) -> str | None:
    return jalali_date(day) if day else None


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
    query = SearchQuery(
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
    # Reads take no transaction: one statement each, no BEGIN and COMMIT round trips.
    async with runtime.pool.acquire() as connection:
        found = await use_cases.search_services(CatalogReads(connection), query)
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


@router.get("/services/{service_id}", summary="A service's page", tags=["window"])
async def service_page(service_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    async with runtime.pool.acquire() as connection:
        found = await use_cases.read_service(CatalogReads(connection), service_id)
    return _service_page(found.service, agency_page=_agency_page(found.agency))


@router.get(
    "/services/{service_id}/history", summary="Every revision of a service", tags=["window"]
)
async def service_history(service_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    async with runtime.pool.acquire() as connection:
        revisions = await use_cases.read_service_history(CatalogReads(connection), service_id)
    return {"service_id": service_id, "revisions": [r.__dict__ for r in revisions]}


@router.get("/agencies", summary="The register of agencies", tags=["window"])
async def agencies(
    runtime: RuntimeDep,
    province: Annotated[str | None, Query(pattern=r"^IR-\d\d$")] = None,
) -> dict[str, Any]:
    async with runtime.pool.acquire() as connection:
        found = await use_cases.list_agencies(CatalogReads(connection), province)
    return {"agencies": [_agency_page(a) for a in found]}


@router.get("/agencies/{code}", summary="An agency's page, with its services", tags=["window"])
async def agency_page(code: str, runtime: RuntimeDep) -> dict[str, Any]:
    async with runtime.pool.acquire() as connection:
        found = await use_cases.read_agency(CatalogReads(connection), code)
    return {
        **_agency_page(found.agency),
        "services": [_service_page(hit.service) for hit in found.services.hits],
    }


@router.get("/agencies/{code}/history", summary="Every revision of an agency", tags=["window"])
async def agency_history(code: str, runtime: RuntimeDep) -> dict[str, Any]:
    async with runtime.pool.acquire() as connection:
        revisions = await use_cases.read_agency_history(CatalogReads(connection), code)
    return {"code": code, "revisions": [r.__dict__ for r in revisions]}


# -- agencies write their services -------------------------------------------------------


def _agency_editor(principal: Principal) -> Editor:
    return Editor.of_agency(principal.agency, principal.subject)


@router.post("/services", status_code=201, summary="Draft a new service", tags=["agencies"])
async def draft_service(
    entry: ServiceEntry, principal: Writer, runtime: RuntimeDep
) -> dict[str, Any]:
    async with transaction(runtime.pool, CatalogStorage) as work:
        record = await use_cases.draft_service(work, entry, _agency_editor(principal))
    return _service_page(record)


@router.put("/services/{service_id}", summary="Change a service's entry", tags=["agencies"])
async def update_service(
    service_id: str, content: ServiceContent, principal: Writer, runtime: RuntimeDep
) -> dict[str, Any]:
    async with transaction(runtime.pool, CatalogStorage) as work:
        record = await use_cases.update_service(
            work, service_id, content, _agency_editor(principal)
        )
    return _service_page(record)


@router.post("/services/{service_id}/publish", summary="Publish a service", tags=["agencies"])
async def publish_service(service_id: str, principal: Writer, runtime: RuntimeDep) -> Any:
    async with transaction(runtime.pool, CatalogStorage) as work:
        record = await use_cases.publish_service(work, service_id, _agency_editor(principal))
    return _service_page(record)


@router.post("/services/{service_id}/retire", summary="Retire a service", tags=["agencies"])
async def retire_service(service_id: str, principal: Writer, runtime: RuntimeDep) -> Any:
    async with transaction(runtime.pool, CatalogStorage) as work:
        record = await use_cases.retire_service(work, service_id, _agency_editor(principal))
    return _service_page(record)


# -- operators keep the register of agencies -------------------------------------------------


def _operator_editor(principal: Principal, runtime: Runtime) -> Editor:
    settings = runtime.settings
    operators = settings.operator_agencies if isinstance(settings, CatalogSettings) else set()
    return Editor.of_operator(principal.agency, principal.subject, operators)


@router.post("/agencies", status_code=201, summary="Register an agency", tags=["operators"])
async def register_agency(
    entry: AgencyEntry, principal: Writer, runtime: RuntimeDep
) -> dict[str, Any]:
    editor = _operator_editor(principal, runtime)
    async with transaction(runtime.pool, CatalogStorage) as work:
        record = await use_cases.register_agency(work, entry, editor)
    return _agency_page(record)


@router.put("/agencies/{code}", summary="Change an agency's entry", tags=["operators"])
async def update_agency(
    code: str, entry: AgencyEntry, principal: Writer, runtime: RuntimeDep
) -> dict[str, Any]:
    editor = _operator_editor(principal, runtime)
    async with transaction(runtime.pool, CatalogStorage) as work:
        record, _ = await use_cases.update_agency(work, code, entry, editor)
    return _agency_page(record)


# -- deliveries, for agencies that cannot speak Kafka ------------------------------------------


class DeliveryReportIn(DeliveryClaim):
    """One delivery as an agency reports it (the fields of `DeliveryReported`)."""


class DeliveryBatchIn(BaseModel):
    reports: list[DeliveryReportIn] = Field(min_length=1, max_length=500)


@router.post(
    "/deliveries", status_code=202, summary="Report one service delivery", tags=["deliveries"]
)
async def report_delivery(
    item: DeliveryReportIn, principal: Reporter, runtime: RuntimeDep
) -> dict[str, Any]:
    """Checked now against the register (4xx with the reason), then queued for recording."""
    async with transaction(runtime.pool, CatalogStorage) as work:
        await use_cases.report_delivery(work, item, principal.agency)
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
    async with transaction(runtime.pool, CatalogStorage) as work:
        taken = await use_cases.report_deliveries(work, batch.reports, principal.agency)
    accepted = [str(report_id) for report_id in taken.accepted]
    refused = [refusal.document() for refusal in taken.refused]
    return JSONResponse({"accepted": accepted, "refused": refused}, status_code=202)
