"""The whole platform up for an e2e module, in a home of its own."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from infra.platform import LocalPlatform
from tests.slots import e2e_ports


def simulator_at(
    *, deliveries: int, sign_ins: int, requests: int, provincial_reports: bool = True
) -> dict[str, str]:
    """The traffic simulator's settings for its rates per second, as `settings=`."""
    return {
        "PANJEREH_SIMULATOR_DELIVERIES_PER_SECOND": str(deliveries),
        "PANJEREH_SIMULATOR_SIGN_INS_PER_SECOND": str(sign_ins),
        "PANJEREH_SIMULATOR_REQUESTS_PER_SECOND": str(requests),
        "PANJEREH_SIMULATOR_PROVINCIAL_REPORTS": str(provincial_reports).lower(),
    }


@contextmanager
def platform_up(
    prefix: str,
    *,
    environment: str = "development",
    reference: bool = True,
    settings: Mapping[str, str] | None = None,
) -> Iterator[LocalPlatform]:
    """The platform up on the e2e ports in a fresh home named from `prefix`; brought down
    and its home removed afterwards.

    `reference=False` starts the catalog without the reference register (131 agencies,
    some 1,300 topics to make), for a module that needs none of it. `settings` are
    environment variables its processes start with (the simulator's rates, say).
    """
    # Not pytest's tmp_path: its parent is mode 0700, and PostgreSQL (run as the
    # `postgres` user when we are root) must be able to enter the home.
    home = Path(tempfile.mkdtemp(prefix=prefix))
    home.chmod(0o755)
    running = LocalPlatform(home, e2e_ports(), environment=environment)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in (settings or {}).items():
            patch.setenv(name, value)
        if not reference:
            patch.setenv("PANJEREH_CATALOG_LOAD_REFERENCE_WHEN_EMPTY", "false")
        try:
            running.up()
            yield running
        finally:
            running.down()
            # PANJEREH_TEST_KEEP_HOME=1 keeps the home, its logs above all, for a look after.
            if os.environ.get("PANJEREH_TEST_KEEP_HOME") != "1":
                shutil.rmtree(home, ignore_errors=True)
