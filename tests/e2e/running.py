"""The whole platform up for an e2e module, in a home of its own."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from infra.platform import LocalPlatform
from tests.slots import e2e_ports


@contextmanager
def platform_up(prefix: str, *, environment: str = "development") -> Iterator[LocalPlatform]:
    """The platform up on the e2e ports in a fresh home named from `prefix`; brought down
    and its home removed afterwards."""
    # Not pytest's tmp_path: its parent is mode 0700, and PostgreSQL (run as the
    # `postgres` user when we are root) must be able to enter the home.
    home = Path(tempfile.mkdtemp(prefix=prefix))
    home.chmod(0o755)
    running = LocalPlatform(home, e2e_ports(), environment=environment)
    try:
        running.up()
        yield running
    finally:
        running.down()
        # PANJEREH_TEST_KEEP_HOME=1 keeps the home, its logs above all, for a look afterwards.
        if os.environ.get("PANJEREH_TEST_KEEP_HOME") != "1":
            shutil.rmtree(home, ignore_errors=True)
