"""docker-compose.yml is valid and runs exactly what the local platform runs."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from infra.platform import SERVICE_PROCESSES, ServiceProcess
from infra.platform.paths import REPO_ROOT, kafka_version

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"


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
    result = _compose_config(PANJEREH_POSTGRES_PASSWORD="not-a-secret")
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def test_secrets_are_required() -> None:
    result = _compose_config()
    assert result.returncode != 0
    assert "PANJEREH_POSTGRES_PASSWORD" in result.stderr


def test_services_are_the_local_process_table(compose: dict[str, Any]) -> None:
    ours = {p.name for p in SERVICE_PROCESSES}
    assert set(compose["services"]) == ours | {"kafka", "postgres", "init"}


@pytest.mark.parametrize("process", SERVICE_PROCESSES, ids=lambda p: p.name)
def test_commands_match_local(compose: dict[str, Any], process: ServiceProcess) -> None:
    service = compose["services"][process.name]
    assert service["command"] == ["python", *process.args()]
    assert service["environment"]["PANJEREH_HTTP_HOST"] == "0.0.0.0"
    assert service["environment"]["PANJEREH_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert service["depends_on"]["init"]["condition"] == "service_completed_successfully"
    assert "build" in service


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
