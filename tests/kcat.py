"""kcat, the librdkafka command-line client, as a person would run it against the platform.

It authenticates with a principal's credentials file (`panjereh credentials NAME`), and
runs as `.venv/bin/kcat`: the system kcat on the newer librdkafka that infra/bootstrap.sh
links it to (Debian 12's own fails SCRAM against Kafka 4).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def kcat(
    *args: str, check: bool = False, timeout: float = 60, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run kcat with `args`; the caller passes `-F FILE` (or deliberately no credentials)."""
    wrapped = REPO / ".venv" / "bin" / "kcat"
    program = str(wrapped) if wrapped.exists() else shutil.which("kcat")
    assert program, "kcat is not installed: run infra/bootstrap.sh"
    return subprocess.run(
        [program, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )
