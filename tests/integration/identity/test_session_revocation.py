"""A revoked session on the real broker: identity publishes the revocation, and the catalog
and the exchange, each following identity's topics as its own principal, refuse the
session's access token within seconds, long before the token expires."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping

import httpx
import pytest
from fastapi import FastAPI

from services.catalog.bootstrap import build as build_catalog
from services.catalog.settings import CatalogSettings
from services.exchange.bootstrap import build as build_exchange
from services.exchange.settings import ExchangeSettings
from services.identity.domain.citizens import normalise_mobile
from services.identity.settings import IdentitySettings
from shared.auth import InvalidToken, IssuerKeys
from shared.kafka_access import KafkaAccess
from tests.integration.identity.conftest import (
    code_sent_to,
    eventually,
    new_mobile,
    new_national_id,
    register,
)

pytestmark = pytest.mark.integration

REFUSED_WITHIN_SECONDS = 10.0


async def served(app: FastAPI, base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as http:
            yield http


@pytest.fixture(scope="module")
async def catalog(
    app: FastAPI,  # identity first: at start it publishes its keys under its issuer
    settings: IdentitySettings,
    credentials_file: Callable[[str], str],
    database_urls: Mapping[str, str],
) -> AsyncIterator[httpx.AsyncClient]:
    catalog_settings = CatalogSettings(
        kafka_credentials_file=credentials_file("catalog"),
        database_url=database_urls["catalog"],
        token_issuer=settings.issuer,
    ).model_copy(update={"load_reference_when_empty": False})
    async for http in served(build_catalog(catalog_settings), "http://catalog"):
        yield http


@pytest.fixture(scope="module")
async def exchange(
    app: FastAPI,
    settings: IdentitySettings,
    credentials_file: Callable[[str], str],
    database_urls: Mapping[str, str],
) -> AsyncIterator[httpx.AsyncClient]:
    exchange_settings = ExchangeSettings(
        kafka_credentials_file=credentials_file("exchange"),
        database_url=database_urls["exchange"],
        token_issuer=settings.issuer,
    )
    async for http in served(build_exchange(exchange_settings), "http://exchange"):
        yield http


async def a_signed_in_citizen(identity: httpx.AsyncClient, kafka: KafkaAccess) -> dict[str, str]:
    """A newly registered citizen's first session: its tokens."""
    national_id, mobile = new_national_id(), new_mobile()
    registered = await register(identity, national_id, mobile)
    assert registered.status_code < 300, registered.text
    asked = await identity.post("/citizens/sign-in/code", json={"national_id": national_id})
    assert asked.status_code == 202, asked.text
    code = await code_sent_to(kafka, normalise_mobile(mobile))
    signed_in = await identity.post(
        "/citizens/sign-in", json={"national_id": national_id, "code": code, "channel": "web"}
    )
    assert signed_in.status_code == 200, signed_in.text
    tokens: dict[str, str] = signed_in.json()
    return tokens


async def answers(
    catalog: httpx.AsyncClient, exchange: httpx.AsyncClient, token: str
) -> tuple[int, int]:
    """What the catalog and the exchange answer the token: the exchange shows a citizen
    their own view (200); the catalog knows the caller and refuses for want of a scope
    (403). A token they refuse is 401 at both."""
    bearer = {"authorization": f"Bearer {token}"}
    mine = await exchange.get("/citizens/me/data-requests", headers=bearer)
    publish = await catalog.post("/services/nobody.nothing/publish", headers=bearer)
    return mine.status_code, publish.status_code


async def test_a_revoked_sessions_token_is_refused_by_the_catalog_and_the_exchange_within_seconds(
    client: httpx.AsyncClient,
    kafka_admin: KafkaAccess,
    kafka_as: Callable[[str], KafkaAccess],
    settings: IdentitySettings,
    catalog: httpx.AsyncClient,
    exchange: httpx.AsyncClient,
) -> None:
    revoked = await a_signed_in_citizen(client, kafka_admin)
    kept = await a_signed_in_citizen(client, kafka_admin)
    for tokens in (revoked, kept):
        token = tokens["access_token"]

        async def accepted(token: str = token) -> bool:
            return await answers(catalog, exchange, token) == (200, 403)

        assert await eventually(accepted), "the services never accepted identity's token"

    signed_out = await client.post("/oauth/revoke", data={"token": revoked["refresh_token"]})
    assert signed_out.status_code == 200
    loop = asyncio.get_running_loop()
    began = loop.time()

    async def refused() -> bool:
        return await answers(catalog, exchange, revoked["access_token"]) == (401, 401)

    assert await eventually(refused, timeout=REFUSED_WITHIN_SECONDS), (
        f"still accepted {REFUSED_WITHIN_SECONDS}s after the revocation"
    )
    took = loop.time() - began
    assert took < REFUSED_WITHIN_SECONDS
    bearer = {"authorization": f"Bearer {revoked['access_token']}"}
    refusal = (await exchange.get("/citizens/me/data-requests", headers=bearer)).json()
    assert refusal["code"] == "unauthenticated"
    assert "revoked" in refusal["detail"]
    # The token itself has minutes left: it is the revocation that is refused.
    assert int(revoked["expires_in"]) > took + 60
    # Another session of the platform goes on.
    assert await answers(catalog, exchange, kept["access_token"]) == (200, 403)

    # A service starting after the revocation reads it back before it verifies anything.
    late = IssuerKeys(kafka_as("exchange"), issuer=settings.issuer)
    following = asyncio.create_task(late.run())
    try:
        await asyncio.wait_for(late.ready.wait(), timeout=30)
        with pytest.raises(InvalidToken, match="session was revoked"):
            late.verify(revoked["access_token"])
        assert late.verify(kept["access_token"]).level_of_assurance == 2
    finally:
        await late.stop()
        await following
