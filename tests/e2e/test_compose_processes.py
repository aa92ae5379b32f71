"""docker-compose.yml's processes start from their compose environment alone.

There is no Docker engine here, so each compose service of ours runs as a local process:
its `command`, with the `environment` that `docker-compose config` renders from the
README's variables and nothing else, its named volumes as fresh directories. A fresh local
broker and cluster stand in for the `kafka` and `postgres` images at the addresses the
containers use (`kafka:9092`, `postgres:5432`), and each service's container port is moved
to one of the e2e ports.

Each process runs in an empty directory standing for the image's /app (root's; the
processes run as uid 10001), with HOME there too: anything a process writes outside its
volumes would fail in the container, so finding anything in that directory fails here.
An absolute path in a process's environment outside its volumes fails as well.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from infra.platform import LocalPlatform
from infra.platform.processes import http_ok, tail
from shared.principals import ADMIN, PRINCIPALS
from tests.compose import rendered
from tests.scrape import lint, sample_names, scrape, values
from tests.slots import e2e_ports

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

PORTS = e2e_ports()
#: The containers' own ports (docker-compose.yml's PANJEREH_<NAME>_PORT), by Ports field.
CONTAINER_PORTS = {
    "identity": 8001,
    "catalog": 8002,
    "exchange": 8003,
    "metrics": 8004,
    "access_manager": 8005,
    "metrics_worker": 8014,
    "simulator": 8024,
}
#: The images that are not ours; the local broker and cluster stand in for them.
THIRD_PARTY = {"kafka", "postgres"}


@dataclass
class Stage:
    """The stand-in infrastructure and a scratch directory for volumes and /app."""

    platform: LocalPlatform
    root: Path

    @property
    def app(self) -> Path:
        return self.root / "app"

    def volume(self, name: str) -> Path:
        path = self.root / "volumes" / name
        path.mkdir(parents=True, exist_ok=True)
        return path


@pytest.fixture(scope="module")
def stage() -> Iterator[Stage]:
    root = Path(tempfile.mkdtemp(prefix="panjereh-compose-"))
    root.chmod(0o755)  # PostgreSQL (the postgres user when we are root) enters the home
    platform = LocalPlatform(root / "home", PORTS, environment="production")
    try:
        platform.kafka.start()
        platform.postgres.start()
        (root / "app").mkdir()
        yield Stage(platform, root)
    finally:
        platform.down()
        if os.environ.get("PANJEREH_TEST_KEEP_HOME") != "1":
            shutil.rmtree(root, ignore_errors=True)


def documented_variables(platform: LocalPlatform) -> dict[str, str]:
    """The README's required variables with real values; the stand-ins' own admin
    secrets, since the broker and the cluster were made before compose's `init` runs."""
    service_passwords = {
        f"PANJEREH_{service.upper()}_DATABASE_PASSWORD": secrets.token_urlsafe(18)
        for service in ("identity", "catalog", "exchange", "metrics")
    }
    kafka_passwords = {
        f"PANJEREH_KAFKA_PASSWORD_{spec.name.value.upper().replace('-', '_')}": (
            secrets.token_urlsafe(18)
        )
        for spec in PRINCIPALS
        if not spec.development_only
    }
    gateway = X25519PrivateKey.generate().public_key()
    return {
        "PANJEREH_POSTGRES_PASSWORD": platform.postgres.passwords().admin,
        "PANJEREH_KAFKA_PASSWORD_ADMIN": platform.kafka.passwords.get(ADMIN),
        **service_passwords,
        **kafka_passwords,
        "PANJEREH_DATA_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "PANJEREH_IDENTITY_PSEUDONYM_KEY": secrets.token_urlsafe(32),
        "PANJEREH_IDENTITY_OPERATOR_TOKEN": secrets.token_urlsafe(32),
        "PANJEREH_METRICS_TOKEN": secrets.token_urlsafe(32),
        "PANJEREH_IDENTITY_SMS_GATEWAY_PUBLIC_KEY": base64.b64encode(
            gateway.public_bytes(Encoding.Raw, PublicFormat.Raw)
        ).decode(),
        "PANJEREH_IDENTITY_OPERATOR_CHECK_URL": "https://regulator.example/mobile-ownership",
    }


@dataclass(frozen=True)
class LocalCommand:
    """One compose service as a local process."""

    name: str
    argv: list[str]
    env: dict[str, str]
    health: str | None


def local_port(container_port: int) -> int:
    field = next(f for f, port in CONTAINER_PORTS.items() if port == container_port)
    port: int = getattr(PORTS, field)
    return port


