"""docker-compose.yml is valid, runs exactly what the local platform runs, and gives each
service its own database role; only `init` is PostgreSQL's superuser."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from infra.platform import SERVICE_PROCESSES, ServiceProcess
from infra.platform.paths import REPO_ROOT, kafka_version
from shared.db import SERVICES, role_of
from shared.principals import ADMIN, PRINCIPALS

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"

#: What an operator must set: distinct values, so each DSN shows whose password it holds.
SECRETS = {
    "PANJEREH_POSTGRES_PASSWORD": "superuser-secret",
    **{f"PANJEREH_{s.upper()}_DATABASE_PASSWORD": f"{s}-secret" for s in SERVICES},
    "PANJEREH_DATA_KEY": "ZGF0YS1rZXktb2YtdGhlLWNvbXBvc2UtdGVzdC0zMmI=",
    **{
        f"PANJEREH_KAFKA_PASSWORD_{name.upper().replace('-', '_')}": f"kafka-{name}-secret"
        for name in (ADMIN, *(spec.name.value for spec in PRINCIPALS))
    },
    "PANJEREH_IDENTITY_SMS_GATEWAY_PUBLIC_KEY": "c21zLWdhdGV3YXktb2YtdGhlLWNvbXBvc2UtdGVzdDI=",
    "PANJEREH_IDENTITY_OPERATOR_CHECK_URL": "https://regulator.example/mobile-ownership",
}
#: The processes that seal private keys, and so need the data key.
SEALING = {"identity", "exchange"}


def _compose_config(**extra_env: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("docker-compose") is None:
        pytest.fail("docker-compose is not installed: run infra/bootstrap.sh")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANJEREH_")}
    env.update(extra_env)
    return subprocess.run(
        ["docker-compose", "-f", str(COMPOSE_FILE), "config"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    result = _compose_config(**SECRETS)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


@pytest.mark.parametrize("missing", SECRETS)
def test_secrets_are_required(missing: str) -> None:
    result = _compose_config(**{k: v for k, v in SECRETS.items() if k != missing})
    assert result.returncode != 0
    assert missing in result.stderr


def test_services_are_the_local_process_table(compose: dict[str, Any]) -> None:
    ours = {p.name for p in SERVICE_PROCESSES}
    assert set(compose["services"]) == ours | {"kafka", "kafka-config", "postgres", "init"}


@pytest.mark.parametrize("process", SERVICE_PROCESSES, ids=lambda p: p.name)
def test_commands_match_local(compose: dict[str, Any], process: ServiceProcess) -> None:
    service = compose["services"][process.name]
    assert service["command"] == ["python", *process.args()]
    assert service["environment"]["PANJEREH_HTTP_HOST"] == "0.0.0.0"
    assert service["environment"]["PANJEREH_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert service["depends_on"]["init"]["condition"] == "service_completed_successfully"
    assert "build" in service


@pytest.mark.parametrize("process", SERVICE_PROCESSES, ids=lambda p: p.name)
def test_each_process_connects_to_kafka_as_its_own_principal_over_tls(
    compose: dict[str, Any], process: ServiceProcess
) -> None:
    environment = compose["services"][process.name]["environment"]
    assert environment["PANJEREH_KAFKA_USERNAME"] == process.principal
    assert environment["PANJEREH_KAFKA_PASSWORD"] == f"kafka-{process.principal}-secret"
    assert environment["PANJEREH_KAFKA_CA_FILE"] == "/tls/ca.pem"
    others = {v for k, v in SECRETS.items() if k.startswith("PANJEREH_KAFKA_PASSWORD_")}
    others.discard(f"kafka-{process.principal}-secret")
    assert not [secret for secret in others if secret in str(environment)]


def test_only_init_and_the_access_manager_are_the_brokers_admin(compose: dict[str, Any]) -> None:
    admins = {
        name
        for name, service in compose["services"].items()
        if service.get("environment", {}).get("PANJEREH_KAFKA_USERNAME") == ADMIN
    }
    assert admins == {"init", "access-manager"}


def test_init_runs_panjereh_init_after_healthy_infrastructure(compose: dict[str, Any]) -> None:
    init = compose["services"]["init"]
    assert init["command"] == ["panjereh", "init"]
    assert init["depends_on"] == {
        "kafka": {"condition": "service_healthy"},
        "postgres": {"condition": "service_healthy"},
    }


def test_kafka_image_is_the_pinned_release(compose: dict[str, Any]) -> None:
    assert compose["services"]["kafka"]["image"] == f"apache/kafka:{kafka_version()}"
    assert compose["services"]["postgres"]["image"].startswith("postgres:")
    for name in ("kafka", "postgres"):
        assert "healthcheck" in compose["services"][name]


@pytest.mark.parametrize(
    "process", [p for p in SERVICE_PROCESSES if p.service is not None], ids=lambda p: p.name
)
def test_each_process_logs_in_as_its_services_own_role(
    compose: dict[str, Any], process: ServiceProcess
) -> None:
    environment = compose["services"][process.name]["environment"]
    dsn = urlsplit(environment["PANJEREH_DATABASE_URL"])
    assert process.service is not None
    assert dsn.username == role_of(process.service)
    assert dsn.password == f"{process.service}-secret"
    assert (dsn.hostname, dsn.port, dsn.path) == ("postgres", 5432, "/panjereh")
    assert "superuser-secret" not in str(environment)
    assert ("PANJEREH_DATA_KEY" in environment) == (process.name in SEALING)


def test_only_init_is_the_superuser_and_sets_every_roles_password(
    compose: dict[str, Any],
) -> None:
    environment = compose["services"]["init"]["environment"]
    dsn = urlsplit(environment["PANJEREH_DATABASE_URL"])
    assert (dsn.username, dsn.password) == ("postgres", "superuser-secret")
    for service in SERVICES:
        assert environment[f"PANJEREH_{service.upper()}_DATABASE_PASSWORD"] == f"{service}-secret"
    postgres = compose["services"]["postgres"]["environment"]
    assert postgres["POSTGRES_USER"] == "postgres"
    assert postgres["POSTGRES_PASSWORD"] == "superuser-secret"
    assert postgres["POSTGRES_HOST_AUTH_METHOD"] == "scram-sha-256"
