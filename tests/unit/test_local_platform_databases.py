"""The local platform hands each process its own database role; passwords stay in the home."""

from __future__ import annotations

import stat
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from infra.platform import SERVICE_PROCESSES, LocalPlatform, Ports, ServiceProcess
from infra.platform.credentials import load_or_create
from shared.db import SERVICES, role_of


@pytest.fixture
def platform(tmp_path: Path) -> LocalPlatform:
    return LocalPlatform(tmp_path / "home", Ports(postgres=55999))


SERVICES_PROCESSES = [p for p in SERVICE_PROCESSES if p.service is not None]
# What `env_for` adds to `env()` besides the DSN: the process's own Kafka credentials.
OWN_KAFKA = {"PANJEREH_KAFKA_CREDENTIALS_FILE", "PANJEREH_IDENTITY_SMS_GATEWAY_CREDENTIALS_FILE"}


@pytest.mark.parametrize("process", SERVICES_PROCESSES, ids=lambda p: p.name)
def test_each_process_gets_its_services_own_role(
    platform: LocalPlatform, process: ServiceProcess
) -> None:
    assert process.service is not None
    env = platform.env_for(process)
    dsn = urlsplit(env["PANJEREH_DATABASE_URL"])
    assert dsn.username == role_of(process.service)
    assert dsn.password == platform.postgres.passwords().services[process.service]
    assert (dsn.hostname, dsn.port, dsn.path) == ("127.0.0.1", 55999, "/panjereh")
    mine = {"PANJEREH_DATABASE_URL", *OWN_KAFKA}
    assert {k: v for k, v in env.items() if k not in mine} == {
        k: v for k, v in platform.env().items() if k not in mine
    }


def test_a_process_outside_the_services_gets_no_database_role(platform: LocalPlatform) -> None:
    outside = [p for p in SERVICE_PROCESSES if p.service is None]
    assert {p.name for p in outside} == {"access-manager", "simulator"}
    for process in outside:
        dsn = urlsplit(platform.env_for(process)["PANJEREH_DATABASE_URL"])
        assert dsn.username is None
        assert dsn.password is None


def test_every_role_has_a_password_of_its_own(platform: LocalPlatform) -> None:
    passwords = platform.postgres.passwords()
    every = [passwords.admin, *(passwords.services[s] for s in SERVICES)]
    assert len(set(every)) == len(every)
    assert all(len(p) >= 32 for p in every)
    assert urlsplit(platform.admin_database_url).username == "postgres"


def test_the_shared_environment_names_the_database_but_cannot_log_in(
    platform: LocalPlatform,
) -> None:
    dsn = urlsplit(platform.env()["PANJEREH_DATABASE_URL"])
    assert dsn.username is None
    assert dsn.password is None
    assert dict(platform.endpoints())["postgres"] == platform.database_url


def test_an_unknown_process_has_no_database(platform: LocalPlatform) -> None:
    with pytest.raises(ValueError, match="no process"):
        platform.database_url_for("mailer")


def test_passwords_are_kept_private_and_stable(tmp_path: Path) -> None:
    first = load_or_create(tmp_path)
    path = tmp_path / "secrets" / "postgres.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create(tmp_path) == first
    assert first.admin not in repr(first)