def as_local(
    name: str, service: dict[str, Any], stage: Stage, documented: frozenset[str] = frozenset()
) -> LocalCommand:
    """`service` with its addresses, ports and volumes moved onto this machine.

    `documented`: the documented variables' values, passed as they are: a key in standard
    base64 may begin with "/" and is no path."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        mounts[target] = stage.volume(source)
    compose_hosts = "|".join(re.escape(host) for host in ("identity", "catalog", "exchange"))

    def moved(value: str) -> str:
        if value in documented:
            return value
        value = value.replace("kafka:9092", stage.platform.kafka_bootstrap)
        value = value.replace("@postgres:5432/", f"@127.0.0.1:{PORTS.postgres}/")
        value = re.sub(
            rf"\b({compose_hosts}|metrics):(\d{{4}})\b",
            lambda m: f"127.0.0.1:{local_port(int(m.group(2)))}",
            value,
        )
        if value.startswith("/"):
            target = next(
                (t for t in mounts if value == t or value.startswith(t + "/")),
                None,
            )
            assert target is not None, f"{name} is given {value}, outside its volumes"
            value = str(mounts[target]) + value[len(target) :]
        return value

    env = {key: moved(str(value)) for key, value in service["environment"].items()}
    for field, container_port in CONTAINER_PORTS.items():
        variable = f"PANJEREH_{field.upper()}_PORT"
        if env.get(variable) == str(container_port):
            env[variable] = str(getattr(PORTS, field))
    programs = {"python": sys.executable, "panjereh": str(Path(sys.executable).parent / "panjereh")}
    program, *arguments = service["command"]
    argv = [programs.get(program, program), *(moved(part) for part in arguments)]
    health = None
    if "healthcheck" in service:
        found = re.search(
            r"http://127\.0\.0\.1:(\d+)/health", " ".join(service["healthcheck"]["test"])
        )
        assert found, f"{name}'s healthcheck names no /health"
        health = f"http://127.0.0.1:{local_port(int(found.group(1)))}/health"
    return LocalCommand(name, argv, env, health)


def base_environment(stage: Stage) -> dict[str, str]:
    """What the image gives every process before compose's `environment`."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(stage.app),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "PANJEREH_ENVIRONMENT": "production",
        "PANJEREH_HTTP_HOST": "0.0.0.0",
    }


def start(command: LocalCommand, stage: Stage) -> subprocess.Popen[bytes]:
    logs = stage.root / "logs"
    logs.mkdir(exist_ok=True)
    with (logs / f"{command.name}.log").open("ab") as log:
        return subprocess.Popen(
            command.argv,
            cwd=stage.app,
            env={**base_environment(stage), **command.env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def log_of(stage: Stage, name: str) -> str:
    return tail(stage.root / "logs" / f"{name}.log", 40)


def run_to_completion(command: LocalCommand, stage: Stage, timeout: float) -> None:
    process = start(command, stage)
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail(f"{command.name} did not finish in {timeout} s:\n{log_of(stage, command.name)}")
    assert code == 0, f"{command.name} exited {code}:\n{log_of(stage, command.name)}"


def stop(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for process in processes.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for process in processes.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def in_start_order(compose: dict[str, Any]) -> list[str]:
    """Our services, each after what it depends on (compose's `depends_on`)."""
    services = compose["services"]
    ordered: list[str] = []

    def visit(name: str) -> None:
        if name in ordered:
            return
        for dependency in services[name].get("depends_on", {}):
            visit(dependency)
        if name not in THIRD_PARTY:  # the stand-ins are up already
            ordered.append(name)

    for name in services:
        if "development" not in services[name].get("profiles", []):
            visit(name)
    return ordered


def test_every_production_process_starts_from_the_documented_variables_alone(
    stage: Stage,
) -> None:
    variables = documented_variables(stage.platform)
    compose = rendered(variables)
    order = in_start_order(compose)
    assert order[:2] == ["kafka-config", "init"]
    running: dict[str, subprocess.Popen[bytes]] = {}
    commands: dict[str, LocalCommand] = {}
    try:
        for name in order:
            service = compose["services"][name]
            command = commands[name] = as_local(name, service, stage, frozenset(variables.values()))
            if service.get("restart") == "no":  # one-shots: the others wait for them
                run_to_completion(command, stage, timeout=180)
                if name == "kafka-config":
                    # It made the material a containerised broker would start from; the
                    # stand-in broker has its own, which every client must trust instead.
                    tls = stage.volume("kafka-tls")
                    assert {"ca.pem", "server.properties"} <= {p.name for p in tls.iterdir()}
                    shutil.copy(stage.platform.kafka.tls.ca_file, tls / "ca.pem")
            else:
                running[name] = start(command, stage)
        assert set(running) == {
            "access-manager",
            "identity",
            "catalog",
            "exchange",
            "metrics",
            "metrics-worker",
        }
        waiting = {name: commands[name].health for name in running}
        deadline = time.monotonic() + 180
        while waiting and time.monotonic() < deadline:
            for name, url in list(waiting.items()):
                process = running[name]
                assert process.poll() is None, (
                    f"{name} exited {process.returncode}:\n{log_of(stage, name)}"
                )
                if url is None or http_ok(url):
                    del waiting[name]
            time.sleep(0.5)
        assert not waiting, "\n\n".join(
            f"{name} not healthy at {url}:\n{log_of(stage, name)}" for name, url in waiting.items()
        )
        for name in running:
            assert_metrics_served_to_the_scrape_secret_alone(commands[name])
    finally:
        stop(running)
    assert not list(stage.app.iterdir()), "a process wrote outside its volumes (in /app)"
    assert list(stage.volume("metrics-worker-data").rglob("*")), (
        "the worker's tables are not on its volume"
    )


def assert_metrics_served_to_the_scrape_secret_alone(command: LocalCommand) -> None:
    """In production a process's /metrics answers the scrape secret, and no one else,
    with an exposition promtool finds nothing wrong with."""
    assert command.health is not None
    url = command.health.removesuffix("/health") + "/metrics"
    assert scrape(url).status_code == 401, f"{command.name} serves metrics without the secret"
    assert scrape(url, "not-the-secret").status_code == 401
    answer = scrape(url, command.env["PANJEREH_METRICS_TOKEN"])
    assert answer.status_code == 200, f"{command.name}: {answer.status_code} {answer.text}"
    assert "process_cpu_seconds_total" in sample_names(answer.text), command.name
    assert values(answer.text, "panjereh_process_ready") == [({}, 1.0)], command.name
    assert not lint(answer.text), f"{command.name}: {lint(answer.text)}"
