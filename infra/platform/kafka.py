"""A single-node KRaft Kafka broker run from the jars that Maven resolves (no Docker).

The release is pinned in infra/kafka/pom.xml; its jars are cached once per version in
.cache/kafka/<version>/libs and shared by every platform home on the machine.

The broker is never open: clients connect with SASL/SCRAM-SHA-512 over TLS (certificates
of the home's own CA, `tls.py`), and KRaft's StandardAuthorizer refuses whatever no ACL
allows. The one super user is `admin`, the principal `infra/` works as; its SCRAM
credential is written into the cluster's metadata when the storage is formatted. The
controller listener takes only mutual TLS with the node certificate, mapped to `admin`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from infra.platform import paths
from infra.platform.processes import (
    ManagedProcess,
    PlatformError,
    port_open,
    run,
    run_coroutine,
    stop_together,
    wait_until,
)
from infra.platform.secrets import SecretStore
from infra.platform.tls import NODE_COMMON_NAME, PlatformTls
from shared.kafka_access import KafkaAccess
from shared.topics import Durability

HOST = "127.0.0.1"
_COMPLETE_MARKER = ".complete"
#: The platform's only super user: what `infra/` provisions topics, users and ACLs as.
ADMIN_PRINCIPAL = "admin"
MECHANISM = "SCRAM-SHA-512"
#: Written beside meta.properties once the storage holds the admin's SCRAM credential.
_SECURED_MARKER = ".panjereh-secured"


def resolve_jars() -> Path:
    """The broker's classpath directory, downloading it with `mvn` the first time.

    Jars are copied into a temporary directory and renamed into place, so an interrupted
    download never leaves a half-filled cache that would later be trusted.
    """
    libs = paths.kafka_libs_dir()
    # The marker names the pom it was resolved from: a changed pom resolves again.
    fingerprint = hashlib.sha256(paths.KAFKA_POM.read_bytes()).hexdigest()
    marker = libs / _COMPLETE_MARKER
    if marker.exists() and fingerprint in marker.read_text():
        return libs
    if shutil.which("mvn") is None:
        raise PlatformError("mvn not found: run infra/bootstrap.sh (installs maven and a JDK)")
    libs.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="libs-", dir=libs.parent))
    try:
        run(
            [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(paths.KAFKA_POM),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={staging}",
                "-DincludeScope=runtime",
            ]
        )
        (staging / _COMPLETE_MARKER).write_text(f"{paths.kafka_version()} {fingerprint}\n")
        if libs.exists():
            shutil.rmtree(libs)
        staging.rename(libs)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return libs


class _Home:
    """What every broker of a platform home shares: its CA and node certificate, its
    principals' passwords, and so the admin's way in (over `bootstrap`)."""

    home: Path

    @property
    def bootstrap(self) -> str:
        raise NotImplementedError

    @property
    def tls(self) -> PlatformTls:
        return PlatformTls(self.home / "tls")

    @property
    def passwords(self) -> SecretStore:
        """The SCRAM passwords of every principal this home made (admin's included)."""
        return SecretStore(self.home / "secrets" / "kafka.json")

    def admin_access(self) -> KafkaAccess:
        """How `infra/` reaches the broker(s): as the super user `admin`."""
        return KafkaAccess(
            bootstrap_servers=self.bootstrap,
            username=ADMIN_PRINCIPAL,
            password=self.passwords.get(ADMIN_PRINCIPAL),
            ca_file=str(self.tls.ca_file),
        )


@dataclass(frozen=True)
class KafkaNode(_Home):
    """One combined broker+controller node whose config, data and logs live under `home`.

    Alone (the default) it is the whole cluster, named `kafka`. In a cluster of several
    (`KafkaCluster`) it is `kafka-<node id>`, one voter of the controller quorum.
    """

    home: Path
    port: int
    controller_port: int
    node_id: int = 1
    #: Every voter of the controller quorum as (node id, controller port); empty: this node.
    voters: tuple[tuple[int, int], ...] = ()
    #: A plaintext listener, for measuring what TLS and SCRAM cost (`broker_properties`).
    measuring_port: int | None = None

    @property
    def name(self) -> str:
        """Its files' and its process's name: `kafka`, or `kafka-<id>` in a cluster."""
        return f"kafka-{self.node_id}" if self.voters else "kafka"

    @property
    def cluster_size(self) -> int:
        return max(1, len(self.voters))

    @property
    def bootstrap(self) -> str:
        """host:port for clients."""
        return f"{HOST}:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.home / self.name

    @property
    def config_file(self) -> Path:
        return self.home / "config" / f"{self.name}.properties"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / f"{self.name}.log"

    def process(self) -> ManagedProcess:
        """The broker's JVM as a managed process (its command names this home's config)."""
        libs = paths.kafka_libs_dir()
        java = shutil.which("java") or "java"
        command = (
            java,
            "-Xms256m",
            "-Xmx1g",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={paths.KAFKA_LOG_CONFIG}",
            f"-Dkafka.logs.dir={self.home / 'logs'}",
            "-cp",
            f"{libs}/*",
            "kafka.Kafka",
            str(self.config_file),
        )
        return ManagedProcess(
            name=self.name,
            command=command,
            pid_file=self.home / "run" / f"{self.name}.pid",
            log_file=self.log_file,
            home=self.home,
        )

    def properties(self) -> dict[str, str]:
        """The broker configuration: loopback only, authenticated, authorized."""
        voters = self.voters or ((self.node_id, self.controller_port),)
        return broker_properties(
            listen_host=HOST,
            advertised_host=HOST,
            port=self.port,
            controller_port=self.controller_port,
            tls=self.tls,
            data_dir=self.data_dir,
            admin_password=self.passwords.get(ADMIN_PRINCIPAL),
            node_id=self.node_id,
            voters=",".join(f"{node}@{HOST}:{port}" for node, port in voters),
            brokers=self.cluster_size,
            measuring_port=self.measuring_port,
        )

    def write_config(self) -> None:
        """(Re)write the properties file; ports may change between runs, data stays.

        It names the admin's password, so only its owner may read it.
        """
        self.tls.ensure()
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"{key}={value}" for key, value in self.properties().items()]
        text = "# Written by infra/platform/kafka.py\n" + "\n".join(lines) + "\n"
        self.config_file.touch(mode=0o600)
        self.config_file.chmod(0o600)
        self.config_file.write_text(text)

    def format_storage(self, cluster_id: str | None = None) -> None:
        """Format the KRaft log directory once, with the admin's SCRAM credential in it;
        `cluster_id` is the cluster's (every node of one has the same), else a new one.

        An existing meta.properties is kept. Storage formatted before the broker required
        authentication holds no admin credential, and nothing could add one: it is refused
        with the way out (`panjereh reset`) rather than started open.
        """
        if (self.data_dir / "meta.properties").exists():
            if not (self.data_dir / _SECURED_MARKER).exists():
                raise PlatformError(
                    f"the Kafka storage in {self.data_dir} predates authenticated Kafka and "
                    "has no admin credential; `panjereh reset` (deletes this home's data) "
                    "makes a new one"
                )
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        classpath = f"{paths.kafka_libs_dir()}/*"
        java = shutil.which("java")
        if java is None:
            raise PlatformError("java not found: run infra/bootstrap.sh (installs a JDK)")
        run(
            [
                java,
                "-cp",
                classpath,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id or new_cluster_id(),
                "-c",
                str(self.config_file),
                "--ignore-formatted",
                "--add-scram",
                f"{MECHANISM}=[name={ADMIN_PRINCIPAL},"
                f"password={self.passwords.get(ADMIN_PRINCIPAL)}]",
            ]
        )
        (self.data_dir / _SECURED_MARKER).write_text("admin SCRAM credential formatted in\n")

    def launch(self, cluster_id: str | None = None) -> ManagedProcess:
        """Resolve jars, write the config, format once and start the broker, unless this
        home's broker already runs; its process either way.

        A port taken by anything else is an error (we would otherwise talk to someone
        else's broker).
        """
        proc = self.process()
        if proc.running():
            return proc
        for port in (self.port, self.controller_port, self.measuring_port):
            if port is not None and port_open(HOST, port):
                raise PlatformError(
                    f"port {port} is taken by another process; choose other Kafka ports "
                    "(PANJEREH_KAFKA_PORT / PANJEREH_KAFKA_CONTROLLER_PORT)"
                )
        resolve_jars()
        self.write_config()
        self.format_storage(cluster_id)
        proc.start(env=_java_env(), cwd=self.home)
        return proc

    def start(self, timeout: float = 90.0) -> None:
        """`launch`, then wait until the broker serves metadata."""
        proc = self.launch()
        wait_until(
            lambda: port_open(HOST, self.port) and brokers_registered(self.admin_access()) > 0,
            timeout=timeout,
            what=f"Kafka on {self.bootstrap}",
            alive=proc.running,
            log=self.log_file,
            interval=0.5,
        )

    def stop(self) -> bool:
        """Stop this home's broker (controlled shutdown on SIGTERM). Data stays."""
        return self.process().stop(timeout=30)


