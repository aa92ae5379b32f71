"""The exchange service's HTTP API: each route parses, calls a use case, and answers.

- Providers register their data services (`exchange:provide`, for their own agency).
- Administrators grant and revoke access rights (`exchange:admin`).
- A citizen sees which agencies asked for data about them, and why (level of assurance 2+).
- The gateway, for agencies' systems that cannot speak Kafka (`exchange:request`): post a
  signed request and wait for its final outcome; it goes through the same checks, as it
  enters the exchange on the same topic.
- `/keys`: the exchange's public signing keys (JWKS), to check what it signs.

The use cases' domain errors become problem documents in one place (`shared.http`).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.exchange.domain.registers import AccessTerms, DataServiceTerms
from services.exchange.storage import ExchangeStorage
from services.exchange.use_cases import citizens, gateway, registers
from shared.auth import Principal
from shared.events.exchange import DataRequested
from shared.http import ProblemError
from shared.jalali import jalali_moment
from shared.runtime import Runtime, RuntimeDep, require_scopes
from shared.unit_of_work import transaction

router = APIRouter()

GATEWAY_POLL_SECONDS = 0.05


class DataServiceIn(DataServiceTerms):
    """A provider's data service and its terms."""


class AccessRightIn(AccessTerms):
    """A right to grant: a consumer, a data service, purposes, a period."""


class RevocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1)


@router.post("/data-services", status_code=201, tags=["data services"])
async def register_data_service(
    body: DataServiceIn,
    runtime: RuntimeDep,
    principal: Annotated[Principal, Depends(require_scopes("exchange:provide"))],
) -> dict[str, Any]:
    """Register (or update) one of the caller's agency's data services."""
    async with transaction(runtime.pool, ExchangeStorage) as work:
        registered = await registers.register_data_service(work, principal.agency, body)
    return registered.model_dump(mode="json")


@router.get("/data-services", tags=["data services"])
async def list_data_services(
    runtime: RuntimeDep, provider: Annotated[str | None, Query()] = None
) -> list[dict[str, Any]]:
    """The data services offered on the exchange (optionally one provider's)."""
    async with transaction(runtime.pool, ExchangeStorage) as work:
        services = await registers.data_services(work, provider)
    return [
        {
            "data_service": s.data_service,
            "version": s.version,
            "provider": s.provider,
            "purposes": list(s.purposes),
            "timeout_ms": s.timeout_ms,
            "personal_data": s.personal_data,
            "active": s.active,
            "request_schema": s.request_schema,
            "response_schema": s.response_schema,
        }
        for s in services
    ]


@router.post("/access-rights", status_code=201, tags=["access rights"])
async def grant_access(
    body: AccessRightIn,
    runtime: RuntimeDep,
    principal: Annotated[Principal, Depends(require_scopes("exchange:admin"))],
) -> dict[str, Any]:
    """Grant a consumer agency a right to a data service, for purposes, in a period; the
    caller (its token's subject) is recorded as the grantor."""
    async with transaction(runtime.pool, ExchangeStorage) as work:
        granted = await registers.grant_access(work, body, principal.subject)
    return granted.model_dump(mode="json")


@router.get("/access-rights/{right_id}", tags=["access rights"])
async def access_right(
    right_id: uuid.UUID,
    runtime: RuntimeDep,
    _: Annotated[Principal, Depends(require_scopes("exchange:admin"))],
) -> dict[str, Any]:
    """A right as the register holds it: its terms, who granted it, and whether, why and
    by whom it was revoked."""
    async with transaction(runtime.pool, ExchangeStorage) as work:
        right = await registers.access_right(work, right_id)
    return {
        "right_id": str(right.right_id),
        "consumer": right.consumer,
        "data_service": right.data_service,
        "purposes": list(right.purposes),
        "legal_basis": right.legal_basis,
        "valid_from": right.valid_from.isoformat(),
        "valid_until": None if right.valid_until is None else right.valid_until.isoformat(),
        "granted_by": right.granted_by,
        "revoked_at": None if right.revoked_at is None else right.revoked_at.isoformat(),
        "revoked_reason": right.revoked_reason,
        "revoked_by": right.revoked_by,
    }


