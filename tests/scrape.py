"""Reading a process's /metrics as Prometheus would, and linting it with promtool."""

from __future__ import annotations

import shutil
import subprocess

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families


def scrape(url: str, token: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.get(url, headers=headers, timeout=10)


def sample_names(text: str) -> set[str]:
    """Every series name in an exposition (`x_total`, `x_bucket`, ...)."""
    return {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is not installed: run infra/bootstrap.sh")
    return found


def lint(text: str) -> str:
    """What `promtool check metrics` finds wrong with an exposition (empty when nothing)."""
    result = subprocess.run(
        [promtool(), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return "" if result.returncode == 0 else result.stdout + result.stderr


def values(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Each sample of series `name`: its labels and its value."""
    return [
        (dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]
