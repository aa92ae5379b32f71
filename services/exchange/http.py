"""The exchange service's HTTP API.

- Providers register their data services (`exchange:provide`, for their own agency).
- Administrators grant and revoke access rights (`exchange:admin`).
- A citizen sees which agencies asked for data about them, and why (level of assurance 2+).
- The gateway, for agencies' systems that cannot speak Kafka (`exchange:request`): post a
  signed request and wait for its final outcome; it goes through the same checks, as it
  enters the exchange on the same topic.
- `/keys`: the exchange's public signing keys (JWKS), to check what it signs.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import jdatetime
import jsonschema
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from joserfc.jwk import import_key
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from services.exchange import messages as _messages  # noqa: F401 (registers the problem codes)
from services.exchange import storage
from shared.auth import Principal
from shared.envelope import Envelope
from shared.events.exchange import (
    AccessGranted,
    AccessRevoked,
    DataRequested,
    DataServiceRegistered,
)
from shared.http import ProblemError
from shared.outbox import enqueue
from shared.runtime import Runtime, RuntimeDep, require_scopes
from shared.signing import public_jwk
from shared.vocabulary import AgencyCode, Localized

router = APIRouter()

SOURCE = "exchange"
FINAL = ("answered", "denied", "refused", "timed_out", "failed")
GATEWAY_POLL_SECONDS = 0.05


class DataServiceIn(BaseModel):
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


class AccessRightIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    consumer: AgencyCode
    data_service: str
    purposes: list[str] = Field(min_length=1)
    legal_basis: str = Field(min_length=1)
    valid_from: AwareDatetime
    valid_until: AwareDatetime | None = None


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
    provider = principal.agency
    if provider is None or not body.data_service.startswith(f"{provider}."):
        raise ProblemError(
            403, "exchange_not_your_data_service", f"{body.data_service} is not {provider}'s"
        )
    for name in ("request_schema", "response_schema"):
        try:
            jsonschema.validators.validator_for(getattr(body, name)).check_schema(
                getattr(body, name)
            )
        except jsonschema.exceptions.SchemaError as error:
            raise ProblemError(422, "exchange_invalid_schema", f"{name}: {error.message}") from None
    event = DataServiceRegistered(provider=provider, **body.model_dump())
    async with runtime.pool.acquire() as connection, connection.transaction():
        if await storage.agency(connection, provider) is None:
            raise ProblemError(422, "exchange_unknown_agency", provider)
        await storage.save_data_service(connection, event)
        await enqueue(connection, Envelope.wrap(event, source=SOURCE, subject=event.data_service))
    return event.model_dump(mode="json")


@router.get("/data-services", tags=["data services"])
async def list_data_services(
    runtime: RuntimeDep, provider: Annotated[str | None, Query()] = None
) -> list[dict[str, Any]]:
    """The data services offered on the exchange (optionally one provider's)."""
    async with runtime.pool.acquire() as connection:
        services = await storage.data_services(connection, provider)
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
    _: Annotated[Principal, Depends(require_scopes("exchange:admin"))],
) -> dict[str, Any]:
    """Grant a consumer agency a right to a data service, for purposes, in a period."""
    if body.valid_until is not None and body.valid_until <= body.valid_from:
        raise ProblemError(422, "exchange_invalid_period")
    event = AccessGranted(right_id=uuid.uuid4(), **body.model_dump())
    async with runtime.pool.acquire() as connection, connection.transaction():
        service = await storage.data_service(connection, body.data_service)
        if service is None:
            raise ProblemError(404, "exchange_unknown_data_service", body.data_service)
        unserved = sorted(set(body.purposes) - set(service.purposes))
        if unserved:
            raise ProblemError(422, "exchange_purpose_not_served", ", ".join(unserved))
        if await storage.agency(connection, body.consumer) is None:
            raise ProblemError(422, "exchange_unknown_agency", body.consumer)
        await storage.save_right(connection, event)
        await enqueue(connection, Envelope.wrap(event, source=SOURCE, subject=str(event.right_id)))
    return event.model_dump(mode="json")


