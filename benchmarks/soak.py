"""A soak: the whole platform under the simulator's steady load for a while. Each
process's memory and CPU, each service's outbox and inbox, and the consumer lag, at the
end of the warm-up and at the end; no process may grow by more than 10% after warm-up.

    PANJEREH_TEST_SLOT=N .venv/bin/python benchmarks/soak.py [--minutes 10]
        [--warmup-minutes 2] [--json PATH]

`make soak` runs it with those defaults. It starts a platform of its own, in development,
in `.data/soak-<slot>` on ports of its own (so it touches neither the developer's platform
nor a test run's nor the benchmarks'), with the simulator at a steady rate
(`--deliveries`, `--sign-ins`, `--requests` per second), and brings it down at the end
(its home is kept, its logs above all). Exit status 1 when a process grew by more than
`--growth` (10%) between the two samples.

What a sample holds, per process: resident memory (`psutil`), CPU seconds so far, and
what its own `/metrics` says of its consumer lag and outbox backlog (the figures
Prometheus scrapes); per service schema: the outbox's rows (all, and still waiting) and
the inbox's (`processed_events`). The e2e suite runs `soak()` on its live platform for
seconds, so that this script cannot rot.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import asyncpg
import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.stage import SLOT, platform_ports, write_figures  # noqa: E402
from infra.platform import SERVICE_PROCESSES, LocalPlatform  # noqa: E402
from shared.db import SERVICES  # noqa: E402

HOME = REPO / ".data" / f"soak-{SLOT}"
#: A window of ports no other slot's benchmarks, tests or platform use.
PORTS = platform_ports(kafka=49096, postgres=55497, first_process=18061)
#: The most a process's resident memory may grow after the warm-up.
GROWTH = 0.10


@dataclass
class ProcessSample:
    rss_mb: float
    cpu_s: float
    consumer_lag: float | None  # records; None: it reads no topic, or has no /metrics
    outbox_backlog: float | None  # rows waiting; None: it has no outbox
    # The Faust worker's RocksDB memory in use (its block cache and memtables), part of
    # its resident memory: what of its growth is that bounded budget filling up.
    rocksdb_mb: float | None = None


@dataclass
class Sample:
    at: float  # time.monotonic()
    processes: dict[str, ProcessSample] = field(default_factory=dict)
    # Per service schema: outbox rows, of which waiting, and inbox rows.
    outbox_rows: dict[str, int] = field(default_factory=dict)
    outbox_waiting: dict[str, int] = field(default_factory=dict)
    inbox_rows: dict[str, int] = field(default_factory=dict)


def _metric_sum(exposition: str, name: str) -> float | None:
    """The sum of every sample of `name` in a Prometheus exposition (None: not there)."""
    total, found = 0.0, False
    for family in text_string_to_metric_families(exposition):
        if family.name == name:
            for sample in family.samples:
                total += sample.value
                found = True
    return total if found else None


async def sample(platform: LocalPlatform, http: httpx.AsyncClient) -> Sample:
    """Every running process's figures and every service schema's table sizes, now."""
    taken = Sample(at=time.monotonic())
    for process in SERVICE_PROCESSES:
        pid = platform.process(process).pid()
        if pid is None:
            continue
        try:
            info = psutil.Process(pid)
            memory, cpu = info.memory_info().rss, info.cpu_times()
        except psutil.NoSuchProcess:
            continue
        lag = backlog = rocksdb = None
        try:
            answer = await http.get(platform.service_url(process) + "/metrics")
            if answer.status_code == 200:
                lag = _metric_sum(answer.text, "panjereh_consumer_lag_records")
                if lag is None:  # the Faust worker names its lag apart
                    lag = _metric_sum(answer.text, "panjereh_worker_lag_records")
                backlog = _metric_sum(answer.text, "panjereh_outbox_backlog_rows")
                rocksdb = _metric_sum(answer.text, "panjereh_worker_rocksdb_memory_bytes")
        except httpx.HTTPError:
            pass  # the process's figures without its own: still a sample
        taken.processes[process.name] = ProcessSample(
            rss_mb=memory / 2**20,
            cpu_s=cpu.user + cpu.system,
            consumer_lag=lag,
            outbox_backlog=backlog,
            rocksdb_mb=None if rocksdb is None else rocksdb / 2**20,
        )
    connection = await asyncpg.connect(platform.admin_database_url)
    try:
        for schema in SERVICES:
            taken.outbox_rows[schema] = await connection.fetchval(
                f'SELECT count(*) FROM "{schema}".outbox'
            )
            taken.outbox_waiting[schema] = await connection.fetchval(
                f'SELECT count(*) FROM "{schema}".outbox WHERE published_at IS NULL'
            )
            taken.inbox_rows[schema] = await connection.fetchval(
                f'SELECT count(*) FROM "{schema}".processed_events'
            )
    finally:
        await connection.close()
    return taken


def growth(first: Sample, last: Sample) -> dict[str, float]:
    """Each process's resident memory growth from `first` to `last`, as a fraction."""
    return {
        name: last.processes[name].rss_mb / before.rss_mb - 1
        for name, before in first.processes.items()
        if name in last.processes and before.rss_mb > 0
    }


