"""A single-node KRaft Kafka broker run from the jars that Maven resolves (no Docker).

The release is pinned in infra/kafka/pom.xml; its jars are cached once per version in
.cache/kafka/<version>/libs and shared by every platform home on the machine.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
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
    wait_until,
)

HOST = "127.0.0.1"
_COMPLETE_MARKER = ".complete"


def resolve_jars() -> Path:
    """The broker's classpath directory, downloading it with `mvn` the first time.

    Jars are copied into a temporary directory and renamed into place, so an interrupted
    download never leaves a half-filled cache that would later be trusted.
    """
    libs = paths.kafka_libs_dir()
    if (libs / _COMPLETE_MARKER).exists():
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
        (staging / _COMPLETE_MARKER).write_text(paths.kafka_version() + "\n")
        if libs.exists():
            shutil.rmtree(libs)
        staging.rename(libs)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return libs


@dataclass(frozen=True)
class KafkaNode:
    """One combined broker+controller node whose config, data and logs live under `home`."""

    home: Path
    port: int
    controller_port: int

    @property
    def bootstrap(self) -> str:
        """host:port for clients."""
        return f"{HOST}:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.home / "kafka"

    @property
    def config_file(self) -> Path:
        return self.home / "config" / "kafka.properties"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "kafka.log"

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
            name="kafka",
            command=command,
            pid_file=self.home / "run" / "kafka.pid",
            log_file=self.log_file,
            home=self.home,
        )

    def properties(self) -> dict[str, str]:
        """The broker configuration: single node, loopback only, small and fast to start."""
        return {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{HOST}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            # A single node: internal topics cannot have more replicas than that.
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "3",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "3",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # Tests join and leave consumer groups constantly; don't wait for stragglers.
            "group.initial.rebalance.delay.ms": "0",
            # Topics are declared in shared/topics.py and created explicitly, never by typo.
            "auto.create.topics.enable": "false",
            "log.retention.check.interval.ms": "60000",
        }

    def write_config(self) -> None:
        """(Re)write the properties file; ports may change between runs, data stays."""
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"{key}={value}" for key, value in self.properties().items()]
        self.config_file.write_text("# Written by infra/platform/kafka.py\n" + "\n".join(lines))

    def format_storage(self) -> None:
        """Format the KRaft log directory, once: an existing meta.properties is kept."""
        if (self.data_dir / "meta.properties").exists():
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
                new_cluster_id(),
                "-c",
                str(self.config_file),
                "--ignore-formatted",
            ]
        )

    def start(self, timeout: float = 90.0) -> None:
        """Resolve jars, format once, start the broker and wait until it serves metadata.

        A broker of this home that already runs is left alone; a port taken by anything
        else is an error (we would otherwise talk to someone else's broker).
        """
        proc = self.process()
        if not proc.running():
            for port in (self.port, self.controller_port):
                if port_open(HOST, port):
                    raise PlatformError(
                        f"port {port} is taken by another process; choose other Kafka ports "
                        "(PANJEREH_KAFKA_PORT / PANJEREH_KAFKA_CONTROLLER_PORT)"
                    )
            resolve_jars()
            self.write_config()
            self.format_storage()
            proc = self.process()
            proc.start(env=_java_env(), cwd=self.home)
        wait_until(
            lambda: port_open(HOST, self.port) and metadata_ok(self.bootstrap),
            timeout=timeout,
            what=f"Kafka on {self.bootstrap}",
            alive=proc.running,
            log=self.log_file,
            interval=0.5,
        )

    def stop(self) -> bool:
        """Stop this home's broker (controlled shutdown on SIGTERM). Data stays."""
        return self.process().stop(timeout=30)


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


def metadata_ok(bootstrap: str, timeout: float = 5.0) -> bool:
    """Whether a Kafka metadata request to `bootstrap` succeeds."""

    async def probe() -> bool:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        try:
            await asyncio.wait_for(admin.start(), timeout)
            await asyncio.wait_for(admin.list_topics(), timeout)
            return True
        except Exception:
            return False
        finally:
            # A half-open client may fail to close; nothing to do about it.
            with contextlib.suppress(Exception):
                await admin.close()

    return run_coroutine(probe)