@router.post("/access-rights/{right_id}/revocation", tags=["access rights"])
async def revoke_access(
    right_id: uuid.UUID,
    body: RevocationIn,
    runtime: RuntimeDep,
    _: Annotated[Principal, Depends(require_scopes("exchange:admin"))],
) -> dict[str, Any]:
    """End a right before its term; requests after this are denied."""
    event = AccessRevoked(right_id=right_id, reason=body.reason)
    async with runtime.pool.acquire() as connection, connection.transaction():
        if await storage.access_right(connection, right_id) is None:
            raise ProblemError(404, "exchange_unknown_right", str(right_id))
        if not await storage.revoke_right(connection, right_id, body.reason, datetime.now(UTC)):
            raise ProblemError(409, "exchange_right_already_revoked", str(right_id))
        await enqueue(connection, Envelope.wrap(event, source=SOURCE, subject=str(right_id)))
    return event.model_dump(mode="json")


@router.get("/citizens/me/data-requests", tags=["citizens"])
async def my_data_requests(
    runtime: RuntimeDep,
    principal: Annotated[Principal, Depends(require_scopes())],
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Which agencies asked for data about the caller, for what purpose, with what outcome.

    Read from the audit log by the caller's pseudonymous id; newest first.
    """
    if (principal.level_of_assurance or 0) < 2:
        raise ProblemError(403, "exchange_assurance_too_low")
    async with runtime.pool.acquire() as connection:
        rows = await storage.citizen_requests(connection, principal.subject, limit)
        names = await storage.agency_names(
            connection,
            sorted({r["consumer"] for r in rows} | {r["provider"] for r in rows if r["provider"]}),
        )
    return {
        "citizen": principal.subject,
        "requests": [
            {
                "transaction_id": str(row["transaction_id"]),
                "consumer": row["consumer"],
                "consumer_name_fa": names.get(row["consumer"], (None, None))[0],
                "consumer_name_en": names.get(row["consumer"], (None, None))[1],
                "provider": row["provider"],
                "data_service": row["data_service"],
                "purpose": row["purpose"],
                "legal_basis": row["legal_basis"],
                "outcome": "pending" if row["outcome"] == "forwarded" else row["outcome"],
                "at": row["recorded_at"].isoformat(),
                "at_jalali": jdatetime.datetime.fromgregorian(
                    datetime=row["recorded_at"].astimezone(UTC)
                ).strftime("%Y/%m/%d %H:%M"),
            }
            for row in rows
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
    if data_request.consumer != principal.agency:
        raise ProblemError(403, "exchange_not_your_request", data_request.consumer)
    transaction_id = data_request.transaction_id
    async with runtime.pool.acquire() as connection, connection.transaction():
        if await storage.transaction(connection, transaction_id) is None:
            envelope = Envelope.wrap(
                data_request,
                source=SOURCE,
                subject=data_request.consumer,
                correlation_id=transaction_id,
            )
            await enqueue(connection, envelope)
    return await _outcome_within(runtime, transaction_id, principal, wait)


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
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        row = await storage.transaction(runtime.pool, transaction_id)
        if row is not None and row["consumer"] != principal.agency:
            raise ProblemError(404, "exchange_unknown_transaction", str(transaction_id))
        if row is None and must_exist:
            raise ProblemError(404, "exchange_unknown_transaction", str(transaction_id))
        if row is not None and row["status"] in FINAL:
            return JSONResponse(row["completion"], status_code=200)
        if loop.time() >= deadline:
            status = "received" if row is None else row["status"]
            return JSONResponse(
                {"transaction_id": str(transaction_id), "status": status}, status_code=202
            )
        await asyncio.sleep(GATEWAY_POLL_SECONDS)


@router.get("/keys", tags=["keys"])
async def exchange_keys(runtime: RuntimeDep) -> dict[str, Any]:
    """The exchange's public signing keys, as a JWK set (RFC 7517)."""
    async with runtime.pool.acquire() as connection:
        await storage.signing_key(connection)
    keys = []
    for kid, private in await storage.public_signing_keys(runtime.pool):
        keys.append({**public_jwk(import_key(private)), "kid": kid, "alg": "ES256", "use": "sig"})
    return {"keys": keys}


def _errors(error: ValidationError) -> list[dict[str, Any]]:
    return [
        {"field": ".".join(str(part) for part in item["loc"]), "problem": item["msg"]}
        for item in error.errors(include_url=False)
    ]
