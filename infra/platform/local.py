"""The whole platform on one machine, without Docker: Kafka, PostgreSQL, services, worker.

Everything a platform instance owns lives in its home directory:

    <home>/config/    generated Kafka properties (owner-only: they name the admin's secret)
    <home>/tls/       the platform CA and the broker's certificate
    <home>/secrets/   generated passwords (owner-only)
    <home>/credentials/<principal>.properties
                      each principal's way to the broker, as librdkafka reads it
    <home>/kafka/     Kafka's KRaft log directory
    <home>/postgres/  the PostgreSQL cluster
    <home>/secrets/   postgres.json: the database passwords (0600, generated on first start)
    <home>/logs/      <name>.log for every process
    <home>/run/       <name>.pid for every process we started (PostgreSQL keeps its own)

Several homes can run side by side as long as their ports differ (the test session, the
e2e test and a developer's `panjereh up` do exactly that).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

from pydantic import TypeAdapter

from infra.platform import paths
from infra.platform.kafka import KafkaCluster
from infra.platform.postgres import PostgresCluster
from infra.platform.processes import (
    ManagedProcess,
    PlatformError,
    http_json,
    http_ok,
    run_coroutine,
    stop_together,
    wait_until,
)
from infra.platform.provision import InitReport, init_platform
from shared.kafka_access import KafkaAccess
from shared.principals import ADMIN, PRINCIPALS, Principal


@dataclass(frozen=True)
class Ports:
    """Every port the platform listens on; each overridable (PANJEREH_<FIELD> in env)."""

    kafka: int = 9092
    kafka_controller: int = 9093
    postgres: int = 55432
    identity: int = 8001
    catalog: int = 8002
    exchange: int = 8003
    metrics: int = 8004
    metrics_worker: int = 8014
    simulator: int = 8024
    access_manager: int = 8005

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Ports:
        """Defaults overridden by PANJEREH_KAFKA_PORT, PANJEREH_IDENTITY_PORT, ..."""
        env = dict(os.environ) if environ is None else environ
        values: dict[str, int] = {}
        for f in fields(cls):
            raw = env.get(f"PANJEREH_{f.name.upper()}_PORT")
            if raw:
                values[f.name] = int(raw)
        return cls(**values)


@dataclass(frozen=True)
class ServiceProcess:
    """One of our processes: its name (also its compose service), Python module, the
    field of `Ports` it listens on and the Kafka principal it connects as (the access
    manager, which provisions the broker, as `admin`)."""

    name: str
    module: str
    port_field: str
    principal: str

    @property
    def service(self) -> str | None:
        """The service whose code it runs (`services.<service>...`): its database role.
        None for a process of the platform's own (`infra.*`) that holds no data."""
        parts = self.module.split(".")
        return parts[1] if parts[0] == "services" else None

    def args(self) -> tuple[str, ...]:
        """The command after the interpreter, as in docker-compose.yml."""
        return ("-m", self.module)


#: The process table: what `panjereh up` launches and what docker-compose.yml must run.
SERVICE_PROCESSES: tuple[ServiceProcess, ...] = (
    ServiceProcess("access-manager", "infra.access", "access_manager", ADMIN),
    ServiceProcess("identity", "services.identity", "identity", Principal.IDENTITY),
    ServiceProcess("catalog", "services.catalog", "catalog", Principal.CATALOG),
    ServiceProcess("exchange", "services.exchange", "exchange", Principal.EXCHANGE),
    ServiceProcess("metrics", "services.metrics", "metrics", Principal.METRICS),
    ServiceProcess(
        "metrics-worker", "services.metrics.worker", "metrics_worker", Principal.METRICS_WORKER
    ),
    ServiceProcess("simulator", "simulator", "simulator", Principal.SIMULATOR),
)


@dataclass(frozen=True)
class ProcessStatus:
    """One row of `panjereh status`."""

    name: str
    pid: int | None
    running: bool
    listens: str


