"""The Helm chart lints and renders, runs exactly the process table with what compose gives
each process, and makes the registers' topics and users (with their ACLs) as Strimzi
resources."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import strimzi
from infra.platform import SERVICE_PROCESSES, ServiceProcess
from infra.platform.paths import REPO_ROOT
from shared.acl import AclBinding, declared_bindings
from shared.db import role_of
from shared.principals import ADMIN, PRINCIPALS
from tests.compose import SECRETS, rendered

CHART = REPO_ROOT / "deploy" / "helm" / "panjereh"
HELM = REPO_ROOT / ".venv" / "bin" / "helm"
#: The simulator is for development; the chart deploys production.
DEPLOYED = [p for p in SERVICE_PROCESSES if p.name != "simulator"]
SECRET_KEYS: set[str] = {
    "postgres-password",
    *(f"{service}-database-password" for service in ("identity", "catalog", "exchange", "metrics")),
    "data-key",
    "identity-pseudonym-key",
    "identity-operator-token",
    "metrics-token",
    *(
        f"kafka-password-{name}"
        for name in (ADMIN, *(s.name.value for s in PRINCIPALS if not s.development_only))
    ),
}
SECRET_VALUES = {key: f"{key}-value" for key in SECRET_KEYS}
REQUIRED: dict[str, Any] = {
    "identity": {
        "smsGatewayPublicKey": "c21zLWdhdGV3YXktb2YtdGhlLWNvbXBvc2UtdGVzdDI=",
        "operatorCheckUrl": "https://regulator.example/mobile-ownership",
    },
    "secrets": {"values": SECRET_VALUES},
}


def helm(
    *args: str, values: dict[str, Any] | None, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    if not HELM.exists():
        pytest.fail("helm is not installed: run infra/bootstrap.sh")
    given: list[str] = []
    if values is not None:
        path = tmp_path / "values.yaml"
        path.write_text(yaml.safe_dump(values))
        given = ["-f", str(path)]
    return subprocess.run(
        [str(HELM), *args, str(CHART), *given],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def render(values: dict[str, Any], tmp_path: Path) -> list[dict[str, Any]]:
    result = helm("template", "panjereh", values=values, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return render(REQUIRED, tmp_path_factory.mktemp("helm"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml's services as rendered from the example secrets, once."""
    services: dict[str, Any] = rendered(SECRETS)["services"]
    return services


def of_kind(manifests: list[dict[str, Any]], *kinds: str) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] in kinds}


def workload(manifests: list[dict[str, Any]], process: ServiceProcess) -> dict[str, Any]:
    found = of_kind(manifests, "Deployment", "StatefulSet")[f"panjereh-{process.name}"]
    return found


