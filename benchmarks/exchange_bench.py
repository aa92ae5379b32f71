"""Exchange benchmark: sustained transactions per second and round-trip latency.

Runs the exchange as a real process against a real broker and database, with two
agencies on the client library: a consumer offering requests at a fixed rate (open loop:
request i leaves at t0 + i/rate, whatever happened to the earlier ones) and a provider
whose handler answers at once. Each offered load sends a bounded number of requests
(`--seconds` × rate). Round trip = from the consumer's send to the final outcome in its
hands (sign, Kafka, verify, authorise, audit, forward, answer, check, deliver). For each
offered load it also prints the exchange process's own CPU time (user + system, from the
kernel's accounting of that process) per answered transaction.

Before the measured loads, a warm-up load (`--warmup-seconds` at 50/s, not reported):
the broker's TLS path is compiled by the JVM's JIT as it runs, and figures measured cold
are not the steady state.

    PANJEREH_TEST_SLOT=3 .venv/bin/python benchmarks/exchange_bench.py [--rates 100 500 1000]

It starts its own Kafka and PostgreSQL under `.data/bench-<slot>` on ports of its slot
(left running for the next run unless `--down`) with an access manager, or uses the
running platform of `--home` with the exchange's role `--database-url` (see
benchmarks/stage.py). The exchange runs as its own principal; each agency connects with
the credentials the access manager issued it, and trusts only what the exchange signed.
`--smoke` offers a few requests at a low rate, to show the benchmark still works.
The floor is the national average: 8 billion transactions a year ≈ 254 per second.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import psutil
from aiokafka.errors import KafkaError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from panjereh_agency import ExchangeClient, ExchangeKeys, ProviderWorker

from benchmarks.stage import (
    SHIFT,
    Stage,
    add_arguments,
    fill_sizes,
    run_on_stage,
    write_figures,
)
from shared.events.exchange import DataRequestForwarded
from shared.logging import configure_logging
from shared.principals import PRINCIPAL_SPECS, Principal
from shared.settings import PlatformSettings
from shared.topics import Topic, channel
from tests.groups import until_settled
from tests.integration.exchange.helpers import (
    ISSUER,
    AgencySystem,
    Issuer,
    announce,
    announce_world,
    eventually,
    grant,
    register_data_service,
)

FLOOR_PER_SECOND = 8_000_000_000 / (365 * 24 * 3600)
CITIZEN = "be" * 32
#: The agencies connected to the exchange in the seed articles (DOMAIN.md), each with its
#: channels.
NATIONAL_AGENCIES = 151
#: The warm-up's offered rate: a full run's, a smoke run's.
WARMUP_RATE = (50, 10)


def idle_agencies(total: int) -> list[AgencySystem]:
    """The rest of a register of `total` agencies, beside the two that trade: the exchange
    reads every agency's channels, so what a poll costs depends on how many there are.
    Their codes are fixed, so a stage kept between runs keeps the same register."""
    return [AgencySystem(f"bench-idle-{number:03d}") for number in range(max(0, total - 2))]


async def answer_at_once(request: DataRequestForwarded) -> dict[str, Any]:
    return {"alive": True}


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def cpu_seconds(*processes: psutil.Process) -> float:
    """User + system CPU seconds the processes have used so far (the kernel's accounting,
    /proc/<pid>/stat on Linux)."""
    return sum(float(times.user + times.system) for times in (p.cpu_times() for p in processes))


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine has been busy so far (not idle, not waiting
    for I/O), all processes together."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


async def offered_load(
    client: ExchangeClient, data_service: str, rate: int, count: int
) -> dict[str, float]:
    """Send `count` requests at `rate` per second; figures of what came back."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    done_at: list[float] = []

    async def one(sent_at: float) -> None:
        try:
            transaction_id, future = await client.send(
                data_service, "benefit-eligibility", {"citizen": CITIZEN}, citizen=CITIZEN
            )
        except KafkaError:
            # Past what the machine carries, the broker stops acknowledging in time: the
            # request is counted as not sent, and the load goes on, so the run still
            # reports what was sustained.
            outcomes["unsent"] = outcomes.get("unsent", 0) + 1
            return
        try:
            outcome = await asyncio.wait_for(future, 120)
        except TimeoutError:
            outcomes["lost"] = outcomes.get("lost", 0) + 1
            return
        finally:
            client.forget(transaction_id)
        now = loop.time()
        latencies.append(now - sent_at)
        done_at.append(now)
        outcomes[outcome.outcome] = outcomes.get(outcome.outcome, 0) + 1

    start = loop.time()
    tasks = []
    for index in range(count):
        due = start + index / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(loop.time())))
    await asyncio.gather(*tasks)
    elapsed = (max(done_at) - start) if done_at else float("nan")
    latencies.sort()
    unsent = outcomes.get("unsent", 0)
    return {
        "offered": rate,
        "sent": count - unsent,
        "unsent": unsent,
        "answered": outcomes.get("answered", 0),
        "other": count - unsent - outcomes.get("answered", 0),
        "throughput": len(done_at) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
        if latencies
        else float("nan"),
    }


