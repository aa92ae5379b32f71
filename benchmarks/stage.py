"""Where a benchmark runs, and as whom: the platform's broker and database, its principals,
and the agencies it simulates.

A benchmark either starts infrastructure of its own (Kafka and PostgreSQL in
`.data/bench-<slot>`, on ports shifted by `PANJEREH_TEST_SLOT` × 100, with an access
manager in the benchmark's process) or is given a running platform's home (`--home`):
its `credentials/` folder holds every principal's librdkafka properties file, and that
platform's access manager (which `panjereh up` runs, and the test session's fixture)
issues the simulated agencies their credentials there.

Every process and every client connects as the principal whose part it plays; only what
merely observes (counting what landed on a topic) reads as the platform's admin.

`--transport plaintext` measures what TLS and SCRAM cost: the benchmark's own broker
then also opens a plaintext listener (loopback, its clients a super user; see
`infra.platform.kafka.broker_properties`), and every process and client of the benchmark
uses it as the same principal, so the figures differ from a `--transport tls` run on the
same broker by the transport alone (authorization too: the listener's clients skip the
ACLs). Only on the benchmark's own infrastructure; `--down` closes the listener again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from infra.platform import LocalPlatform, Ports
from infra.platform.processes import port_open
from infra.platform.secrets import SecretStore
from shared.kafka_access import KafkaAccess
from shared.principals import ADMIN, agency_principal

REPO = Path(__file__).resolve().parent.parent
SLOT = int(os.environ.get("PANJEREH_TEST_SLOT", "0"))
SHIFT = SLOT * 100


def bench_ports() -> Ports:
    """The ports of the benchmarks' own infrastructure for this slot."""
    return Ports(kafka=49092 + SHIFT, kafka_controller=49093 + SHIFT, postgres=55499 + SHIFT)


#: The benchmarks' own broker's plaintext listener, with `--transport plaintext`.
MEASURING_PORT = 49098 + SHIFT


#: The platform's processes, in the order a benchmark's own platform numbers their ports.
_PROCESS_PORTS = (
    "identity",
    "catalog",
    "exchange",
    "metrics",
    "metrics_worker",
    "simulator",
    "access_manager",
)


def platform_ports(*, kafka: int, postgres: int, first_process: int) -> Ports:
    """The ports of a whole platform a benchmark brings up, for this slot: Kafka's broker
    at `kafka` and its controller at the next, PostgreSQL at `postgres`, and each process
    from `first_process` up."""
    return Ports(
        kafka=kafka + SHIFT,
        kafka_controller=kafka + 1 + SHIFT,
        postgres=postgres + SHIFT,
        **{name: first_process + index + SHIFT for index, name in enumerate(_PROCESS_PORTS)},
    )


def add_arguments(parser: argparse.ArgumentParser, *, database: bool) -> None:
    """The options every benchmark shares: a running platform to use, and `--smoke`."""
    parser.add_argument(
        "--home",
        type=Path,
        default=None,
        help="use the running platform whose home this is (its credentials and its access"
        " manager) instead of starting the benchmark's own Kafka and PostgreSQL",
    )
    if database:
        parser.add_argument(
            "--database-url",
            default=None,
            help="with --home: the service's own database role's DSN",
        )
    parser.add_argument(
        "--down", action="store_true", help="stop the benchmark's own infrastructure after"
    )
    parser.add_argument(
        "--transport",
        choices=("tls", "plaintext"),
        default="tls",
        help="plaintext: every client through a listener without TLS or SCRAM, to measure"
        " what they cost (the benchmark's own infrastructure only); tls, as deployed: the"
        " default",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a few seconds' run of every phase, to show the benchmark still works;"
        " its figures mean nothing",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="PATH",
        help="also write the figures, one flat JSON object, to PATH (benchmarks/run_all.py"
        " reads them there)",
    )


