"""The catalog service running in-process on the session's real Kafka and PostgreSQL.

Tokens are minted with a key of the tests' own, published on `identity.issuer-keys` as
identity would, so the service verifies them exactly as in production.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from joserfc.jwk import ECKey

from services.catalog.bootstrap import build
from services.catalog.settings import CatalogSettings
from shared.auth import InvalidToken
from shared.kafka_access import KafkaAccess
from shared.runtime import Runtime
from tests.polling import eventually
from tests.tokens import access_claims, new_issuer_key, publish_issuer_key, signed

ISSUER = "https://identity.catalog-tests"


@dataclass
class Signer:
    """Mints identity-shaped access tokens with the tests' published key."""

    key: ECKey

    def token(self, agency: str | None, scope: str, subject: str = "client-1") -> str:
        claims = access_claims(ISSUER, subject, scope, seconds=600)
        if agency is not None:
            claims["agency"] = agency
        return signed(self.key, claims)

    def headers(self, agency: str | None, scope: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token(agency, scope)}"}


@dataclass
class Catalog:
    app: FastAPI
    client: httpx.AsyncClient
    runtime: Runtime
    signer: Signer
    # The tests read and write topics as the broker's admin, never as the catalog.
    observer: KafkaAccess
    # Until the access manager has made a new agency's channel, nothing can travel on it.
    channel_of: Callable[[str], Awaitable[KafkaAccess]]


@pytest.fixture(scope="session")
async def signer(kafka_admin: KafkaAccess) -> Signer:
    key, record = new_issuer_key(ISSUER, f"catalog-tests-{uuid.uuid4().hex[:8]}")
    await publish_issuer_key(kafka_admin, record, client_id="catalog-tests")
    return Signer(key)


@pytest.fixture(scope="package")
async def catalog(
    credentials_file: Callable[[str], str],
    kafka_admin: KafkaAccess,
    database_urls: Mapping[str, str],
    signer: Signer,
    agency_kafka: Callable[[str], Awaitable[KafkaAccess]],
) -> AsyncIterator[Catalog]:
    settings = CatalogSettings(
        kafka_credentials_file=credentials_file("catalog"),
        database_url=database_urls["catalog"],
        token_issuer=ISSUER,
    ).model_copy(update={"load_reference_when_empty": False})
    app = build(settings)
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        assert runtime.issuer_keys is not None
        keys = runtime.issuer_keys

        def verifies() -> bool:
            try:
                keys.verify(signer.token("education", "catalog:write"))
            except InvalidToken:
                return False
            return True

        await eventually(verifies)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://catalog") as client:
            yield Catalog(
                app=app,
                client=client,
                runtime=runtime,
                signer=signer,
                observer=kafka_admin,
                channel_of=agency_kafka,
            )


def unique_code(prefix: str = "t") -> str:
    """An agency code no other test uses."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"
