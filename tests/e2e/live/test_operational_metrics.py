"""Every process of the running platform serves its operational metrics, and they move
with the simulator's traffic: sign-ins, exchange round trips and their steps, consumer
lag, the outbox, the audit log's anchoring, the worker's events; route labels are the
services' route templates, never a path with an id in it."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from infra.platform import LocalPlatform
from services.metrics.worker.store import MEMORY_BUDGET
from tests.scrape import lint, scrape, values
from tests.slots import e2e_ports

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

PORTS = e2e_ports()
SERVICES = {
    "identity": PORTS.identity,
    "catalog": PORTS.catalog,
    "exchange": PORTS.exchange,
    "metrics": PORTS.metrics,
}
#: Routes every FastAPI process has besides its API's, and the dashboard's pages, which
#: the metrics service keeps out of its API's schema.
OWN_ROUTES = {"/health", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
PAGES = {"/", "/static/{name}"}


def metrics_of(port: int) -> str:
    answer = scrape(f"http://127.0.0.1:{port}/metrics")
    assert answer.status_code == 200, answer.text
    return answer.text


def total(text: str, name: str, **labels: str) -> float:
    return sum(
        value
        for found, value in values(text, name)
        if all(found.get(key) == wanted for key, wanted in labels.items())
    )


def until(port: int, moved: Callable[[str], bool], timeout: float = 120) -> str:
    """The process's exposition once `moved` holds of it."""
    deadline = time.monotonic() + timeout
    while True:
        text = metrics_of(port)
        if moved(text) or time.monotonic() > deadline:
            return text
        time.sleep(2)


@pytest.mark.parametrize(
    "port",
    [*SERVICES.values(), PORTS.metrics_worker, PORTS.access_manager],
    ids=[*SERVICES, "metrics-worker", "access-manager"],
)
def test_every_process_is_ready_and_its_exposition_lints_clean(
    platform: LocalPlatform, port: int
) -> None:
    text = metrics_of(port)
    assert values(text, "panjereh_process_ready") == [({}, 1.0)]
    assert total(text, "process_resident_memory_bytes") > 0
    assert not lint(text)


def test_sign_ins_are_counted_by_outcome(platform: LocalPlatform) -> None:
    text = until(
        PORTS.identity,
        lambda t: total(t, "panjereh_identity_sign_ins_total", outcome="signed_in") > 0,
    )
    assert total(text, "panjereh_identity_sign_ins_total", outcome="signed_in") > 0


def test_the_exchanges_round_trips_steps_lag_outbox_and_audit_anchoring(
    platform: LocalPlatform,
) -> None:
    def answered(text: str) -> float:
        return total(text, "panjereh_exchange_round_trip_seconds_count", outcome="answered")

    first = until(PORTS.exchange, lambda t: answered(t) > 0)
    later = until(PORTS.exchange, lambda t: answered(t) > answered(first))
    assert answered(later) > answered(first) > 0
    provider = total(later, "panjereh_exchange_step_seconds_count", step="provider")
    exchange = total(later, "panjereh_exchange_step_seconds_count", step="exchange")
    assert provider == exchange > 0
    # Its consumers hold agencies' channels, each partition's lag read at the scrape.
    lags = values(later, "panjereh_consumer_lag_records")
    assert any(labels["topic"].startswith("agency.") for labels, _ in lags), lags
    assert all(value >= 0 for _, value in lags)
    # The relay keeps up with a few requests a second, and checkpoints every few seconds.
    assert total(later, "panjereh_outbox_oldest_age_seconds") < 60
    assert total(later, "panjereh_exchange_audit_oldest_unanchored_age_seconds") < 60
    # Reading lag while the group rebalances (agencies' channels still appearing) may
    # outlast a scrape's two seconds; the other readings never may.
    failed = values(later, "panjereh_metrics_probe_failures_total")
    assert not [labels for labels, _ in failed if labels["probe"] != "consumer-lag"], failed


def test_the_worker_counts_events_and_holds_its_lag(platform: LocalPlatform) -> None:
    text = until(PORTS.metrics_worker, lambda t: total(t, "panjereh_worker_events_total") > 0)
    assert total(text, "panjereh_worker_events_total") > 0
    assert values(text, "panjereh_worker_recovering") == [({}, 0.0)]
    assert values(text, "panjereh_worker_lag_records"), "no partition's lag"
    ((_, rocksdb_memory),) = values(text, "panjereh_worker_rocksdb_memory_bytes")
    assert 0 < rocksdb_memory <= MEMORY_BUDGET


@pytest.mark.parametrize("service", SERVICES)
def test_requests_are_labelled_by_the_services_own_route_templates(
    platform: LocalPlatform, service: str
) -> None:
    port = SERVICES[service]
    httpx.get(f"http://127.0.0.1:{port}/no/such/path/12345", timeout=10)
    text = metrics_of(port)
    routes = {labels["route"] for labels, _ in values(text, "panjereh_http_requests_total")}
    api = httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=10).json()
    known = set(api["paths"]) | OWN_ROUTES | PAGES | {"unmatched"}
    assert "unmatched" in routes
    assert routes <= known, routes - known