class LocalPlatform:
    """A platform instance rooted at `home`, listening on `ports`.

    All operations are idempotent: parts already running are left alone, and stopping
    touches only processes whose pid files (and command lines) prove they are ours.
    """

    def __init__(
        self,
        home: Path,
        ports: Ports | None = None,
        *,
        environment: str = "development",
        health_timeout: float = 90.0,
        provision_timeout: float = 240.0,
        python: str | None = None,
        brokers: int | None = None,
        measuring_port: int | None = None,
    ) -> None:
        """`measuring_port`: a plaintext listener on the broker, for the benchmarks' own
        infrastructure alone (see `infra.platform.kafka.broker_properties`)."""
        self.home = home.resolve()
        self.ports = ports or Ports()
        self.environment = environment
        self.health_timeout = health_timeout
        self.provision_timeout = provision_timeout
        # The interpreter for our services: by default the one running this code (.venv).
        self.python = python or sys.executable
        # PANJEREH_KAFKA_BROKERS=3: three brokers, each a voter of the controller quorum.
        # Unsaid, a home has what it was made with (so `down` stops all of them).
        asked = brokers or int(os.environ.get("PANJEREH_KAFKA_BROKERS") or 0)
        size = asked or self._brokers_made() or 1
        self.kafka = KafkaCluster(
            self.home, self.ports.kafka, self.ports.kafka_controller, size, measuring_port
        )
        self.postgres = PostgresCluster(self.home, self.ports.postgres)
        self._lock_depth = 0

    # -- addresses -----------------------------------------------------------------------

    @property
    def kafka_bootstrap(self) -> str:
        """Kafka bootstrap servers, host:port."""
        return self.kafka.bootstrap

    @property
    def database_url(self) -> str:
        """Where the database is, postgresql://127.0.0.1:<port>/panjereh, with no role:
        it cannot log in. Each process gets its own role's DSN (`env_for`)."""
        return self.postgres.location_url

    @property
    def admin_database_url(self) -> str:
        """The cluster superuser's DSN: `panjereh init`, migrations, operators' tools."""
        return self.postgres.admin_url

    def database_url_for(self, service_name: str) -> str:
        """The DSN a process of `SERVICE_PROCESSES` runs with: its service's own role.

        The metrics worker holds no data of its own; it gets the metrics service's role,
        as in docker-compose.yml. The platform's own processes and the simulator, which
        is not part of the platform, get none.
        """
        for process in SERVICE_PROCESSES:
            if process.name == service_name:
                if process.service is None:
                    return self.database_url  # no role: it cannot log in, and needs not
                return self.postgres.service_url(process.service)
        raise ValueError(f"no process {service_name!r} in SERVICE_PROCESSES")

    def kafka_access(self, principal: str) -> KafkaAccess:
        """How `principal` reaches this platform's broker (its password made on first use)."""
        from infra.platform.access import current_mechanism

        return KafkaAccess(
            bootstrap_servers=self.kafka_bootstrap,
            username=principal,
            password=self.kafka.passwords.get(principal),
            ca_file=str(self.kafka.tls.ca_file),
            mechanism=current_mechanism(self.kafka.passwords, principal),
        )

    @property
    def kafka_admin(self) -> KafkaAccess:
        """The super user's access: for provisioning, and for tests that observe."""
        return self.kafka.admin_access()

    def credentials_file(self, principal: str) -> Path:
        """`principal`'s librdkafka properties file, written (owner-only) by `init`."""
        return self.home / "credentials" / f"{principal}.properties"

    def write_credentials(self) -> None:
        """A properties file for every declared principal, as `panjereh credentials` prints."""
        folder = self.home / "credentials"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name in (ADMIN, *(spec.name.value for spec in PRINCIPALS)):
            path = self.credentials_file(name)
            path.touch(mode=0o600)
            path.chmod(0o600)
            path.write_text(self.kafka_access(name).properties())

    def service_url(self, service: ServiceProcess) -> str:
        """Base URL of a service's HTTP server."""
        return f"http://127.0.0.1:{getattr(self.ports, service.port_field)}"

    def env(self) -> dict[str, str]:
        """The PANJEREH_* variables every child process gets."""
        return {
            "PANJEREH_ENVIRONMENT": self.environment,
            "PANJEREH_KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            "PANJEREH_DATABASE_URL": self.database_url,
            "PANJEREH_HTTP_HOST": "127.0.0.1",
            "PANJEREH_IDENTITY_PORT": str(self.ports.identity),
            # Identity's `iss`, and the one issuer every other service trusts.
            "PANJEREH_IDENTITY_ISSUER": f"http://127.0.0.1:{self.ports.identity}",
            "PANJEREH_CATALOG_PORT": str(self.ports.catalog),
            "PANJEREH_EXCHANGE_PORT": str(self.ports.exchange),
            "PANJEREH_METRICS_PORT": str(self.ports.metrics),
            # The weekly report form (a metrics page) asks identity for a token from the
            # browser: identity answers the page's origin, the page knows identity's address.
            "PANJEREH_METRICS_IDENTITY_PUBLIC_URL": f"http://127.0.0.1:{self.ports.identity}",
            "PANJEREH_IDENTITY_TOKEN_ENDPOINT_ORIGINS": json.dumps(
                [f"http://{host}:{self.ports.metrics}" for host in ("127.0.0.1", "localhost")]
            ),
            "PANJEREH_METRICS_WORKER_PORT": str(self.ports.metrics_worker),
            "PANJEREH_SIMULATOR_PORT": str(self.ports.simulator),
            "PANJEREH_ACCESS_MANAGER_PORT": str(self.ports.access_manager),
            "PANJEREH_HOME": str(self.home),
            # Where the access manager leaves each agency's credentials file.
            "PANJEREH_AGENCY_CREDENTIALS_DIR": str(self.home / "credentials"),
            "PANJEREH_METRICS_WORKER_DATA_DIR": str(self.home / "metrics-worker"),
            # What this home's brokers give every topic, whatever the caller's shell says.
            "PANJEREH_KAFKA_REPLICATION_FACTOR": str(self.kafka.durability.replication_factor),
            "PANJEREH_KAFKA_MIN_INSYNC_REPLICAS": str(self.kafka.durability.min_insync_replicas),
        }

    def env_for(self, service: ServiceProcess) -> dict[str, str]:
        """`env()` plus what is this process's alone: its own database DSN and its own
        Kafka credentials."""
        env = {**self.env(), "PANJEREH_DATABASE_URL": self.database_url_for(service.name)}
        env["PANJEREH_KAFKA_CREDENTIALS_FILE"] = str(self.credentials_file(service.principal))
        if service.principal == Principal.IDENTITY:
            # The development SMS gateway runs inside identity, as its own principal.
            env["PANJEREH_IDENTITY_SMS_GATEWAY_CREDENTIALS_FILE"] = str(
                self.credentials_file(Principal.SMS_GATEWAY)
            )
        return env

    def start_service(self, service: ServiceProcess) -> ManagedProcess:
        """Start one process of the table with its environment; its managed process."""
        process = self.process(service)
        process.start(env={**os.environ, **self.env_for(service)}, cwd=paths.REPO_ROOT)
        return process

    def process(self, service: ServiceProcess) -> ManagedProcess:
        """The managed process for one row of the process table."""
        return ManagedProcess(
            name=service.name,
            command=(self.python, *service.args()),
            pid_file=self.home / "run" / f"{service.name}.pid",
            log_file=self.home / "logs" / f"{service.name}.log",
            home=self.home,
        )

    # -- lifecycle -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise lifecycle operations on this home across processes.

        Two callers on one home (two test sessions, `up` in two terminals) would otherwise
        race, e.g. both formatting Kafka's storage. Re-entrant within this object.
        """
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        self.home.mkdir(parents=True, exist_ok=True)
        with (self.home / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            self._lock_depth = 1
            try:
                yield
            finally:
                self._lock_depth = 0
                fcntl.flock(handle, fcntl.LOCK_UN)

    def start_infrastructure(self) -> InitReport:
        """Kafka and PostgreSQL up, topics created, every service's migrations applied."""
        with self._locked():
            return self._start_infrastructure()

    def _start_infrastructure(self) -> InitReport:
        self._same_brokers_as_before()
        self.kafka.start()
        self.postgres.start()
        return self.init()

    @property
    def _brokers_record(self) -> Path:
        return self.home / "config" / "kafka-brokers"

    def _brokers_made(self) -> int | None:
        """How many brokers this home's Kafka was made with, if it says."""
        if self._brokers_record.exists():
            return int(self._brokers_record.read_text())
        return 1 if (self.home / "kafka").exists() else None

    def _same_brokers_as_before(self) -> None:
        """A home keeps the number of brokers it was made with: its services' databases
        describe what its topics held."""
        made = self._brokers_made()
        if made is not None and made != self.kafka.size:
            raise PlatformError(
                f"this home's Kafka has {made} broker(s), not {self.kafka.size}: "
                "`panjereh reset` (deletes its data) to change, or set "
                f"PANJEREH_KAFKA_BROKERS={made}"
            )
        record = self._brokers_record
        if not record.exists():
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text(f"{self.kafka.size}\n")

    def init(self) -> InitReport:
        """Topics, users, ACLs, database roles and migrations against the running
        infrastructure (as `panjereh init` does), then every principal's credentials file."""
        passwords = self.postgres.passwords().services
        report = run_coroutine(
            lambda: init_platform(
                self.kafka_admin,
                self.admin_database_url,
                self.kafka.passwords,
                development=self.environment != "production",
                database_passwords=passwords,
                durability=self.kafka.durability,
            )
        )
        self.write_credentials()
        return report

    def up(self) -> list[tuple[str, str]]:
        """Infrastructure, then every service and the worker; waits for each /health and,
        in development, for the reference register's agencies to be provisioned.

        Returns and prints (name, url) for everything that listens. Raises PlatformError
        with the tail of the failing process's log if one does not become healthy.
        """
        with self._locked():
            self._start_infrastructure()
            started = [(service, self.start_service(service)) for service in SERVICE_PROCESSES]
        for service, proc in started:
            url = self.service_url(service) + "/health"
            wait_until(
                lambda url=url: http_ok(url),  # type: ignore[misc]
                timeout=self.health_timeout,
                what=f"{service.name} ({url})",
                alive=proc.running,
                log=proc.log_file,
                interval=0.3,
            )
        if self._loads_reference():
            self._until_reference_provisioned(dict(started))
        where = self.endpoints()
        for name, url in where:
            print(f"{name:<16} {url}")
        return where

    def _loads_reference(self) -> bool:
        """Whether the catalog loads the reference register at start (development)."""
        raw = os.environ.get("PANJEREH_CATALOG_LOAD_REFERENCE_WHEN_EMPTY", "true")
        return self.environment == "development" and TypeAdapter(bool).validate_python(raw)

    def _until_reference_provisioned(self, started: dict[ServiceProcess, ManagedProcess]) -> None:
        """Wait until the access manager has provisioned the reference register's agencies.

        The catalog loads them once it is healthy, and on a fresh home the access manager
        then makes some 1,300 topics, 131 users and their ACLs. Until that is done the
        simulator's agencies cannot reach the broker, and the broker, busy, answers others
        slowly: the platform is not up yet.
        """
        from services.catalog.reference import reference_agencies

        manager = next(s for s in started if s.name == "access-manager")
        url = self.service_url(manager) + "/health"
        expected = len(reference_agencies())

        def provisioned() -> bool:
            health = http_json(url)
            return (
                isinstance(health, dict)
                and health.get("provisioned") is True
                and int(health.get("agencies_known", 0)) >= expected
            )

        wait_until(
            provisioned,
            timeout=self.provision_timeout,
            what=f"the reference register's {expected} agencies provisioned ({url})",
            alive=started[manager].running,
            log=started[manager].log_file,
            interval=0.5,
        )

    def endpoints(self) -> list[tuple[str, str]]:
        """(name, address) of Kafka, PostgreSQL and every service."""
        return [
            ("kafka", self.kafka_bootstrap),
            ("postgres", self.database_url),
            *((s.name, self.service_url(s)) for s in SERVICE_PROCESSES),
        ]

    def down(self) -> list[str]:
        """Stop services, worker, PostgreSQL and Kafka (only ours); data is kept.

        Returns the names of what was running and is now stopped.
        """
        if not self.home.exists():
            return []
        with self._locked():
            # The services together (each drains and leaves its groups on its own), then
            # what they all stand on.
            stopped = stop_together([self.process(s) for s in reversed(SERVICE_PROCESSES)])
            if self.postgres.data_dir.exists() and self.postgres.stop():
                stopped.append("postgres")
            if self.kafka.stop():
                stopped.append("kafka")
            return stopped

    def status(self) -> list[ProcessStatus]:
        """Name, pid, whether it runs, and where it listens, for every process."""
        rows = [
            *(
                ProcessStatus(node.name, node.process().pid(), False, node.bootstrap)
                for node in self.kafka.nodes
            ),
            ProcessStatus(
                "postgres",
                self.postgres.pid() if self.postgres.data_dir.exists() else None,
                False,
                f"127.0.0.1:{self.ports.postgres}",
            ),
            *(
                ProcessStatus(s.name, self.process(s).pid(), False, self.service_url(s))
                for s in SERVICE_PROCESSES
            ),
        ]
        return [ProcessStatus(r.name, r.pid, r.pid is not None, r.listens) for r in rows]

    def reset(self) -> None:
        """down(), then delete the home with all its data."""
        with self._locked():
            self.down()
            if self.home.exists():
                shutil.rmtree(self.home)


__all__ = [
    "SERVICE_PROCESSES",
    "LocalPlatform",
    "PlatformError",
    "Ports",
    "ProcessStatus",
    "ServiceProcess",
]
