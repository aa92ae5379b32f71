"""Scenarios that import the metrics worker's modules, each in a process of its own.

The worker module needs Kafka credentials to import (it builds its Faust app at import),
so a scenario runs with credentials that are never used; it replaces the producer with a
recorder and prints what it found as JSON on its last line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from infra.platform.tls import PlatformTls

REPO = Path(__file__).resolve().parents[3]


def run_worker_scenario(tmp_path: Path, code: str, **settings: str) -> Any:
    """Run `code` with the worker's settings (plus `settings`, environment variables);
    the JSON it printed last."""
    tls = PlatformTls(tmp_path)
    tls._new_ca()
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={
            **os.environ,
            "PANJEREH_KAFKA_USERNAME": "unused",
            "PANJEREH_KAFKA_PASSWORD": "unused",
            "PANJEREH_KAFKA_CA_FILE": str(tls.ca_file),
            "PANJEREH_METRICS_WORKER_DATA_DIR": str(tmp_path / "worker"),
            **settings,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