async def run(arguments: argparse.Namespace, stage: Stage) -> None:
    configure_logging("exchange-bench", PlatformSettings(log_level="WARNING"))
    figures: dict[str, float | None] = {
        "warmup_seconds": arguments.warmup_seconds,
        "seconds": arguments.seconds,
    }
    best: dict[int, float] = {}
    for count in arguments.instances:
        print(f"=== {count} exchange instance{'s' if count > 1 else ''}", flush=True)
        rows = await measure(arguments, stage, count)
        best[count] = summarise(rows, figures, "" if count == 1 else f"_with_{count}")
    if 1 in best and 2 in best:
        figures["two_instances_ratio"] = best[2] / best[1]
        print(f"two instances against one, best sustained: {best[2] / best[1]:.2f}x")
    write_figures(arguments, figures)


def start_exchanges(
    arguments: argparse.Namespace, stage: Stage, count: int
) -> list[subprocess.Popen[bytes]]:
    """`count` exchange processes in one consumer group, on ports from `--port` on."""
    database_url = stage.database_url
    assert database_url is not None
    log = open(Path(arguments.log), "ab")  # noqa: SIM115 (the children's log, for their life)
    processes = []
    for index in range(count):
        env = os.environ | {
            **stage.kafka_environment(Principal.EXCHANGE),
            "PANJEREH_DATABASE_URL": database_url,
            "PANJEREH_EXCHANGE_PORT": str(arguments.port + index),
            "PANJEREH_LOG_LEVEL": "WARNING",
            # The benchmark stands in for identity: the exchange trusts its issuer alone.
            "PANJEREH_TOKEN_ISSUER": ISSUER,
        }
        # cProfile writes its file as the process ends: `measure` stops it with SIGINT.
        profiled = ["-m", "cProfile", "-o", arguments.profile] if arguments.profile else []
        command = [sys.executable, *(profiled if index == 0 else []), "-m", "services.exchange"]
        processes.append(subprocess.Popen(command, env=env, stdout=log, stderr=log))
    log.close()  # each child holds its own descriptor
    return processes


