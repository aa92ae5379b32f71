"""Real tokens of every kind, obtained as their holders obtain them: through identity's
public API, from a platform that runs as `panjereh up` runs it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from services.identity.domain.citizens import normalise_mobile
from services.identity.settings import DEVELOPMENT_OPERATOR_TOKEN
from shared.kafka_access import KafkaAccess
from tests.integration.identity.conftest import code_sent_to, new_mobile, new_national_id

#: The agency whose systems the suite acts as, and the operator agency that keeps the
#: register (the catalog's default `PANJEREH_CATALOG_OPERATOR_AGENCIES`).
AGENCY = "tax"
OPERATOR_AGENCY = "ito"
AGENCY_SCOPES = "catalog:write catalog:deliveries exchange:request exchange:provide metrics:read"
OPERATOR_AGENCY_SCOPES = "catalog:write exchange:admin programme:admin"
#: A provincial directorate, which submits its province's weekly reports.
DIRECTORATE = "ict-ir-15"
DIRECTORATE_SCOPES = "programme:report"


@dataclass(frozen=True)
class Tokens:
    """The bearer credentials of each kind of caller."""

    citizen: str
    agency: str
    operator_agency: str
    directorate: str
    #: Identity's operator endpoints take the operators' bearer secret, not a token.
    operator_secret: str


async def _until(
    attempt: Callable[[], Awaitable[httpx.Response]], *, wanted: int
) -> httpx.Response:
    """`attempt()` repeated while the platform is still catching up (its projections are
    built from topics), until it answers `wanted` or a minute passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while True:
        response = await attempt()
        if response.status_code == wanted or loop.time() > deadline:
            assert response.status_code == wanted, response.text
            return response
        await asyncio.sleep(0.5)


async def agency_token(identity: httpx.AsyncClient, agency: str, scopes: str) -> str:
    """A client made for `agency` by an operator, then its client-credentials grant."""
    operator = {"authorization": f"Bearer {DEVELOPMENT_OPERATOR_TOKEN}"}
    created = await _until(
        # Identity knows the agency once it has read the catalog's register.
        lambda: identity.post(
            f"/operator/agencies/{agency}/clients",
            json={"name": "abuse suite", "scopes": scopes.split()},
            headers=operator,
        ),
        wanted=201,
    )
    client = created.json()
    granted = await identity.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
        },
    )
    assert granted.status_code == 200, granted.text
    token: str = granted.json()["access_token"]
    return token


async def citizen_token(identity: httpx.AsyncClient, kafka_admin: KafkaAccess) -> str:
    """A citizen registers, receives a code by SMS and signs in with it."""
    national_id, mobile = new_national_id(), new_mobile()
    registered = await identity.post(
        "/citizens",
        json={
            "national_id": national_id,
            "mobile": mobile,
            "first_name": "مریم",
            "last_name": "احمدی",
            "birth_date": "1370/01/15",
            "province": "IR-23",
        },
    )
    assert registered.status_code == 201, registered.text
    sent = await identity.post("/citizens/sign-in/code", json={"national_id": national_id})
    assert sent.status_code == 202, sent.text
    code = await code_sent_to(kafka_admin, normalise_mobile(mobile))
    signed_in = await identity.post(
        "/citizens/sign-in", json={"national_id": national_id, "code": code}
    )
    assert signed_in.status_code == 200, signed_in.text
    token: str = signed_in.json()["access_token"]
    return token


async def tokens_of_every_kind(identity_url: str, kafka_admin: KafkaAccess) -> Tokens:
    async with httpx.AsyncClient(base_url=identity_url, timeout=30) as identity:
        return Tokens(
            citizen=await citizen_token(identity, kafka_admin),
            agency=await agency_token(identity, AGENCY, AGENCY_SCOPES),
            operator_agency=await agency_token(identity, OPERATOR_AGENCY, OPERATOR_AGENCY_SCOPES),
            directorate=await agency_token(identity, DIRECTORATE, DIRECTORATE_SCOPES),
            operator_secret=DEVELOPMENT_OPERATOR_TOKEN,
        )


async def until_accepted(base_url: str, method: str, path: str, token: str) -> None:
    """Wait until a service trusts identity's signing key (it follows the key topic):
    `method path` answers anything but 401 with `token`."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while True:
            response = await http.request(
                method, path, headers={"authorization": f"Bearer {token}"}
            )
            if response.status_code != 401:
                return
            assert loop.time() < deadline, f"{base_url} never accepted identity's token"
            await asyncio.sleep(0.5)