@dataclass
class Stage:
    """A running platform as a benchmark sees it.

    Contract: `platform` is set only when the benchmark started the infrastructure itself
    (and then it also runs the access manager: `agencies()`).
    """

    home: Path
    platform: LocalPlatform | None
    database_url: str | None = None
    #: The measuring listener's host:port, with `--transport plaintext`.
    measuring_bootstrap: str | None = None

    def credentials_file(self, principal: str) -> Path:
        """The librdkafka properties file the platform issued `principal` (over TLS)."""
        return self.home / "credentials" / f"{principal}.properties"

    def access(self, principal: str) -> KafkaAccess:
        """How `principal` reaches the broker in this benchmark (`--transport`)."""
        return self._transported(KafkaAccess.read(self.credentials_file(principal)))

    def kafka_environment(self, principal: str) -> dict[str, str]:
        """The `PANJEREH_KAFKA_*` variables that give a process `principal`'s access."""
        if self.measuring_bootstrap is None:
            return {"PANJEREH_KAFKA_CREDENTIALS_FILE": str(self.credentials_file(principal))}
        return self.access(principal).environment()

    def _transported(self, access: KafkaAccess) -> KafkaAccess:
        if self.measuring_bootstrap is None:
            return access
        return access.towards_measuring_listener(self.measuring_bootstrap)

    @property
    def admin(self) -> KafkaAccess:
        return self.access(ADMIN)

    @contextlib.asynccontextmanager
    async def agencies(self) -> AsyncIterator[None]:
        """While inside, agencies recorded on `catalog.agencies` get their channel and
        credentials: from an access manager of the benchmark's own on its own
        infrastructure, from the platform's on a given one."""
        if self.platform is None:
            yield
            return
        from infra.access.manager import AccessManager

        manager = AccessManager(
            KafkaAccess.read(self.credentials_file(ADMIN)),
            SecretStore(self.home / "secrets" / "kafka.json"),
            development=True,
            credentials_dir=self.home / "credentials",
            retry_seconds=0.5,
        )
        task = asyncio.create_task(manager.run(), name="access-manager")
        ready = asyncio.create_task(manager.ready.wait())
        await asyncio.wait({task, ready}, timeout=120, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            ready.cancel()
            task.result()  # a manager that could not start says why
        try:
            yield
        finally:
            await manager.stop()
            await asyncio.wait({task}, timeout=10)

    async def agency_access(self, agency: str, wait_seconds: float = 90) -> KafkaAccess:
        """An agency's own access, once the access manager has issued it (the agency must
        be recorded on `catalog.agencies` first)."""
        path = self.credentials_file(agency_principal(agency))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while not path.exists():
            if loop.time() > deadline:
                raise SystemExit(
                    f"no credentials issued to {agency} in {wait_seconds:.0f} s: is the platform's"
                    " access manager running?"
                )
            await asyncio.sleep(0.2)
        access = self._transported(KafkaAccess.read(path))
        # The file is written once the broker's controller has the agency's user; the
        # broker may take a moment more to accept it (seen: a SCRAM failure right after).
        while True:
            probe = AIOKafkaProducer(**access.client_options(), client_id="bench-probe")
            try:
                await probe.start()
                return access
            except KafkaConnectionError:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.5)
            finally:
                await probe.stop()


def own_platform(*, measuring: bool = False) -> LocalPlatform:
    """The benchmarks' own Kafka and PostgreSQL of this slot (`.data/bench-<slot>`); with
    `measuring`, its broker also has the plaintext listener (`MEASURING_PORT`)."""
    return LocalPlatform(
        home=REPO / ".data" / f"bench-{SLOT}",
        ports=bench_ports(),
        measuring_port=MEASURING_PORT if measuring else None,
    )


def open_stage(arguments: argparse.Namespace, service: str | None) -> Stage:
    """The platform named by `--home`, or the benchmark's own (started if need be).

    `service` names the process whose database role the benchmark runs as (None: it
    needs no database).
    """
    measuring = arguments.transport == "plaintext"
    if arguments.home is not None:
        if measuring:
            raise SystemExit("--transport plaintext needs the benchmark's own infrastructure")
        url = getattr(arguments, "database_url", None)
        if service is not None and not url:
            raise SystemExit("--home needs --database-url: the service's own role's DSN")
        return Stage(home=arguments.home.resolve(), platform=None, database_url=url)
    platform = own_platform(measuring=measuring)
    platform.start_infrastructure()
    if measuring and not port_open("127.0.0.1", MEASURING_PORT):
        # Its broker was started without the listener: once more, with it.
        platform.kafka.stop()
        platform.start_infrastructure()
    url = platform.database_url_for(service) if service is not None else None
    return Stage(
        home=platform.home,
        platform=platform,
        database_url=url,
        measuring_bootstrap=f"127.0.0.1:{MEASURING_PORT}" if measuring else None,
    )


def fill_sizes(arguments: argparse.Namespace, **sizes: tuple[Any, Any]) -> None:
    """Each size the command line left out: (a full run's, a smoke run's)."""
    for name, (full, smoke) in sizes.items():
        if getattr(arguments, name) is None:
            setattr(arguments, name, smoke if arguments.smoke else full)


def run_on_stage(
    arguments: argparse.Namespace,
    service: str | None,
    bench: Callable[[Stage], Coroutine[Any, Any, None]],
) -> None:
    """Run a benchmark on its stage (see `open_stage`), closed afterwards as asked."""
    stage = open_stage(arguments, service)
    try:
        asyncio.run(bench(stage))
    finally:
        close_stage(stage, arguments)


def write_figures(arguments: argparse.Namespace, figures: dict[str, Any]) -> None:
    """Write `figures` (name -> number, text or None) to `--json`, if given.

    A figure that could not be computed (NaN: nothing came back) is written as null.
    """
    if arguments.json is None:
        return
    clean = {
        name: None if isinstance(value, float) and not math.isfinite(value) else value
        for name, value in figures.items()
    }
    arguments.json.parent.mkdir(parents=True, exist_ok=True)
    arguments.json.write_text(json.dumps(clean, indent=2, sort_keys=True) + "\n")


def close_stage(stage: Stage, arguments: argparse.Namespace) -> None:
    """Stop the benchmark's own infrastructure if asked (`--down`); it is kept otherwise,
    so the next run starts in seconds."""
    if stage.platform is not None and arguments.down:
        stage.platform.down()
