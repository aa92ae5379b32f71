"""docker-compose.yml as `docker-compose config` renders it (no Docker engine needed)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.platform.paths import REPO_ROOT
from shared.db import SERVICES
from shared.principals import ADMIN, PRINCIPALS

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"

#: What an operator must set: distinct values, so each DSN shows whose password it holds.
SECRETS = {
    "PANJEREH_POSTGRES_PASSWORD": "superuser-secret",
    **{f"PANJEREH_{s.upper()}_DATABASE_PASSWORD": f"{s}-secret" for s in SERVICES},
    "PANJEREH_DATA_KEY": "ZGF0YS1rZXktb2YtdGhlLWNvbXBvc2UtdGVzdC0zMmI=",
    "PANJEREH_IDENTITY_PSEUDONYM_KEY": "pseudonym-key-of-the-compose-test-32",
    "PANJEREH_IDENTITY_OPERATOR_TOKEN": "operator-token-of-the-compose-test-32",
    "PANJEREH_METRICS_TOKEN": "metrics-token-of-the-compose-test-32",
    **{
        f"PANJEREH_KAFKA_PASSWORD_{name.upper().replace('-', '_')}": f"kafka-{name}-secret"
        for name in (ADMIN, *(spec.name.value for spec in PRINCIPALS))
    },
    "PANJEREH_IDENTITY_SMS_GATEWAY_PUBLIC_KEY": "c21zLWdhdGV3YXktb2YtdGhlLWNvbXBvc2UtdGVzdDI=",
    "PANJEREH_IDENTITY_OPERATOR_CHECK_URL": "https://regulator.example/mobile-ownership",
}
#: Needed only by what runs in development (the simulator's principal).
DEVELOPMENT_ONLY = {
    f"PANJEREH_KAFKA_PASSWORD_{spec.name.value.upper().replace('-', '_')}"
    for spec in PRINCIPALS
    if spec.development_only
}


def compose_config(env: Mapping[str, str], *more: Path) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` with `env` as the only PANJEREH_* variables, of the file
    and any `more` files laid over it."""
    if shutil.which("docker-compose") is None:
        pytest.fail("docker-compose is not installed: run infra/bootstrap.sh")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PANJEREH_")}
    environment.update(env)
    return subprocess.run(
        ["docker-compose", "-f", str(COMPOSE_FILE), *(f"-f{file}" for file in more), "config"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def rendered(env: Mapping[str, str]) -> dict[str, Any]:
    """The rendered file as a mapping (every service, whatever its profile: docker-compose
    1.29's `config` shows them all); fails the test with docker-compose's reason."""
    result = compose_config(env)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def variables_used() -> dict[str, bool]:
    """Every variable the file reads, and whether it is required (`${NAME:?…}`)."""
    found: dict[str, bool] = {}
    for name, form in re.findall(r"(?<!\$)\$\{(\w+)(:\?|:-|-|\?|)", COMPOSE_FILE.read_text()):
        found[name] = found.get(name, False) or form == ":?"
    return found
