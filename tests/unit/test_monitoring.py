"""The alert rules and the dashboard: promtool accepts and tests the rules, and every metric
they use is one the code exports; what the code exports is named and labelled as
Prometheus expects, and scraped only as the settings allow."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from prometheus_client.metrics import MetricWrapperBase

from infra.platform import SERVICE_PROCESSES
from infra.platform.paths import REPO_ROOT
from shared import operational_metrics
from shared.operational_metrics import HTTP_REQUESTS, HttpMetrics, exposition, scrape_allowed
from tests.compose import SECRETS, compose_config
from tests.scrape import lint, promtool, sample_names

FILES = REPO_ROOT / "deploy" / "helm" / "panjereh" / "files" / "monitoring"
ALERTS = FILES / "alerts.yaml"
DASHBOARD = FILES / "dashboard.json"
RULE_TESTS = REPO_ROOT / "tests" / "prometheus" / "alerts_test.yaml"
MONITORING = REPO_ROOT / "deploy" / "monitoring"
#: Series Prometheus makes itself for every target.
PROMETHEUS_OWN = {"up"}
_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
}
_PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "le", "inf", "nan"}


def declared() -> dict[str, MetricWrapperBase]:
    return {
        name: metric
        for name, metric in vars(operational_metrics).items()
        if isinstance(metric, MetricWrapperBase)
    }


def exported_series() -> set[str]:
    """Every series name the code can export: the declared metrics' and the process's."""
    names = {
        family.name + suffix
        for metric in declared().values()
        for family in metric.describe()
        for suffix in _SUFFIXES[family.type]
    }
    process = {n for n in sample_names(asyncio.run(exposition()).decode()) if "process_" in n}
    return names | process


def metrics_in(expression: str) -> set[str]:
    """The series an expression reads: its identifiers, less functions, keywords and
    what sits inside label matchers, ranges and grouping clauses."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    found = set()
    # Not after a digit: the `m` of `5m` is a unit, not a series.
    for match in re.finditer(r"(?<![0-9a-zA-Z_:.])[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        if match.group().lower() not in _PROMQL_WORDS:
            found.add(match.group())
    return found


def alert_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = [
        rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]
    ]
    return rules


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def run_promtool(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_accepts_the_alert_rules() -> None:
    checked = run_promtool("check", "rules", str(ALERTS))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_each_alert_fires_on_its_condition_and_not_otherwise() -> None:
    tested = run_promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_rule_test() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test.get("alert_rule_test", [])}
    assert tested == {rule["alert"] for rule in alert_rules()}
    # Each alert is shown firing at least once, not only staying quiet.
    firing = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert firing == tested


@pytest.mark.parametrize(
    "expression",
    [rule["expr"] for rule in alert_rules()] + dashboard_expressions(),
)
def test_every_series_an_alert_or_a_panel_reads_is_exported(expression: str) -> None:
    used = metrics_in(expression)
    assert used, f"no metric found in {expression!r}"
    unknown = used - exported_series() - PROMETHEUS_OWN
    assert not unknown, f"{sorted(unknown)} are not exported by any process"


def test_every_declared_metric_is_on_the_dashboard_or_in_an_alert() -> None:
    used = {
        name
        for expression in [rule["expr"] for rule in alert_rules()] + dashboard_expressions()
        for name in metrics_in(expression)
    }
    for name, metric in declared().items():
        (family,) = metric.describe()
        assert any(family.name + suffix in used for suffix in _SUFFIXES[family.type]), name


def test_the_reader_of_expressions_finds_metrics_not_functions_or_labels() -> None:
    assert metrics_in(
        'histogram_quantile(0.99, sum by (le, job) (rate(a_bucket{job=~"x.*"}[5m]))) > 1'
        " and on (job) b_total offset 5m"
    ) == {"a_bucket", "b_total"}


def test_the_exposition_has_nothing_promtool_lints() -> None:
    HTTP_REQUESTS.labels("/lint", "GET", "200").inc()
    text = asyncio.run(exposition()).decode()
    assert "panjereh_http_requests_total" in text
    assert not lint(text)


def test_requests_are_counted_by_route_template_and_unmatched_paths_as_one() -> None:
    app = FastAPI()
    app.add_middleware(HttpMetrics)
    router = APIRouter(prefix="/agencies-under-test")

    @router.get("/{code}")
    async def agency(code: str) -> dict[str, str]:
        return {"code": code}

    app.include_router(router)
    client = TestClient(app)
    for code in ("a", "b", "c"):
        client.get(f"/agencies-under-test/{code}")
    before = HTTP_REQUESTS.labels("unmatched", "GET", "404")._value.get()
    client.get("/scanner/one")
    client.get("/scanner/two")
    labels = [
        sample.labels
        for family in HTTP_REQUESTS.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    ]
    assert {"route": "/agencies-under-test/{code}", "method": "GET", "status": "200"} in labels
    assert not [labels for labels in labels if "/agencies-under-test/a" in labels["route"]]
    assert HTTP_REQUESTS.labels("unmatched", "GET", "404")._value.get() == before + 2


@pytest.mark.parametrize(
    ("authorization", "token", "open_without_token", "allowed"),
    [
        (None, "", True, True),  # development: no secret set, metrics open
        (None, "", False, False),  # production without a secret: no one
        ("Bearer s3cret", "", False, False),
        (None, "s3cret", True, False),
        ("Bearer wrong", "s3cret", True, False),
        ("Basic s3cret", "s3cret", False, False),
        ("Bearer s3cret", "s3cret", False, True),
        ("bearer s3cret", "s3cret", False, True),
    ],
)
def test_a_scrape_is_allowed_only_with_the_secret_once_one_is_set(
    authorization: str | None, token: str, open_without_token: bool, allowed: bool
) -> None:
    assert scrape_allowed(authorization, token, open_without_token=open_without_token) is allowed


def test_prometheus_scrapes_each_process_under_the_job_the_alerts_name(tmp_path: Path) -> None:
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert jobs == {f"panjereh-{p.name}" for p in SERVICE_PROCESSES if p.name != "simulator"}
    # promtool checks the file with its paths pointed at this checkout's files.
    token = tmp_path / "token"
    token.write_text("t")
    text = (MONITORING / "prometheus.yml").read_text()
    text = text.replace("/etc/prometheus/rules/alerts.yaml", str(ALERTS))
    text = text.replace("/run/panjereh/metrics-token", str(token))
    (tmp_path / "prometheus.yml").write_text(text)
    checked = run_promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_compose_monitoring_file_mounts_the_charts_rules_and_dashboard() -> None:
    env = {
        **SECRETS,
        "PANJEREH_GRAFANA_ADMIN_PASSWORD": "grafana-admin-of-the-compose-test",
    }
    result = compose_config(env, MONITORING / "docker-compose.monitoring.yml")
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    mounts = {
        volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
        for name in ("prometheus", "grafana")
        for volume in services[name]["volumes"]
    }
    assert {str(ALERTS), str(DASHBOARD), str(MONITORING / "prometheus.yml")} <= mounts
