"""The abuse suite's platform: brought up once for the package, as `panjereh up` runs it,
in a home and on ports of its own, and the real tokens of every kind of caller."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from infra.platform import LocalPlatform
from tests.abuse.users import Tokens, tokens_of_every_kind, until_accepted
from tests.e2e.running import platform_up, simulator_at
from tests.slots import e2e_ports

PORTS = e2e_ports()
IDENTITY = f"http://127.0.0.1:{PORTS.identity}"
CATALOG = f"http://127.0.0.1:{PORTS.catalog}"
EXCHANGE = f"http://127.0.0.1:{PORTS.exchange}"
METRICS = f"http://127.0.0.1:{PORTS.metrics}"
METRICS_WORKER = f"http://127.0.0.1:{PORTS.metrics_worker}"


@pytest.fixture(scope="package")
def platform() -> Iterator[LocalPlatform]:
    # The simulator's traffic would only compete with the suite for two cores and make
    # the services' logs harder to read; its processes still run, so every consumer is
    # there.
    quiet = simulator_at(deliveries=0, sign_ins=0, requests=0, provincial_reports=False)
    with platform_up("panjereh-abuse-", settings=quiet) as running:
        yield running


@pytest.fixture(scope="package")
async def tokens(platform: LocalPlatform) -> Tokens:
    issued = await tokens_of_every_kind(IDENTITY, platform.kafka_admin)
    # The catalog, the exchange and the metrics service trust identity's key once they
    # have read it.
    await until_accepted(CATALOG, "POST", "/services/abuse.nothing/publish", issued.agency)
    await until_accepted(EXCHANGE, "GET", "/citizens/me/data-requests", issued.citizen)
    await until_accepted(METRICS, "POST", "/api/programme/observations", issued.operator_agency)
    return issued


def service_log(platform: LocalPlatform, service: str) -> str:
    """The tail of a service's log, to show beside a failure."""
    path = platform.home / "logs" / f"{service}.log"
    if not path.exists():
        return ""
    with path.open("rb") as handle:
        handle.seek(max(0, os.path.getsize(path) - 4000))
        return handle.read().decode(errors="replace")
