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
from tests.e2e.running import platform_up, simulator_at


@pytest.fixture(scope="package")
def platform() -> Iterator[LocalPlatform]:
    traffic = simulator_at(deliveries=10, sign_ins=2, requests=5)
    with platform_up("panjereh-e2e-live-", settings=traffic) as running:
        yield running
