"""Ports for test runs, so that several runs on one machine never share a broker.

`PANJEREH_TEST_SLOT=N` (default 0) shifts every port a test run uses by N*100: the test
session's infrastructure and the e2e platform alike.
"""

from __future__ import annotations

import os

from infra.platform import Ports

SLOT = int(os.environ.get("PANJEREH_TEST_SLOT", "0"))
_SHIFT = SLOT * 100


def session_ports() -> Ports:
    """Kafka and Postgres of the test session."""
    return Ports(kafka=29092 + _SHIFT, kafka_controller=29093 + _SHIFT, postgres=55433 + _SHIFT)


def e2e_ports() -> Ports:
    """The whole platform, as the e2e tests bring it up."""
    return Ports(
        kafka=39092 + _SHIFT,
        kafka_controller=39093 + _SHIFT,
        postgres=55439 + _SHIFT,
        identity=18001 + _SHIFT,
        catalog=18002 + _SHIFT,
        exchange=18003 + _SHIFT,
        metrics=18004 + _SHIFT,
        metrics_worker=18014 + _SHIFT,
        simulator=18024 + _SHIFT,
        access_manager=18005 + _SHIFT,
    )