def _pair(before: float | None, after: float | None) -> str:
    return "—" if before is None or after is None else f"{before:.0f} → {after:.0f}"


def report(first: Sample, last: Sample, limit: float) -> str:
    """The two samples side by side, and the verdict."""
    seconds = last.at - first.at
    lines = [f"{'process':<16}{'memory MB':>14}{'growth':>9}{'CPU %':>8}{'lag':>16}{'outbox':>12}"]
    grown = growth(first, last)
    for name, before in first.processes.items():
        after = last.processes.get(name)
        if after is None:
            lines.append(f"{name:<16} stopped during the soak")
            continue
        cpu = (after.cpu_s - before.cpu_s) / seconds * 100 if seconds > 0 else float("nan")
        lines.append(
            f"{name:<16}{_pair(before.rss_mb, after.rss_mb):>14}{grown[name]:>+9.1%}{cpu:>8.1f}"
            f"{_pair(before.consumer_lag, after.consumer_lag):>16}"
            f"{_pair(before.outbox_backlog, after.outbox_backlog):>12}"
        )
    for name, before in first.processes.items():
        after = last.processes.get(name)
        # Every process exports the gauge (one declaration in shared/); only the worker's
        # is ever above zero.
        if after is not None and (before.rocksdb_mb or after.rocksdb_mb):
            lines.append(
                f"{name:<16}RocksDB memory {_pair(before.rocksdb_mb, after.rocksdb_mb)} MB"
                " (part of its memory above)"
            )
    lines += ["", f"{'schema':<16}{'outbox rows':>16}{'waiting':>12}{'inbox rows':>20}"]
    for schema in first.outbox_rows:
        lines.append(
            f"{schema:<16}{_pair(first.outbox_rows[schema], last.outbox_rows[schema]):>16}"
            f"{_pair(first.outbox_waiting[schema], last.outbox_waiting[schema]):>12}"
            f"{_pair(first.inbox_rows[schema], last.inbox_rows[schema]):>20}"
        )
    over = {name: value for name, value in grown.items() if value > limit}
    verdict = (
        f"every process within {limit:.0%} of its memory"
        if not over
        else "grew by more than "
        + f"{limit:.0%}: "
        + ", ".join(f"{name} ({value:+.1%})" for name, value in over.items())
    )
    lines += ["", f"over {seconds:.0f} s after the warm-up: {verdict}"]
    return "\n".join(lines)


async def soak(
    platform: LocalPlatform, seconds: float, warmup_seconds: float, limit: float = GROWTH
) -> tuple[Sample, Sample]:
    """Sample `platform` (running, under load) after `warmup_seconds`, and again after
    `seconds` more; print the report; the two samples."""
    async with httpx.AsyncClient(timeout=10) as http:
        print(f"warming up for {warmup_seconds:.0f} s", flush=True)
        await asyncio.sleep(warmup_seconds)
        first = await sample(platform, http)
        print(f"first sample taken; soaking for {seconds:.0f} s", flush=True)
        await asyncio.sleep(seconds)
        last = await sample(platform, http)
    print(report(first, last, limit), flush=True)
    return first, last


def figures(first: Sample, last: Sample) -> dict[str, object]:
    return {
        "seconds": last.at - first.at,
        "growth": growth(first, last),
        "first": asdict(first),
        "last": asdict(last),
    }


def simulator_settings(arguments: argparse.Namespace) -> Mapping[str, str]:
    return {
        "PANJEREH_SIMULATOR_DELIVERIES_PER_SECOND": str(arguments.deliveries),
        "PANJEREH_SIMULATOR_SIGN_INS_PER_SECOND": str(arguments.sign_ins),
        "PANJEREH_SIMULATOR_REQUESTS_PER_SECOND": str(arguments.requests),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="the soak after warm-up")
    parser.add_argument("--warmup-minutes", type=float, default=2.0)
    parser.add_argument("--deliveries", type=int, default=20, help="per second")
    parser.add_argument("--sign-ins", type=int, default=5, help="per second")
    parser.add_argument("--requests", type=int, default=10, help="exchange requests per second")
    parser.add_argument("--growth", type=float, default=GROWTH, help="0.10: 10%%")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    arguments = parser.parse_args()
    os.environ.update(simulator_settings(arguments))
    HOME.mkdir(parents=True, exist_ok=True)
    HOME.chmod(0o755)  # PostgreSQL, run as its own user when we are root, enters it
    platform = LocalPlatform(HOME, PORTS, environment="development")
    # Stopped by SIGTERM (or SIGINT, which a shell ignores in a job it runs in the
    # background): bring the platform down all the same.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        platform.up()
        first, last = asyncio.run(
            soak(platform, arguments.minutes * 60, arguments.warmup_minutes * 60, arguments.growth)
        )
    finally:
        platform.down()
    if arguments.json is not None:
        write_figures(arguments, figures(first, last))
    if any(value > arguments.growth for value in growth(first, last).values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
