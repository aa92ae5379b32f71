"""One live platform for the modules here, brought up once: development, the reference
register loaded, and the traffic simulator running at a low, steady rate; every process
exports its traces to one collector.

Bringing the platform up with the reference register costs most of a minute (its
agencies' channels, principals and ACLs); these modules need the same platform and
tolerate each other's traffic, so they share it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from joserfc.jwk import ECKey

from infra.platform import LocalPlatform
from tests.e2e.running import platform_up, simulator_at
from tests.otlp import Collector, collecting
from tests.slots import e2e_ports
from tests.tokens import agency_bearer, new_issuer_key, publish_issuer_key

# The issuer the platform's services trust: identity's own (the tests stand in for it).
ISSUER = f"http://127.0.0.1:{e2e_ports().identity}"


@pytest.fixture(scope="package")
def collector() -> Iterator[Collector]:
    """Where every process of the platform sends its traces (OTLP/HTTP)."""
    with collecting() as server:
        yield server


@pytest.fixture(scope="package")
def platform(collector: Collector) -> Iterator[LocalPlatform]:
    traffic = simulator_at(deliveries=10, sign_ins=2, requests=5)
    tracing = {
        "PANJEREH_TRACE_EXPORTER": "otlp",
        "PANJEREH_OTLP_ENDPOINT": collector.endpoint,
        # Only traces a caller samples: the simulator's traffic would otherwise export
        # hundreds of spans a second, which the tests here do not look at.
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0",
    }
    with platform_up("panjereh-e2e-live-", settings=traffic | tracing) as running:
        yield running


@pytest.fixture(scope="package")
async def key(platform: LocalPlatform) -> ECKey:
    """A token-signing key published on `identity.issuer-keys`, as identity would."""
    signing, record = new_issuer_key(ISSUER, f"live-e2e-{uuid.uuid4().hex[:8]}")
    await publish_issuer_key(platform.kafka_admin, record, client_id="live-e2e")
    return signing


def bearer(key: ECKey, agency: str, scope: str) -> dict[str, str]:
    """An agency system's access token for `scope`, signed with `key`."""
    return agency_bearer(key, ISSUER, agency, scope)
