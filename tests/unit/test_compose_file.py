"""docker-compose.yml is valid, runs exactly what the local platform runs, and gives each
service its own database role; only `init` is PostgreSQL's superuser."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from infra.platform import SERVICE_PROCESSES, ServiceProcess
from infra.platform.paths import REPO_ROOT, kafka_version
from shared.db import SERVICES, role_of
from shared.principals import ADMIN
from tests.compose import DEVELOPMENT_ONLY, SECRETS, compose_config, rendered, variables_used

#: The processes that seal private keys, and so need the data key.
SEALING = {"identity", "exchange"}
#: The services citizens, agencies and analysts reach: the only published ports.
PUBLIC = {
    "identity": "IDENTITY",
    "catalog": "CATALOG",
    "exchange": "EXCHANGE",
    "metrics": "METRICS",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return rendered(SECRETS)


@pytest.mark.parametrize("missing", sorted(set(SECRETS) - DEVELOPMENT_ONLY))
def test_secrets_are_required(missing: str) -> None:
    result = compose_config({k: v for k, v in SECRETS.items() if k != missing})
    assert result.returncode != 0
    assert missing in result.stderr


def test_what_only_development_needs_is_not_required_in_production() -> None:
    assert DEVELOPMENT_ONLY
    rendered({k: v for k, v in SECRETS.items() if k not in DEVELOPMENT_ONLY})


def test_every_variable_the_file_reads_is_in_the_readmes_table() -> None:
    section = (REPO_ROOT / "README.md").read_text().split("## Containers", 1)[1]
    rows = {
        name: row.split("|")[2].strip()
        for row in section.splitlines()
        if row.startswith("| `")
        for name in re.findall(r"`(\w+)`", row.split("|")[1])
    }
    used = variables_used()
    assert sorted(used) == sorted(rows)
    for name, required in used.items():
        said = rows[name]
        if required:
            assert said == "yes", name
        else:
            assert said != "yes", name
    needed = {name for name, said in rows.items() if said == "yes" or said == "in development"}
    assert set(SECRETS) == needed
    assert {name for name, said in rows.items() if said == "in development"} == DEVELOPMENT_ONLY


def test_services_are_the_local_process_table(compose: dict[str, Any]) -> None:
    ours = {p.name for p in SERVICE_PROCESSES}
    assert set(compose["services"]) == ours | {"kafka", "kafka-config", "postgres", "init"}


def test_the_simulator_runs_only_in_the_development_profile(compose: dict[str, Any]) -> None:
    profiled = {name for name, service in compose["services"].items() if service.get("profiles")}
    assert profiled == {"simulator"}
    assert compose["services"]["simulator"]["profiles"] == ["development"]


def test_only_the_public_services_publish_ports_on_the_publish_address(
    compose: dict[str, Any],
) -> None:
    published = {
        name: service["ports"]
        for name, service in compose["services"].items()
        if service.get("ports") and "development" not in service.get("profiles", [])
    }
    assert set(published) == set(PUBLIC)
    moved = rendered(
        {**SECRETS, "PANJEREH_PUBLISH_ADDRESS": "10.1.2.3", "PANJEREH_CATALOG_PORT": "9002"}
    )
    for name, variable in PUBLIC.items():
        (port,) = moved["services"][name]["ports"]
        container = compose["services"][name]["environment"][f"PANJEREH_{variable}_PORT"]
        host_port = "9002" if name == "catalog" else container
        assert port in (
            f"10.1.2.3:{host_port}:{container}",
            f"10.1.2.3:{host_port}:{container}/tcp",
        )
        assert compose["services"][name]["ports"][0].startswith("127.0.0.1:")


def test_the_metrics_worker_keeps_its_tables_on_a_volume_of_its_own(
    compose: dict[str, Any],
) -> None:
    worker = compose["services"]["metrics-worker"]
    data_dir = worker["environment"]["PANJEREH_METRICS_WORKER_DATA_DIR"]
    mounts = [volume.split(":") for volume in worker["volumes"]]
    writable = [target for _, target, *mode in mounts if mode != ["ro"]]
    assert any(data_dir.startswith(target + "/") for target in writable)


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
