"""Every benchmark, one after another, and one table of the figures against the goals.

    PANJEREH_TEST_SLOT=N .venv/bin/python benchmarks/run_all.py [--smoke] [--out PATH]
        [--home HOME --database-url SERVICE=DSN ...] [--only NAME ...] [--down]

`make bench` runs it with the sizes below (`BENCHMARKS`), chosen for a 2-core machine;
`make bench-smoke` with `--smoke`. Each benchmark runs as a user runs it, in a process of
its own, its output passed through, and writes its figures with `--json`; this runner
never reads figures from text. At the end it prints one table (each goal's key, the
figure, the goal, and the ratio of figure to goal turned so that 1.0 or more means the
goal is met) and writes it, with every benchmark's own figures, to
`.data/bench/results.json` (or `--out`).

A benchmark that fails is reported, with its error, in the table and in the JSON, and the
others still run; the exit status is then 1. A figure that is not measured (yet) is null
with the reason, never a number made up.

With `--home` the benchmarks run on that running platform (see benchmarks/stage.py), each
with its service's database role given by `--database-url SERVICE=DSN`; without it they
share the benchmarks' own Kafka and PostgreSQL of the slot (`.data/bench-<slot>`, kept
unless `--down`). `platform_bench.py` starts a whole platform of its own, so it runs only
in a full run without `--home`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
HERE = REPO / "benchmarks"
SLOT = int(os.environ.get("PANJEREH_TEST_SLOT", "0"))


@dataclass(frozen=True)
class Benchmark:
    """One script, as the runner runs it.

    `service`: the database role it runs as (with `--home`, its DSN must be given).
    `full`: its arguments in a full run (a smoke run gives `--smoke` alone).
    `own_platform`: it starts a whole platform of its own, so it runs neither in a smoke
    run nor on a given platform.
    """

    name: str
    script: str
    service: str | None
    full: tuple[str, ...] = ()
    own_platform: bool = False
    #: The option by which it sends the log of the service processes it starts to a file:
    #: the runner keeps that log, and shows its last lines when the benchmark fails.
    service_log: str | None = None


#: What `make bench` runs, in this order. The sizes are the scripts' own defaults except
#: the exchange's rates: at 50/s the exchange is lightly loaded, 1000/s is past what it
#: carries on 2 cores (unsent requests and timeouts there are figures, not errors).
BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark("catalog", "catalog_bench.py", "catalog"),
    Benchmark(
        "exchange",
        "exchange_bench.py",
        "exchange",
        ("--rates", "50", "200", "1000", "--seconds", "10"),
        service_log="--log",
    ),
    Benchmark("identity", "identity_bench.py", "identity"),
    Benchmark("metrics", "metrics_bench.py", None),
    Benchmark("platform", "platform_bench.py", None, own_platform=True),
)


@dataclass(frozen=True)
class Goal:
    """A performance goal, and where its figure comes from.

    `source` is (benchmark, the name of the figure in its `--json`), or None when nothing
    measures it yet (`why` says so). `bound`: "min" (at least `target`) or "max" (at most).
    """

    key: str
    unit: str
    bound: Literal["min", "max"]
    target: float
    source: tuple[str, str] | None
    note: str = ""
    why: str = ""

    @property
    def goal(self) -> str:
        return f"{'≥' if self.bound == 'min' else '≤'} {self.target:,g}"

    def ratio(self, value: float) -> float | None:
        """Figure against goal, 1.0 or more when met."""
        if self.bound == "min":
            return value / self.target
        return self.target / value if value > 0 else None


#: The goals of the performance issue, all in one place.
GOALS: tuple[Goal, ...] = (
    Goal(
        "exchange.cpu_us_per_tx",
        "µs",
        "max",
        400,
        ("exchange", "cpu_us_per_tx"),
        note="the exchange process's CPU per answered transaction, at the highest offered"
        " load it answered in full",
    ),
    Goal(
        "exchange.sustained_per_s",
        "/s",
        "min",
        1500,
        ("exchange", "best_sustained_per_s"),
        note="best over the offered loads; no more than the highest rate offered",
    ),
    Goal("exchange.p50_ms_at_50", "ms", "max", 20, ("exchange", "p50_ms_at_50")),
    Goal("exchange.p99_ms_at_50", "ms", "max", 50, ("exchange", "p99_ms_at_50")),
    Goal(
        "exchange.p99_ms_at_1000",
        "ms",
        "max",
        100,
        ("exchange", "p99_ms_at_1000"),
        note="of the requests answered",
    ),
    Goal(
        "exchange.two_instances_ratio",
        "x",
        "min",
        1.6,
        ("exchange", "two_instances_ratio"),
        note="best sustained through two exchange processes in one group over one's, same"
        " rates, same machine; the issue states no figure, 1.6 assumed",
    ),
    Goal("metrics.ratio_to_bare", "x", "min", 0.5, ("metrics", "ratio_to_bare")),
    Goal(
        "metrics.deliveries_per_s",
        "/s",
        "min",
        3500,
        ("metrics", "deliveries_per_s"),
        note="a fresh worker catching up on the run's deliveries, from ready to the figure",
    ),
    Goal("metrics.freshness_p99_ms", "ms", "max", 250, ("metrics", "freshness_p99_ms")),
    Goal(
        "metrics.recovery_s",
        "s",
        "max",
        10,
        ("metrics", "recovery_s"),
        note="SIGKILL, restart: to the figure of a delivery published meanwhile; the"
        " history is the run's deliveries (recovery_history_deliveries in metrics' figures)",
    ),
    Goal("identity.sign_ins_per_s", "/s", "min", 1000, ("identity", "sign_ins_per_s")),
    Goal("identity.whole_sign_ins_per_s", "/s", "min", 500, ("identity", "whole_sign_ins_per_s")),
    Goal(
        "identity.verifications_per_s",
        "/s",
        "min",
        20_000,
        ("identity", "first_verifications_per_s"),
        note="each token new to the verifier (its signature checked); one token presented"
        " again is remembered: repeat_verifications_per_s in identity's figures",
    ),
    Goal("catalog.search_p99_ms", "ms", "max", 20, ("catalog", "search_p99_ms")),
    Goal("catalog.ingestion_per_s", "/s", "min", 5000, ("catalog", "ingestion_per_s")),
    Goal(
        "platform.up_warm_s",
        "s",
        "max",
        10,
        ("platform", "up_warm_s"),
        note="`panjereh up` after `down`, on a home and ports of its own",
    ),
)


@dataclass
class Outcome:
    """What became of one benchmark in this run."""

    ok: bool | None  # None: not run
    seconds: float = 0.0
    command: list[str] = field(default_factory=list)
    error: str | None = None
    skipped: str | None = None
    figures: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {"ok": self.ok, "seconds": round(self.seconds, 1)}
        for name in ("skipped", "error"):
            if getattr(self, name) is not None:
                record[name] = getattr(self, name)
        if self.command:
            record["command"] = " ".join(self.command)
        record["figures"] = self.figures
        return record


def command_for(
    benchmark: Benchmark, arguments: argparse.Namespace, out: Path, service_log: Path
) -> list[str]:
    command = [sys.executable, str(HERE / benchmark.script), "--json", str(out)]
    if benchmark.service_log is not None:
        command += [benchmark.service_log, str(service_log)]
    if benchmark.own_platform:
        return command
    command += ["--smoke"] if arguments.smoke else list(benchmark.full)
    if arguments.home is not None:
        command += ["--home", str(arguments.home)]
        if benchmark.service is not None:
            command += ["--database-url", arguments.database_url[benchmark.service]]
    return command


def shown(command: list[str]) -> list[str]:
    """The command as printed and recorded: relative to the repository, no DSN (it holds
    the role's password)."""
    words = []
    for index, word in enumerate(command):
        if index > 0 and command[index - 1] == "--database-url":
            word = "<dsn>"
        elif index > 0 and command[index - 1] == "--json":
            word = "<figures>"
        elif index > 0 and command[index - 1] == "--log":
            word = "<log>"
        elif word == sys.executable:
            word = "python"
        elif word.startswith(str(REPO) + os.sep):
            word = os.path.relpath(word, REPO)
        words.append(word)
    return words


def skip_reason(benchmark: Benchmark, arguments: argparse.Namespace) -> str | None:
    if arguments.only and benchmark.name not in arguments.only:
        return "not asked for (--only)"
    if benchmark.own_platform and arguments.smoke:
        return "it starts a whole platform of its own: not in a smoke run"
    if benchmark.own_platform and arguments.home is not None:
        return "it starts a whole platform of its own: not on a given platform (--home)"
    return None


async def stop(process: asyncio.subprocess.Process) -> None:
    """Ask the benchmark to stop (SIGINT: it stops what it started), then end its process
    group (it leads one)."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(process.wait(), 30)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()


async def run_one(benchmark: Benchmark, arguments: argparse.Namespace, folder: Path) -> Outcome:
    figures_file = folder / f"{benchmark.name}.json"
    service_log = folder / f"{benchmark.name}-services.log"
    command = command_for(benchmark, arguments, figures_file, service_log)
    outcome = Outcome(ok=None, command=shown(command))
    print(f"\n=== {' '.join(outcome.command)}", flush=True)
    tail: deque[str] = deque(maxlen=40)
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=REPO,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )

    async def follow() -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            text = line.decode(errors="replace")
            sys.stdout.write(text)
            sys.stdout.flush()
            if text.strip():
                tail.append(text.rstrip())
        await process.wait()

    try:
        await asyncio.wait_for(follow(), arguments.timeout)
    except TimeoutError:
        outcome.error = f"did not finish in {arguments.timeout:.0f} s"
    finally:
        await stop(process)
        outcome.seconds = time.perf_counter() - started
    if outcome.error is None and process.returncode != 0:
        last = tail[-1] if tail else "no output"
        outcome.error = f"exit status {process.returncode}: {last}"
    if outcome.error is None:
        try:
            outcome.figures = json.loads(figures_file.read_text())
        except (OSError, ValueError) as error:
            outcome.error = f"no figures in --json: {error}"
    outcome.ok = outcome.error is None
    if not outcome.ok:
        # The last lines say why (the whole output was passed through above), and where it
        # stopped the log of the services it ran.
        outcome.error = f"{outcome.error}\n" + "\n".join(list(tail)[-15:])
        if service_log.exists():
            logged = service_log.read_text(errors="replace").splitlines()[-15:]
            outcome.error += "\nthe last lines of its services' log:\n" + "\n".join(logged)
    return outcome


def first_line(text: str | None) -> str:
    return (text or "").partition("\n")[0]


def figure_record(goal: Goal, outcomes: dict[str, Outcome]) -> dict[str, Any]:
    record: dict[str, Any] = {"value": None, "unit": goal.unit, "goal": goal.goal, "ratio": None}
    why = goal.why
    if goal.source is not None:
        name, figure = goal.source
        outcome = outcomes[name]
        script = next(b.script for b in BENCHMARKS if b.name == name)
        value = outcome.figures.get(figure)
        if outcome.ok is None:
            why = f"{script} not run: {outcome.skipped}"
        elif not outcome.ok:
            why = f"{script} failed: {first_line(outcome.error)}"
        elif not isinstance(value, int | float):
            why = f"{script} gave no {figure} in this run"
        else:
            ratio = goal.ratio(value)
            record["value"] = round(value, 3)
            record["ratio"] = round(ratio, 3) if ratio is not None else None
            why = ""
    if why:
        record["why"] = why
    if goal.note:
        record["note"] = goal.note
    return record


def number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    if digits == 0:
        digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return f"{value:,.{digits}f}"


def table(figures: dict[str, dict[str, Any]], outcomes: dict[str, Outcome]) -> str:
    rows = [("key", "figure", "goal", "ratio", "")]
    for key, record in figures.items():
        rows.append(
            (
                key,
                "—" if record["value"] is None else f"{number(record['value'])} {record['unit']}",
                f"{record['goal']} {record['unit']}",
                number(record["ratio"], 2),
                record.get("why", ""),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0]), *(row[i].rjust(widths[i]) for i in (1, 2, 3))]
        lines.append("  ".join([*cells, row[4]]).rstrip())
    lines.append("")
    for benchmark in BENCHMARKS:
        outcome = outcomes[benchmark.name]
        if outcome.ok is None:
            state, detail = "skipped", outcome.skipped or ""
        elif outcome.ok:
            state, detail = "ok", ""
        else:
            state, detail = "FAILED", first_line(outcome.error)
        lines.append(
            f"{benchmark.script:<20} {state:<8} {outcome.seconds:7.0f} s  {detail}".rstrip()
        )
    for benchmark in BENCHMARKS:
        outcome = outcomes[benchmark.name]
        if outcome.ok is False:
            lines += ["", f"--- why {benchmark.script} failed", outcome.error or ""]
    return "\n".join(lines)


def git(*words: str) -> str | None:
    try:
        done = subprocess.run(["git", *words], cwd=REPO, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


async def run(arguments: argparse.Namespace) -> int:
    started_at = datetime.now(UTC)
    # Other work on the machine shows in every figure: the load is recorded with them.
    load_at_start = os.getloadavg()[0]
    outcomes: dict[str, Outcome] = {}
    with tempfile.TemporaryDirectory(prefix="panjereh-bench-") as folder:
        for benchmark in BENCHMARKS:
            reason = skip_reason(benchmark, arguments)
            if reason is not None:
                outcomes[benchmark.name] = Outcome(ok=None, skipped=reason)
                continue
            if arguments.home is not None and benchmark.service not in (
                None,
                *arguments.database_url,
            ):
                outcomes[benchmark.name] = Outcome(
                    ok=False, error=f"--home needs --database-url {benchmark.service}=DSN"
                )
                continue
            outcomes[benchmark.name] = await run_one(benchmark, arguments, Path(folder))
    if arguments.down and arguments.home is None:
        from benchmarks.stage import own_platform

        own_platform().down()
    figures = {goal.key: figure_record(goal, outcomes) for goal in GOALS}
    changes = git("status", "--porcelain", "--untracked-files=no")
    results = {
        "run": {
            "commit": git("rev-parse", "--short=7", "HEAD"),
            "uncommitted_changes": bool(changes) if changes is not None else None,
            "started_at": started_at.isoformat(timespec="seconds"),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "smoke": arguments.smoke,
            "cores": os.cpu_count(),
            "load_average_at_start": round(load_at_start, 2),
            "load_average_at_end": round(os.getloadavg()[0], 2),
            "slot": SLOT,
            "platform": "given (--home)" if arguments.home is not None else "the benchmarks' own",
        },
        "figures": figures,
        "benchmarks": {name: outcome.as_json() for name, outcome in outcomes.items()},
    }
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    commit = results["run"]["commit"]
    print(
        f"\n=== figures against the goals (ratio ≥ 1.00: goal met); commit {commit},"
        f" {started_at:%Y-%m-%d}, {os.cpu_count()} cores, load average {load_at_start:.1f}"
        f" at the start" + (", smoke run: the figures mean nothing" if arguments.smoke else "")
    )
    print(table(figures, outcomes))
    print(f"\nwritten to {arguments.out}")
    return 1 if any(outcome.ok is False for outcome in outcomes.values()) else 0


def database_url(text: str) -> tuple[str, str]:
    service, equals, dsn = text.partition("=")
    if not equals or not service or not dsn:
        raise argparse.ArgumentTypeError("expected SERVICE=DSN, e.g. exchange=postgresql://...")
    return service, dsn


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--smoke", action="store_true", help="each benchmark in smoke mode: it works, no figures"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / ".data" / "bench" / "results.json",
        help="where the results go (default: .data/bench/results.json)",
    )
    parser.add_argument(
        "--home", type=Path, default=None, help="run on this running platform (see stage.py)"
    )
    parser.add_argument(
        "--database-url",
        type=database_url,
        action="append",
        default=[],
        metavar="SERVICE=DSN",
        help="with --home: a service's own database role's DSN (catalog, exchange, identity)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=[b.name for b in BENCHMARKS],
        default=None,
        help="run only these benchmarks",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="most seconds one benchmark may take: 1800 (smoke: 300)",
    )
    parser.add_argument(
        "--down",
        action="store_true",
        help="stop the benchmarks' own Kafka and PostgreSQL afterwards",
    )
    arguments = parser.parse_args()
    arguments.database_url = dict(arguments.database_url)
    if arguments.timeout is None:
        arguments.timeout = 300.0 if arguments.smoke else 1800.0
    sys.exit(asyncio.run(run(arguments)))


if __name__ == "__main__":
    main()
