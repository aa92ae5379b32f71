"""The test harness: real Kafka and PostgreSQL for the suite, and no silent errors.

Integration tests run against an isolated broker and database that the session starts
in `.data/test` on their own ports, so they never touch a developer's running platform.
A service a test runs logs in as its own database role (`database_urls`), as in
production; only what sets the stage (migrations, scratch schemas, tampering on purpose)
uses the superuser (`admin_database_url`). Every test fails if anything logged an error it
did not expect.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from shared.db import Pool
from shared.kafka_access import KafkaAccess
from shared.logging import configure_logging
from shared.settings import PlatformSettings

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[object]:
    """Kafka and Postgres for this test session, with topics and migrations in place."""
    from infra.platform import LocalPlatform
    from tests.slots import SLOT, session_ports

    home = REPO / ".data" / ("test" if SLOT == 0 else f"test-{SLOT}")
    platform = LocalPlatform(home=home, ports=session_ports())
    platform.start_infrastructure()
    os.environ["PANJEREH_KAFKA_BOOTSTRAP_SERVERS"] = platform.kafka_bootstrap
    # Where the database is, with no role: what a test starts from the environment alone
    # cannot log in, so every service must be handed its own role's DSN.
    os.environ["PANJEREH_DATABASE_URL"] = platform.database_url
    yield platform
    if os.environ.get("PANJEREH_TEST_KEEP_INFRA") != "1":
        platform.down()


@pytest.fixture(scope="session")
def kafka_admin(infrastructure: object) -> KafkaAccess:
    """The broker's super user: tests observe and stand in for other services as it."""
    kafka: KafkaAccess = infrastructure.kafka_admin  # type: ignore[attr-defined]
    return kafka


@pytest.fixture(scope="session")
def credentials_file(infrastructure: object) -> Callable[[str], str]:
    """The path of a principal's credentials file: a service in a test connects as itself."""

    def path_of(principal: str) -> str:
        return str(infrastructure.credentials_file(principal))  # type: ignore[attr-defined]

    return path_of


@pytest.fixture(scope="session")
def kafka_as(infrastructure: object) -> Callable[[str], KafkaAccess]:
    """A principal's access to the session's broker."""

    def access(principal: str) -> KafkaAccess:
        kafka: KafkaAccess = infrastructure.kafka_access(principal)  # type: ignore[attr-defined]
        return kafka

    return access


@pytest.fixture(scope="session")
async def access_manager(infrastructure: object) -> AsyncIterator[object]:
    """The access manager, as `panjereh up` runs it: every agency tests record in the
    catalog gets its channel, principal and ACLs, as in production."""
    from infra.access.manager import AccessManager

    platform: Any = infrastructure
    manager = AccessManager(
        platform.kafka_admin,
        platform.kafka.passwords,
        development=True,
        credentials_dir=platform.home / "credentials",
        retry_seconds=0.5,
    )
    task = asyncio.create_task(manager.run(), name="access-manager")
    await asyncio.wait_for(manager.ready.wait(), 120)
    yield manager
    await manager.stop()
    await asyncio.wait({task}, timeout=10)


@pytest.fixture(scope="session")
def agency_kafka(
    infrastructure: object, access_manager: object
) -> Callable[[str], Awaitable[KafkaAccess]]:
    """An agency's own access, once the access manager has issued it and its channel is
    usable (the agency must be recorded on `catalog.agencies` first)."""
    from tests.issued import issued_credentials

    folder: Path = infrastructure.home / "credentials"  # type: ignore[attr-defined]
    return issued_credentials(folder)


@pytest.fixture(scope="session")
def admin_database_url(infrastructure: object) -> str:
    """The cluster superuser's DSN: migrations, scratch schemas, tampering on purpose."""
    url: str = infrastructure.admin_database_url  # type: ignore[attr-defined]
    return url


class _DatabaseUrls(dict[str, str]):
    """Service -> DSN; shown without passwords when pytest prints a failing test's arguments."""

    def __repr__(self) -> str:
        return repr({service: re.sub(r":[^:@/]+@", ":***@", dsn) for service, dsn in self.items()})


@pytest.fixture(scope="session")
def database_urls(infrastructure: object) -> Mapping[str, str]:
    """Each service's DSN, with its own role: what a service under test runs with."""
    from shared.db import SERVICES

    postgres = infrastructure.postgres  # type: ignore[attr-defined]
    return _DatabaseUrls({service: postgres.service_url(service) for service in SERVICES})


@pytest.fixture
async def scratch_schema(admin_database_url: str) -> AsyncIterator[tuple[str, Pool]]:
    """A fresh schema with the platform's outbox and inbox tables, and a pool on it."""
    from tests.schemas import migrated_schema

    async with migrated_schema(
        admin_database_url,
        "t",
        "identity",
        max_size=4,
        migration_wanted=lambda name: name.startswith("shared/"),
    ) as schema_and_pool:
        yield schema_and_pool


@pytest.fixture(autouse=True)
def _fail_on_unexpected_error_logs(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    caplog.set_level(logging.WARNING)
    yield
    if request.node.get_closest_marker("allows_error_logs"):
        return
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    if errors:
        pytest.fail(
            "unexpected errors logged:\n"
            + "\n".join(f"{r.name}: {r.getMessage()}" for r in errors),
            pytrace=False,
        )


def pytest_configure(config: pytest.Config) -> None:
    # Route structlog through the standard library, where caplog sees it.
    configure_logging("tests", PlatformSettings())
    config.addinivalue_line(
        "markers", "allows_error_logs: the test provokes errors that are logged on purpose"
    )