@dataclass(frozen=True)
class KafkaCluster(_Home):
    """The platform's brokers: one node (the default), or several, each a broker and a
    voter of the controller quorum, on consecutive pairs of ports from `port` and
    `controller_port` (node n: `port + 2(n-1)`). They share the home's CA, node
    certificate, admin credential and cluster id."""

    home: Path
    port: int
    controller_port: int
    size: int = 1
    #: A single node's plaintext listener, for measuring (see `broker_properties`).
    measuring_port: int | None = None

    def __post_init__(self) -> None:
        if self.measuring_port is not None and self.size != 1:
            raise ValueError("a measuring listener is for a single broker only")

    @property
    def nodes(self) -> tuple[KafkaNode, ...]:
        if self.size == 1:
            return (
                KafkaNode(
                    self.home, self.port, self.controller_port, measuring_port=self.measuring_port
                ),
            )
        voters = tuple((n + 1, self.controller_port + 2 * n) for n in range(self.size))
        return tuple(
            KafkaNode(self.home, self.port + 2 * n, self.controller_port + 2 * n, n + 1, voters)
            for n in range(self.size)
        )

    @property
    def bootstrap(self) -> str:
        """Every node's host:port, comma-separated, for clients."""
        return ",".join(node.bootstrap for node in self.nodes)

    @property
    def durability(self) -> Durability:
        """How every topic of this cluster is replicated."""
        return Durability.for_brokers(self.size)

    @property
    def log_file(self) -> Path:
        """The first node's log (each node has its own)."""
        return self.nodes[0].log_file

    def processes(self) -> list[ManagedProcess]:
        return [node.process() for node in self.nodes]

    def _cluster_id(self) -> str | None:
        """The id every node is formatted with (kept in the home); a single node makes its
        own at format, as it always has."""
        if self.size == 1:
            return None
        path = self.home / "config" / "kafka-cluster-id"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(new_cluster_id() + "\n")
        return path.read_text().strip()

    def start(self, timeout: float = 120.0) -> None:
        """Every node up (those already running left alone), then wait until the cluster
        serves metadata with all of its brokers."""
        if self.size == 1:
            self.nodes[0].start(timeout)
            return
        cluster_id = self._cluster_id()
        for node in self.nodes:
            node.launch(cluster_id)
        wait_until(
            # Ports first: asking a broker that is not listening yet logs client errors.
            lambda: (
                all(port_open(HOST, node.port) for node in self.nodes)
                and brokers_registered(self.admin_access()) == self.size
            ),
            timeout=timeout,
            what=f"{self.size} Kafka brokers on {self.bootstrap}",
            alive=lambda: all(p.running() for p in self.processes()),
            log=self.log_file,
            interval=0.5,
        )

    def stop(self) -> bool:
        """Stop every node (controlled shutdown on SIGTERM, together). Data stays."""
        return bool(stop_together(self.processes(), timeout=30))

    def quorum_leader(self) -> int:
        """The node id of the controller quorum's leader (the active controller), as
        Kafka's own `kafka-metadata-quorum describe --status` reports it."""
        with tempfile.TemporaryDirectory(prefix="kafka-admin-") as scratch:
            config = Path(scratch) / "admin.properties"
            _write_owner_only(
                config, java_admin_client(self.passwords.get(ADMIN_PRINCIPAL), self.tls.ca_file)
            )
            output = run(
                [
                    shutil.which("java") or "java",
                    # A short-lived tool: start fast rather than run fast.
                    "-XX:TieredStopAtLevel=1",
                    "-XX:+UseSerialGC",
                    "-cp",
                    f"{resolve_jars()}/*",
                    "org.apache.kafka.tools.MetadataQuorumCommand",
                    "--bootstrap-server",
                    self.bootstrap,
                    "--command-config",
                    str(config),
                    "describe",
                    "--status",
                ]
            ).stdout
        for line in output.splitlines():
            if line.startswith("LeaderId:"):
                return int(line.split(":", 1)[1])
        raise PlatformError(f"no LeaderId in the quorum's status:\n{output}")