def container(manifests: list[dict[str, Any]], process: ServiceProcess) -> dict[str, Any]:
    (only,) = workload(manifests, process)["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = only
    return result


def env_of(manifests: list[dict[str, Any]], process: ServiceProcess) -> dict[str, Any]:
    return {
        e["name"]: e.get("value", e.get("valueFrom")) for e in container(manifests, process)["env"]
    }


def test_the_register_file_is_what_panjereh_strimzi_prints() -> None:
    assert (CHART / "files" / "register.yaml").read_text() == strimzi.render(), (
        "deploy/helm/panjereh/files/register.yaml is stale: "
        "run `panjereh strimzi > deploy/helm/panjereh/files/register.yaml`"
    )


def test_the_chart_lints_strictly(tmp_path: Path) -> None:
    result = helm("lint", "--strict", values=REQUIRED, tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("missing", ["data-key", "kafka-password-exchange", "postgres-password"])
def test_a_missing_secret_stops_the_render_with_its_name(missing: str, tmp_path: Path) -> None:
    values = {**REQUIRED, "secrets": {"values": {**SECRET_VALUES, missing: ""}}}
    result = helm("template", "panjereh", values=values, tmp_path=tmp_path)
    assert result.returncode != 0
    assert f"secrets.values.{missing} is required" in result.stderr


def test_an_existing_secret_is_used_instead_of_one_from_values(tmp_path: Path) -> None:
    values = {"identity": REQUIRED["identity"], "secrets": {"existingSecret": "vault-made"}}
    manifests = render(values, tmp_path)
    assert not of_kind(manifests, "Secret")
    refs = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for process in DEPLOYED
        for e in container(manifests, process)["env"]
        if "valueFrom" in e
    }
    assert refs == {"vault-made"}


def test_every_process_of_the_table_and_no_other_is_deployed(
    manifests: list[dict[str, Any]],
) -> None:
    names = set(of_kind(manifests, "Deployment", "StatefulSet"))
    assert names == {f"panjereh-{p.name}" for p in DEPLOYED}


@pytest.mark.parametrize("process", DEPLOYED, ids=lambda p: p.name)
def test_each_process_runs_its_module_with_probes_on_its_health(
    manifests: list[dict[str, Any]], compose: dict[str, Any], process: ServiceProcess
) -> None:
    running = container(manifests, process)
    assert running["command"] == ["python", *process.args()]
    (port,) = running["ports"]
    service = compose[process.name]
    assert f":{port['containerPort']}/health" in " ".join(service["healthcheck"]["test"])
    for probe in ("readinessProbe", "livenessProbe"):
        assert running[probe]["httpGet"] == {"path": "/health", "port": "http"}
    assert running["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize("process", DEPLOYED, ids=lambda p: p.name)
def test_each_process_connects_as_its_own_principal_and_database_role(
    manifests: list[dict[str, Any]], process: ServiceProcess
) -> None:
    env = env_of(manifests, process)
    assert env["PANJEREH_KAFKA_USERNAME"] == process.principal
    assert (
        env["PANJEREH_KAFKA_PASSWORD"]["secretKeyRef"]["key"]
        == f"kafka-password-{process.principal}"
    )
    if process.service is None:
        assert "PANJEREH_DATABASE_URL" not in env
    else:
        role = role_of(process.service)
        assert env["PANJEREH_DATABASE_URL"].startswith(f"postgresql://{role}:$(")
        password = env["PANJEREH_DATABASE_PASSWORD_FOR_URL"]["secretKeyRef"]["key"]
        assert password == f"{process.service}-database-password"


@pytest.mark.parametrize("process", DEPLOYED, ids=lambda p: p.name)
def test_each_process_gets_every_variable_compose_gives_it(
    manifests: list[dict[str, Any]], compose: dict[str, Any], process: ServiceProcess
) -> None:
    given = set(compose[process.name]["environment"])
    chart = set(env_of(manifests, process)) - {"PANJEREH_DATABASE_PASSWORD_FOR_URL"}
    # No simulator in the chart, so no port of its.
    assert chart == given - {"PANJEREH_SIMULATOR_PORT"}


@pytest.mark.parametrize("process", DEPLOYED, ids=lambda p: p.name)
def test_processes_that_keep_state_are_stateful_sets_writing_only_to_their_volume(
    manifests: list[dict[str, Any]], compose: dict[str, Any], process: ServiceProcess
) -> None:
    kept = workload(manifests, process)
    volumes = compose[process.name].get("volumes", [])
    writable = [v.split(":")[1] for v in volumes if not v.endswith(":ro")]
    if not writable:
        assert kept["kind"] == "Deployment"
        return
    assert kept["kind"] == "StatefulSet"
    (claim,) = kept["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in container(manifests, process)["volumeMounts"]}
    assert [mounts[claim["metadata"]["name"]]] == writable


def test_init_runs_panjereh_init_as_the_admin_and_the_superuser(
    manifests: list[dict[str, Any]], compose: dict[str, Any]
) -> None:
    (job,) = of_kind(manifests, "Job").values()
    (init,) = job["spec"]["template"]["spec"]["containers"]
    assert init["command"] == ["panjereh", "init"]
    env = {e["name"] for e in init["env"]}
    given = set(compose["init"]["environment"])
    development_only = {"PANJEREH_SIMULATOR_PORT", "PANJEREH_KAFKA_PASSWORD_SIMULATOR"}
    assert env - {"PANJEREH_DATABASE_PASSWORD_FOR_URL"} == given - development_only


def test_every_shared_topic_is_a_kafka_topic_on_three_replicas_two_in_sync(
    manifests: list[dict[str, Any]],
) -> None:
    topics = {t["spec"]["topicName"]: t["spec"] for t in of_kind(manifests, "KafkaTopic").values()}
    expected = strimzi.production_topics()
    assert set(topics) == {spec.name for spec in expected}
    for spec in expected:
        made = topics[spec.name]
        assert made["partitions"] == spec.partitions
        assert made["replicas"] == 3
        assert made["config"]["min.insync.replicas"] == "2"
        assert made["config"]["cleanup.policy"] == spec.cleanup_policy
        assert made["config"]["retention.ms"] == spec.broker_config()["retention.ms"]


def test_every_principal_is_a_kafka_user_with_exactly_the_registers_acls(
    manifests: list[dict[str, Any]],
) -> None:
    users = of_kind(manifests, "KafkaUser")
    assert set(users) == {ADMIN, *(s.name.value for s in PRINCIPALS if not s.development_only)}
    back = {"transactionalId": "transactional_id", "prefix": "prefixed"}
    granted = set()
    for name, user in users.items():
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"
        key = user["spec"]["authentication"]["password"]["valueFrom"]["secretKeyRef"]["key"]
        assert key == f"kafka-password-{name}"
        for rule in user["spec"].get("authorization", {}).get("acls", []):
            resource = rule["resource"]
            for operation in rule["operations"]:
                granted.add(
                    AclBinding(
                        name,
                        back.get(resource["type"], resource["type"]),
                        resource["name"],
                        back.get(resource["patternType"], resource["patternType"]),
                        operation.lower(),
                    )
                )
    assert "authorization" not in users[ADMIN]["spec"]
    assert granted == declared_bindings(development=False)


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    values = {**REQUIRED, "monitoring": {"enabled": True, "labels": {"release": "prom"}}}
    return render(values, tmp_path_factory.mktemp("helm-monitoring"))


def test_monitoring_is_off_unless_enabled(manifests: list[dict[str, Any]]) -> None:
    assert not of_kind(manifests, "ServiceMonitor", "PrometheusRule")


def test_each_process_is_scraped_with_the_metrics_secret_as_its_job(
    monitored: list[dict[str, Any]],
) -> None:
    monitors = of_kind(monitored, "ServiceMonitor")
    assert set(monitors) == {f"panjereh-{process.name}" for process in DEPLOYED}
    for process in DEPLOYED:
        monitor = monitors[f"panjereh-{process.name}"]
        assert monitor["metadata"]["labels"]["release"] == "prom"
        (endpoint,) = monitor["spec"]["endpoints"]
        assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
        assert endpoint["authorization"]["credentials"] == {
            "name": "panjereh-secrets",
            "key": "metrics-token",
        }
        assert endpoint["relabelings"] == [
            {"targetLabel": "job", "replacement": f"panjereh-{process.name}"}
        ]
        assert env_of(monitored, process)["PANJEREH_METRICS_TOKEN"] == {
            "secretKeyRef": {"name": "panjereh-secrets", "key": "metrics-token"}
        }


def test_the_alert_rules_and_the_dashboard_are_the_files_compose_mounts(
    monitored: list[dict[str, Any]],
) -> None:
    files = CHART / "files" / "monitoring"
    (rules,) = of_kind(monitored, "PrometheusRule").values()
    assert rules["spec"] == yaml.safe_load((files / "alerts.yaml").read_text())
    (dashboard,) = of_kind(monitored, "ConfigMap").values()
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["data"]["panjereh.json"] == (files / "dashboard.json").read_text().rstrip("\n")
