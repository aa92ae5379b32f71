"""A real Prometheus (Debian's package) on loopback scrapes every process of the running
platform with the platform's alert rules loaded, and answers queries for the
operational metrics with values that move under the simulator's load."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from infra.platform import LocalPlatform
from infra.platform.paths import REPO_ROOT
from tests.slots import e2e_ports

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

PORTS = e2e_ports()
ALERTS = REPO_ROOT / "deploy" / "helm" / "panjereh" / "files" / "monitoring" / "alerts.yaml"
TARGETS = {
    "access-manager": PORTS.access_manager,
    "identity": PORTS.identity,
    "catalog": PORTS.catalog,
    "exchange": PORTS.exchange,
    "metrics": PORTS.metrics,
    "metrics-worker": PORTS.metrics_worker,
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def prometheus(platform: LocalPlatform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prometheus scraping the platform every three seconds (a scrape reads lag, the
    outbox and the audit log, each given up to two), as the monitoring files name the
    jobs (`panjereh-<process>`); its HTTP API's address."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed: run infra/bootstrap.sh")
    home = tmp_path_factory.mktemp("prometheus")
    config = {
        "global": {"scrape_interval": "3s", "scrape_timeout": "3s", "evaluation_interval": "3s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {"job_name": f"panjereh-{name}", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
            for name, port in TARGETS.items()
        ],
    }
    (home / "prometheus.yml").write_text(yaml.safe_dump(config))
    address = f"127.0.0.1:{free_port()}"
    log = (home / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={home / 'prometheus.yml'}",
            f"--storage.tsdb.path={home / 'data'}",
            f"--web.listen-address={address}",
        ],
        stdout=log,
        stderr=log,
    )
    url = f"http://{address}"
    try:
        deadline = time.monotonic() + 60
        while not ready(url):
            assert process.poll() is None, (home / "prometheus.log").read_text()
            assert time.monotonic() < deadline, "prometheus never became ready"
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def query(url: str, expression: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{url}/api/v1/query", params={"query": expression}, timeout=10)
    answer.raise_for_status()
    body = answer.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def scalar(url: str, expression: str) -> float:
    result = query(url, expression)
    return float(result[0]["value"][1]) if result else 0.0


def until(check: Any, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(1)


def test_prometheus_scrapes_every_process_and_loads_the_alert_rules(prometheus: str) -> None:
    def all_up() -> set[str]:
        up = query(prometheus, 'up{job=~"panjereh-.*"} == 1')
        jobs = {series["metric"]["job"] for series in up}
        return jobs if jobs == {f"panjereh-{name}" for name in TARGETS} else set()

    assert until(all_up), query(prometheus, "up")
    ready_jobs = {s["metric"]["job"] for s in query(prometheus, "panjereh_process_ready == 1")}
    assert ready_jobs == {f"panjereh-{name}" for name in TARGETS}
    rules = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    alerting = [rule for group in rules for rule in group["rules"] if rule["type"] == "alerting"]
    assert {rule["name"] for rule in alerting} == {
        rule["alert"]
        for group in yaml.safe_load(ALERTS.read_text())["groups"]
        for rule in group["rules"]
    }
    assert all(rule["health"] != "err" for rule in alerting), alerting


@pytest.mark.parametrize(
    "counter",
    [
        "panjereh_http_requests_total",
        'panjereh_identity_sign_ins_total{outcome="signed_in"}',
        "panjereh_exchange_round_trip_seconds_count",
        'panjereh_exchange_step_seconds_count{step="provider"}',
        "panjereh_worker_events_total",
        'panjereh_consumer_batch_duration_seconds_count{job="panjereh-catalog"}',
        'process_cpu_seconds_total{job=~"panjereh-.*"}',
    ],
)
def test_the_metrics_move_under_the_simulators_load(prometheus: str, counter: str) -> None:
    moved = f"sum(increase({counter}[30s]))"
    assert until(lambda: scalar(prometheus, moved) > 0), f"{counter} did not move"


def test_the_gauges_read_at_each_scrape_are_there_to_query(prometheus: str) -> None:
    lag = until(lambda: query(prometheus, 'panjereh_consumer_lag_records{job="panjereh-exchange"}'))
    assert any(s["metric"]["topic"].startswith("agency.") for s in lag)
    assert until(lambda: query(prometheus, "panjereh_outbox_oldest_age_seconds"))
    assert until(lambda: query(prometheus, "panjereh_worker_lag_records"))
    assert scalar(prometheus, "max(panjereh_exchange_audit_oldest_unanchored_age_seconds)") < 60
    latency = query(
        prometheus,
        "histogram_quantile(0.99, sum by (le) "
        "(rate(panjereh_http_request_duration_seconds_bucket[30s])))",
    )
    assert latency, "no request latency to take a quantile of"
    p99 = float(latency[0]["value"][1])
    assert 0 < p99 < 30, p99
