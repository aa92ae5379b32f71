"""One live platform for the modules here, brought up once: development, the reference
register loaded, and the traffic simulator running at a low, steady rate.

Bringing the platform up with the reference register costs most of a minute (its
agencies' channels, principals and ACLs); these modules need the same platform and
tolerate each other's traffic, so they share it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.platform import LocalPlatform
from tests.e2e.running import platform_up

SIMULATOR_RATES = {
    "PANJEREH_SIMULATOR_DELIVERIES_PER_SECOND": "10",
    "PANJEREH_SIMULATOR_SIGN_INS_PER_SECOND": "2",
    "PANJEREH_SIMULATOR_REQUESTS_PER_SECOND": "5",
}


@pytest.fixture(scope="package")
def platform() -> Iterator[LocalPlatform]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in SIMULATOR_RATES.items():
            patch.setenv(name, value)
        with platform_up("panjereh-e2e-live-") as running:
            yield running
