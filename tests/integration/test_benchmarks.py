"""The benchmarks still run: each once in smoke mode, on the session's Kafka and PostgreSQL.

A benchmark nothing runs rots. Each runs as a user runs it, in a process of its own, on
the test session's platform (`--home`): its processes connect as their own principals
and its simulated agencies get their credentials from the session's access manager. The
test checks that it finished and printed its figures, never what they are.
"""

from __future__ import annotations

import asyncio
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
            r"best sustained: \d+/s",
        ),
    ),
    "identity_bench.py": (
        "identity",
        (
            r"code requests/s: +[\d.]+",
            r"sign-ins/s \(code check \+ tokens\): +[\d.]+",
            r"whole sign-ins/s \(code request \+ in\): +[\d.]+",
            r"token verifications/s \(shared.auth\): +[\d.]+",
        ),
    ),
    "metrics_bench.py": (
        None,
        (
            r"bare aiokafka consumer, decode only : +\d+ events/s",
            r"Faust worker, all aggregates +: +\d+ events/s",
            r"freshness \(ack -> figure on topic\) +: p50 \d+ ms, p99 \d+ ms",
        ),
    ),
}


@pytest.mark.parametrize("benchmark", sorted(BENCHMARKS))
async def test_the_benchmark_runs_and_prints_its_figures(
    benchmark: str,
    infrastructure: Any,
    database_urls: Mapping[str, str],
    access_manager: object,
) -> None:
    service, figures = BENCHMARKS[benchmark]
    command = [
        sys.executable,
        str(REPO / "benchmarks" / benchmark),
        "--smoke",
        "--home",
        str(infrastructure.home),
    ]
    if service is not None:
        command += ["--database-url", database_urls[service]]
    # Run without blocking the loop: the session's access manager runs in it, and issues
    # the benchmark's agencies their credentials meanwhile.
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=REPO,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        # Not a measure of speed: only so that a hung benchmark ends with its output.
        output, _ = await asyncio.wait_for(process.communicate(), 240)
    except TimeoutError:
        process.kill()
        output, _ = await process.communicate()
    text = output.decode(errors="replace")
    assert process.returncode == 0, f"{benchmark} failed:\n{text[-4000:]}"
    missing = [figure for figure in figures if not re.search(figure, text)]
    assert not missing, f"{benchmark} did not print {missing}:\n{text[-4000:]}"