@router.post("/access-rights/{right_id}/revocation", tags=["access rights"])
async def revoke_access(
    right_id: uuid.UUID,
    body: RevocationIn,
    runtime: RuntimeDep,
    principal: Annotated[Principal, Depends(require_scopes("exchange:admin"))],
) -> dict[str, Any]:
    """End a right before its term; requests after this are denied. The caller (its
    token's subject) is recorded as who revoked it."""
    async with transaction(runtime.pool, ExchangeStorage) as work:
        revoked = await registers.revoke_access(work, right_id, body.reason, principal.subject)
    return revoked.model_dump(mode="json")


@router.get("/citizens/me/data-requests", tags=["citizens"])
async def my_data_requests(
    runtime: RuntimeDep,
    principal: Annotated[Principal, Depends(require_scopes())],
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Which agencies asked for data about the caller, for what purpose, with what outcome.

    Read from the audit log by the caller's pseudonymous id; newest first.
    """
    async with transaction(runtime.pool, ExchangeStorage) as work:
        seen = await citizens.citizen_data_requests(
            work, principal.subject, principal.level_of_assurance, limit
        )
    return {
        "citizen": principal.subject,
        "requests": [
            {
                "transaction_id": str(request.transaction_id),
                "consumer": request.consumer,
                "consumer_name_fa": request.consumer_name_fa,
                "consumer_name_en": request.consumer_name_en,
                "provider": request.provider,
                "data_service": request.data_service,
                "purpose": request.purpose,
                "legal_basis": request.legal_basis,
                "outcome": request.outcome,
                "at": request.at.isoformat(),
                "at_jalali": jalali_moment(request.at, seconds=False),
            }
            for request in seen
        ],
    }


@router.post("/gateway/requests", tags=["gateway"])
async def gateway_request(
    request: Request,
    runtime: RuntimeDep,
    principal: Annotated[Principal, Depends(require_scopes("exchange:request"))],
    wait: Annotated[float, Query(ge=0, le=120)] = 30.0,
) -> JSONResponse:
    """Send a signed `DataRequested` (JSON body) and wait up to `wait` seconds for its outcome.

    200 with the final `DataRequestCompleted`; 202 with the transaction id if it is not
    final yet (then poll `GET /gateway/requests/{id}`). Posting the same transaction again
    sends nothing new: it waits for the same outcome.
    """
    try:
        data_request = DataRequested.model_validate_json(await request.body())
    except ValidationError as error:
        raise ProblemError(
            422, "invalid_request", "not a DataRequested", errors=_errors(error)
        ) from None
    async with transaction(runtime.pool, ExchangeStorage) as work:
        await gateway.submit_request(work, data_request, principal.agency)
    return await _outcome_within(runtime, data_request.transaction_id, principal, wait)


@router.get("/gateway/requests/{transaction_id}", tags=["gateway"])
async def gateway_outcome(
    transaction_id: uuid.UUID,
    runtime: RuntimeDep,
    principal: Annotated[Principal, Depends(require_scopes("exchange:request"))],
    wait: Annotated[float, Query(ge=0, le=120)] = 0.0,
) -> JSONResponse:
    """A transaction's outcome (202 while it is not final)."""
    return await _outcome_within(runtime, transaction_id, principal, wait, must_exist=True)


async def _outcome_within(
    runtime: Runtime,
    transaction_id: uuid.UUID,
    principal: Principal,
    wait: float,
    *,
    must_exist: bool = False,
) -> JSONResponse:
    """Ask for the outcome until it is final or `wait` seconds have passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        async with transaction(runtime.pool, ExchangeStorage) as work:
            outcome = await gateway.gateway_outcome(
                work, transaction_id, principal.agency, must_exist=must_exist
            )
        if outcome.completion is not None:
            return JSONResponse(outcome.completion.model_dump(mode="json"), status_code=200)
        if loop.time() >= deadline:
            return JSONResponse(
                {"transaction_id": str(transaction_id), "status": outcome.status},
                status_code=202,
            )
        await asyncio.sleep(GATEWAY_POLL_SECONDS)


@router.get("/keys", tags=["keys"])
async def exchange_keys(runtime: RuntimeDep) -> dict[str, Any]:
    """The exchange's public signing keys, as a JWK set (RFC 7517)."""
    async with transaction(runtime.pool, ExchangeStorage) as work:
        keys = await registers.public_keys(work)
    return {"keys": [{**jwk, "kid": kid, "alg": "ES256", "use": "sig"} for kid, jwk in keys]}


def _errors(error: ValidationError) -> list[dict[str, Any]]:
    return [
        {"field": ".".join(str(part) for part in item["loc"]), "problem": item["msg"]}
        for item in error.errors(include_url=False)
    ]