async def measure(
    arguments: argparse.Namespace, stage: Stage, instances: int
) -> list[dict[str, float]]:
    """Each offered load through `instances` exchange processes: one row each."""
    port = arguments.port
    database_url = stage.database_url
    assert database_url is not None
    started = time.perf_counter()

    def step(done: str) -> None:
        # Where a run that hangs stopped (the runner shows a failed benchmark's last lines).
        print(f"  {time.perf_counter() - started:6.1f} s  {done}", flush=True)

    exchanges = await asyncio.to_thread(start_exchanges, arguments, stage, instances)
    try:

        async def up() -> bool:
            return all(
                [await asyncio.to_thread(healthy, port + index) for index in range(len(exchanges))]
            )

        await eventually(up, timeout=120)
        step("exchange healthy")
        issuer = Issuer()
        # The same two agencies every run (each with a new key), so that a stage kept
        # between runs keeps the register it was measured with.
        consumer, provider = AgencySystem("bench-consumer"), AgencySystem("bench-provider")
        # The benchmark announces what the catalog and identity would, as the admin.
        await announce_world(stage.admin, database_url, issuer, consumer, provider)
        register = idle_agencies(arguments.agencies)
        await announce(stage.admin, *[(agency.recorded(), agency.code) for agency in register])
        async with (
            stage.agencies(),
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http,
        ):
            consumer_kafka = await stage.agency_access(consumer.code)
            provider_kafka = await stage.agency_access(provider.code)
            step("agencies' credentials issued")
            # The exchange finds new agencies' channels by pattern, then its group
            # rebalances: a provisioning delay, not a transaction's, so it is waited out.
            await until_settled(
                stage.admin,
                PRINCIPAL_SPECS[Principal.EXCHANGE].groups[0],
                [
                    channel(Topic.AGENCY_REQUESTS, consumer.code),
                    channel(Topic.AGENCY_ANSWERS, provider.code),
                    *(
                        channel(family, agency.code)
                        for agency in register
                        for family in (Topic.AGENCY_REQUESTS, Topic.AGENCY_ANSWERS)
                    ),
                ],
                # A register's channels are made once per stage, up to a minute.
                timeout=60 + len(register),
            )
            step("the exchange reads every agency's channels")
            keys = (await http.get("/keys")).json()["keys"]
            exchange_keys = ExchangeKeys(keys={key["kid"]: key for key in keys})
            data_service = await register_data_service(
                http, issuer, provider, "vital-status", timeout_ms=60_000
            )
            await grant(http, issuer, consumer, data_service)
            step("data service registered and granted")
            worker = ProviderWorker(
                provider_kafka,
                provider.code,
                provider.key,
                provider.kid,
                {data_service: answer_at_once},
                exchange_keys=exchange_keys,
            )
            worker_task = asyncio.create_task(worker.run())
            await asyncio.wait_for(worker.wait_ready(), 60)
            step("provider's worker ready")
            async with ExchangeClient(
                consumer_kafka,
                consumer.code,
                consumer.key,
                consumer.kid,
                exchange_keys=exchange_keys,
            ) as client:
                warm_rate = WARMUP_RATE[1] if arguments.smoke else WARMUP_RATE[0]
                warm_count = int(warm_rate * arguments.warmup_seconds)
                if warm_count > 0:
                    await offered_load(client, data_service, warm_rate, warm_count)  # not reported
                    step("warmed up")
                processes = [psutil.Process(exchange.pid) for exchange in exchanges]
                # Both agencies' systems run in this process: where the load comes from.
                agencies = psutil.Process()
                rows = []
                for rate in arguments.rates:
                    count = max(1, int(rate * arguments.seconds))
                    started, used = time.perf_counter(), cpu_seconds(*processes)
                    agencies_used, machine_used = cpu_seconds(agencies), machine_busy_seconds()
                    row = await offered_load(client, data_service, rate, count)
                    row["cpu_s"] = cpu_seconds(*processes) - used
                    row["wall_s"] = time.perf_counter() - started
                    row["agencies_cpu_s"] = cpu_seconds(agencies) - agencies_used
                    row["machine_busy_s"] = machine_busy_seconds() - machine_used
                    row["cpu_us_per_tx"] = (
                        row["cpu_s"] / row["answered"] * 1e6 if row["answered"] else float("nan")
                    )
                    rows.append(row)
                    print(_line(row), flush=True)
                    print(
                        f"exchange CPU per answered transaction at {rate}/s:"
                        f" {row['cpu_us_per_tx']:.0f} µs ({row['cpu_s']:.1f} CPU-s in"
                        f" {row['wall_s']:.1f} s, {row['cpu_s'] / row['wall_s']:.0%} of a core);"
                        f" the two agencies' systems (this process)"
                        f" {row['agencies_cpu_s'] / row['wall_s']:.0%} of a core; the machine"
                        f" {row['machine_busy_s'] / row['wall_s']:.0%} of its"
                        f" {psutil.cpu_count()} cores' 100% each",
                        flush=True,
                    )
            await worker.stop()
            await asyncio.wait_for(worker_task, 30)
    finally:
        for index, exchange in enumerate(exchanges):
            # uvicorn ends by raising the signal it stopped for again: under SIGTERM's
            # default action the profile is never written; SIGINT's KeyboardInterrupt
            # lets cProfile write it on the way out.
            exchange.send_signal(
                signal.SIGINT if arguments.profile and index == 0 else signal.SIGTERM
            )
        for exchange in exchanges:
            await asyncio.to_thread(exchange.wait, 30)
    return rows