#: Who a client of the measuring listener is: Kafka's name for an unauthenticated client.
MEASURING_PRINCIPAL = "ANONYMOUS"


def broker_properties(
    *,
    listen_host: str,
    advertised_host: str,
    port: int,
    controller_port: int,
    tls: PlatformTls,
    data_dir: Path,
    admin_password: str,
    node_id: int = 1,
    voters: str | None = None,
    brokers: int = 1,
    measuring_port: int | None = None,
) -> dict[str, str]:
    """One combined broker+controller node's configuration, authenticated and authorized.

    The same for `panjereh up`, the test harness and the compose file's broker (which
    `panjereh kafka-config` writes); only addresses and paths differ. In a cluster of
    `brokers` nodes (`voters` names the quorum), the broker's own topics (offsets,
    transactions) get the cluster's durability, as every platform topic does.

    `measuring_port` adds a listener without TLS or authentication, whose clients act as
    a super user: only the benchmarks' own broker has one, and only when a benchmark is
    asked to measure what TLS and SCRAM cost (`--transport plaintext`). Nothing else
    sets it.
    """
    durability = Durability.for_brokers(brokers)
    replicas = str(durability.replication_factor)
    in_sync = str(durability.min_insync_replicas)
    jaas = _admin_jaas(admin_password)
    properties = {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.voters": voters or f"{node_id}@{advertised_host}:{controller_port}",
        "listeners": (
            f"CLIENT://{listen_host}:{port},CONTROLLER://{listen_host}:{controller_port}"
        ),
        "advertised.listeners": f"CLIENT://{advertised_host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "CLIENT",
        "listener.security.protocol.map": "CLIENT:SASL_SSL,CONTROLLER:SSL",
        # Clients: SCRAM over TLS. The node talks to itself on CLIENT as admin.
        # Both, so a principal's secret can be rotated without a moment of refusal.
        "sasl.enabled.mechanisms": "SCRAM-SHA-512,SCRAM-SHA-256",
        "sasl.mechanism.inter.broker.protocol": MECHANISM,
        f"listener.name.client.{MECHANISM.lower()}.sasl.jaas.config": jaas,
        "listener.name.client.scram-sha-256.sasl.jaas.config": jaas,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(tls.node_keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(tls.ca_file),
        # The controller listener: mutual TLS; only the node certificate gets in.
        "listener.name.controller.ssl.client.auth": "required",
        "listener.name.controller.ssl.principal.mapping.rules": (
            f"RULE:^CN={NODE_COMMON_NAME}$/{ADMIN_PRINCIPAL}/"
        ),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": f"User:{ADMIN_PRINCIPAL}",
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "default.replication.factor": replicas,
        "min.insync.replicas": in_sync,
        # Internal topics cannot have more replicas than there are nodes.
        "offsets.topic.replication.factor": replicas,
        "offsets.topic.num.partitions": "3",
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": in_sync,
        "transaction.state.log.num.partitions": "3",
        "share.coordinator.state.topic.replication.factor": replicas,
        "share.coordinator.state.topic.min.isr": in_sync,
        # Tests join and leave consumer groups constantly; don't wait for stragglers.
        "group.initial.rebalance.delay.ms": "0",
        # Topics are declared in shared/topics.py and created explicitly, never by typo.
        "auto.create.topics.enable": "false",
        "log.retention.check.interval.ms": "60000",
        # Every agency has ten channels (five, and their dead letters): a start loads a
        # couple of thousand partition logs, one directory at a time by default.
        "num.recovery.threads.per.data.dir": "2",
    }
    if measuring_port is not None:
        properties["listeners"] += f",MEASURING://{listen_host}:{measuring_port}"
        properties["advertised.listeners"] += f",MEASURING://{advertised_host}:{measuring_port}"
        properties["listener.security.protocol.map"] += ",MEASURING:PLAINTEXT"
        properties["super.users"] += f";User:{MEASURING_PRINCIPAL}"
    return properties


#: Where the broker of the compose file reads what `write_container_config` writes.
CONTAINER_DATA_DIR = Path("/var/lib/kafka/data")


def write_container_config(
    directory: Path, *, hostname: str, admin_password: str, owner: int | None = None
) -> list[Path]:
    """The broker of a container deployment: CA, node certificate, its configuration, and
    a Java client configuration for its health check, all in `directory` (a volume).

    The CA and node certificate are made once and kept (clients keep trusting them); the
    configuration files are rewritten each time. `owner` is the uid the broker runs as:
    its private files become its own, and nobody else's.
    """
    tls = PlatformTls(directory)
    tls.ensure(hostnames=(hostname, "localhost"))
    properties = broker_properties(
        listen_host="",
        advertised_host=hostname,
        port=9092,
        controller_port=9093,
        tls=tls,
        data_dir=CONTAINER_DATA_DIR,
        admin_password=admin_password,
    )
    server = directory / "server.properties"
    client = directory / "admin-client.properties"
    _write_owner_only(server, "\n".join(f"{k}={v}" for k, v in properties.items()) + "\n")
    _write_owner_only(client, java_admin_client(admin_password, tls.ca_file))
    private = [server, client, tls.node_keystore]
    if owner is not None:
        for path in private:
            os.chown(path, owner, owner)
    return [tls.ca_file, *private]


def _admin_jaas(password: str) -> str:
    return (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{ADMIN_PRINCIPAL}" password="{password}";'
    )


def java_admin_client(password: str, ca_file: Path) -> str:
    """A Java client's configuration as `admin`, for Kafka's own tools."""
    return (
        "security.protocol=SASL_SSL\n"
        f"sasl.mechanism={MECHANISM}\n"
        f"sasl.jaas.config={_admin_jaas(password)}\n"
        "ssl.truststore.type=PEM\n"
        f"ssl.truststore.location={ca_file}\n"
    )


def _write_owner_only(path: Path, text: str) -> None:
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(text)


def new_cluster_id() -> str:
    """A random cluster id as `kafka-storage random-uuid` makes it, without starting a JVM.

    Kafka ids are 16 random bytes in unpadded URL-safe base64, never starting with '-'.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _java_env() -> dict[str, str]:
    env = dict(os.environ)
    # Don't let a developer's JAVA_TOOL_OPTIONS/CLASSPATH change what the broker runs.
    env.pop("CLASSPATH", None)
    return env


def brokers_registered(access: KafkaAccess, timeout: float = 5.0) -> int:
    """How many brokers the cluster's metadata lists, asked as `access` (0 when the
    request fails)."""

    async def probe() -> int:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(**access.client_options(), request_timeout_ms=3000)
        try:
            await asyncio.wait_for(admin.start(), timeout)
            cluster = await asyncio.wait_for(admin.describe_cluster(), timeout)
            return len(cluster["brokers"])
        except Exception:
            return 0
        finally:
            # A half-open client may fail to close; nothing to do about it.
            with contextlib.suppress(Exception):
                await admin.close()

    return run_coroutine(probe)
