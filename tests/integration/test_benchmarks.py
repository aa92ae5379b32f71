"""The benchmarks still run: each once in smoke mode, through the runner that `make bench`
runs, on the session's Kafka and PostgreSQL (all but `platform_bench.py`, which brings a
whole platform of its own up and down: `make bench` runs it).

A benchmark nothing runs rots. The runner runs each as a user runs it, in a process of its
own, on the test session's platform (`--home`): its processes connect as their own
principals and its simulated agencies get their credentials from the session's access
manager. The test checks that every benchmark finished and printed its figures, and that
the runner's results hold every goal's key, never what the figures are.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

#: Benchmark → (the service whose database role it runs as, the figures it must print).
BENCHMARKS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "catalog_bench.py": (
        "catalog",
        (
            r"search latency over \d+ queries .*: p50 [\d.]+ ms, p95 [\d.]+ ms, p99 [\d.]+ ms",
            r"deliveries on the clean topic after the run: (\d+) \(distinct reports: \1\)",
            r"delivery ingestion: \d+ events/s",
        ),
    ),
    "exchange_bench.py": (
        "exchange",
        (
            r"offered +\d+/s +sent +\d+ +unsent +\d+ +answered +\d+ .*"
            r" sustained +[\d.]+/s +p50 +[\d.]+ ms",
            r"exchange CPU per answered transaction at \d+/s: \d+ µs",
            r"best sustained: \d+/s",
            r"=== 2 exchange instances",
            r"two instances against one, best sustained: [\d.]+x",
        ),
    ),
    "identity_bench.py": (
        "identity",
        (
            r"code requests/s: +[\d.]+",
            r"sign-ins/s \(code check \+ tokens\): +[\d.]+",
            r"whole sign-ins/s \(code request \+ in\): +[\d.]+",
            r"token verifications/s \(shared.auth\): +[\d.]+",
            r"first verifications/s \(new tokens\): +[\d.]+",
        ),
    ),
    "metrics_bench.py": (
        None,
        (
            r"bare aiokafka consumer, decode only : +\d+ events/s",
            r"Faust worker, all aggregates +: +\d+ events/s",
            r"freshness \(ack -> figure on topic\) +: p50 \d+ ms, p99 \d+ ms",
            r"Faust worker, deliveries counted +: +\d+ deliveries/s",
            r"recovery after SIGKILL +: +[\d.]+ s from restart",
        ),
    ),
}


#: The keys of the performance issue's goals: each in the results, with a figure or why not.
GOALS = (
    "exchange.cpu_us_per_tx",
    "exchange.sustained_per_s",
    "exchange.p50_ms_at_50",
    "exchange.p99_ms_at_50",
    "exchange.p99_ms_at_1000",
    "exchange.two_instances_ratio",
    "metrics.ratio_to_bare",
    "metrics.deliveries_per_s",
    "metrics.freshness_p99_ms",
    "metrics.recovery_s",
    "identity.sign_ins_per_s",
    "identity.whole_sign_ins_per_s",
    "identity.verifications_per_s",
    "catalog.search_p99_ms",
    "catalog.ingestion_per_s",
    "platform.up_warm_s",
)


@pytest.mark.timeout(900)
async def test_every_benchmark_runs_and_prints_its_figures(
    infrastructure: Any,
    database_urls: Mapping[str, str],
    access_manager: object,
    tmp_path: Path,
) -> None:
    results = tmp_path / "results.json"
    command = [
        sys.executable,
        str(REPO / "benchmarks" / "run_all.py"),
        "--smoke",
        "--home",
        str(infrastructure.home),
        "--out",
        str(results),
        # Not a measure of speed: only so that a hung benchmark ends with its output.
        "--timeout",
        "240",
    ]
    for service, _ in BENCHMARKS.values():
        if service is not None:
            command += ["--database-url", f"{service}={database_urls[service]}"]
    # Run without blocking the loop: the session's access manager runs in it, and issues
    # the benchmarks' agencies their credentials meanwhile.
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=REPO,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 840)
    except TimeoutError:
        process.kill()
        output, _ = await process.communicate()
    text = output.decode(errors="replace")
    # The runner's summary (its table and why each failed benchmark failed) comes last, and
    # other benchmarks' logs after a failed one must not push it out of the message.
    _, marker, after = text.rpartition("=== figures against the goals")
    summary = marker + after if marker else text
    assert process.returncode == 0, f"a benchmark failed:\n{summary[-8000:]}"
    missing = {
        benchmark: absent
        for benchmark, (_, figures) in BENCHMARKS.items()
        if (absent := [figure for figure in figures if not re.search(figure, text)])
    }
    assert not missing, f"not printed: {missing}:\n{text[-6000:]}"

    written = json.loads(results.read_text())
    assert written["run"]["smoke"] is True
    ran = {name: record for name, record in written["benchmarks"].items() if record["ok"]}
    assert {f"{name}_bench.py" for name in ran} == set(BENCHMARKS)
    assert all(record["figures"] for record in ran.values())
    assert written["benchmarks"]["platform"]["skipped"]
    figures = written["figures"]
    assert set(GOALS) <= set(figures)
    for key in GOALS:
        figure = figures[key]
        assert {"value", "unit", "goal", "ratio"} <= set(figure), key
        # A figure is a number, or null with the reason: never made up, never unexplained.
        assert isinstance(figure["value"], int | float) or figure.get("why"), (key, figure)