def summarise(rows: list[dict[str, float]], figures: dict[str, float | None], suffix: str) -> float:
    """Print the loads' summary and add their figures, each name ending in `suffix`; the
    best sustained rate."""
    print()
    best = max(rows, key=lambda row: row["throughput"])
    print(f"floor (8 billion a year): {FLOOR_PER_SECOND:.0f}/s")
    print(
        f"best sustained: {best['throughput']:.0f}/s"
        f" = {best['throughput'] / FLOOR_PER_SECOND:.2f}x the floor"
    )
    for row in rows:
        print(
            f"  offered {row['offered']:>5.0f}/s: achieved {row['throughput'] / row['offered']:.2f}"
            f" of offered, {row['throughput'] / FLOOR_PER_SECOND:.2f}x the floor"
        )
    # The CPU a transaction costs where the exchange carried the whole load (past it, the
    # figure mixes in requests that were retried or never answered).
    carried = [row for row in rows if row["unsent"] == 0 and row["other"] == 0]
    costed = max(carried, key=lambda row: row["offered"]) if carried else best
    print(
        f"exchange CPU per answered transaction: {costed['cpu_us_per_tx']:.0f} µs"
        f" (at {costed['offered']:.0f}/s, "
        + ("the highest load answered in full)" if carried else "the best sustained load)")
    )
    figures[f"best_sustained_per_s{suffix}"] = best["throughput"]
    figures[f"best_sustained_at_offered{suffix}"] = best["offered"]
    figures[f"cpu_us_per_tx{suffix}"] = costed["cpu_us_per_tx"]
    figures[f"cpu_us_per_tx_at_offered{suffix}"] = costed["offered"]
    for row in rows:
        rate = f"{row['offered']:.0f}"
        for name in ("sent", "unsent", "answered", "other", "p50_ms", "p99_ms", "cpu_us_per_tx"):
            figures[f"{name}_at_{rate}{suffix}"] = row[name]
        figures[f"sustained_per_s_at_{rate}{suffix}"] = row["throughput"]
        figures[f"cpu_s_at_{rate}{suffix}"] = row["cpu_s"]
        figures[f"wall_s_at_{rate}{suffix}"] = row["wall_s"]
    return float(best["throughput"])


def _line(row: dict[str, float]) -> str:
    return (
        f"offered {row['offered']:>5.0f}/s  sent {row['sent']:>6.0f}  unsent {row['unsent']:>4.0f}"
        f"  answered {row['answered']:>6.0f}"
        f"  other {row['other']:>3.0f}  sustained {row['throughput']:>7.1f}/s"
        f"  p50 {row['p50_ms']:>8.1f} ms  p99 {row['p99_ms']:>8.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--rates", type=int, nargs="+", default=None, help="100 500 1000 (smoke: 20)"
    )
    parser.add_argument(
        "--seconds", type=float, default=None, help="length of each offered load: 10 (smoke: 2)"
    )
    parser.add_argument(
        "--warmup-seconds",
        type=float,
        default=None,
        help=f"length of the warm-up load at {WARMUP_RATE[0]}/s, not reported: 10"
        f" (smoke: 1, at {WARMUP_RATE[1]}/s; 0: none)",
    )
    parser.add_argument(
        "--agencies",
        type=int,
        default=None,
        help=f"agencies in the register, each with its channels: {NATIONAL_AGENCIES}, those"
        " connected nationally (smoke: 2, the two that trade)",
    )
    parser.add_argument(
        "--instances",
        type=int,
        nargs="+",
        default=None,
        choices=range(1, 5),
        help="exchange processes in one consumer group; several counts run one after the"
        " other, each with every rate: 1 2 (smoke too), side by side, and"
        " two_instances_ratio in the figures",
    )
    parser.add_argument(
        "--port", type=int, default=18093 + SHIFT, help="the first exchange's; the next on"
    )
    parser.add_argument("--log", default="/dev/null", help="where the exchange's log goes")
    parser.add_argument(
        "--profile",
        default=None,
        help="cProfile the (first) exchange into this file, for `python -m pstats FILE`",
    )
    add_arguments(parser, database=True)
    arguments = parser.parse_args()
    fill_sizes(
        arguments,
        rates=([100, 500, 1000], [20]),
        seconds=(10.0, 2.0),
        warmup_seconds=(10.0, 1.0),
        agencies=(NATIONAL_AGENCIES, 2),
        instances=([1, 2], [1, 2]),
    )
    run_on_stage(arguments, "exchange", lambda stage: run(arguments, stage))


if __name__ == "__main__":
    main()
