"""The metrics service in-process, as its own principal and database role, trusting a
token issuer of the tests' own.

The issuer's key is published on `identity.issuer-keys` as identity would publish it, so
the service verifies the tests' tokens exactly as it verifies identity's in production.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from joserfc.jwk import ECKey

from services.metrics.bootstrap import build
from services.metrics.settings import MetricsSettings
from shared.auth import InvalidToken
from shared.kafka_access import KafkaAccess
from shared.runtime import Runtime
from tests.polling import eventually
from tests.tokens import agency_bearer, new_issuer_key, publish_issuer_key


@dataclass(frozen=True)
class Signer:
    """Mints the tests' access tokens."""

    issuer: str
    key: ECKey

    def headers(
        self, scope: str, *, agency: str = "ito", subject: str = "console"
    ) -> dict[str, str]:
        return agency_bearer(self.key, self.issuer, agency, scope, subject=subject)


@dataclass(frozen=True)
class InProcess:
    client: httpx.AsyncClient
    runtime: Runtime
    signer: Signer


@asynccontextmanager
async def metrics_in_process(
    name: str,
    credentials_file: Callable[[str], str],
    kafka_admin: KafkaAccess,
    database_urls: Mapping[str, str],
) -> AsyncIterator[InProcess]:
    """The service up, with a client of its API; returns once it trusts the tests' tokens.

    `name` names the issuer and its key, so that each test module has its own.
    """
    issuer = f"https://identity.{name}"
    key, record = new_issuer_key(issuer, f"{name}-{uuid.uuid4().hex[:8]}")
    await publish_issuer_key(kafka_admin, record, client_id=name)
    signer = Signer(issuer, key)
    settings = MetricsSettings(
        kafka_credentials_file=credentials_file("metrics"),
        database_url=database_urls["metrics"],
        token_issuer=issuer,
    ).model_copy(update={"load_reference_when_empty": False})
    app = build(settings)
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        keys = runtime.issuer_keys
        assert keys is not None
        probe = signer.headers("programme:admin")["authorization"].removeprefix("Bearer ")

        def verifies() -> bool:
            try:
                keys.verify(probe)
            except InvalidToken:
                return False
            return True

        await eventually(verifies)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://metrics") as client:
            yield InProcess(client, runtime, signer)
