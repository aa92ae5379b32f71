"""The local platform: Kafka, PostgreSQL and our services on one machine, no Docker.

from infra.platform import LocalPlatform, Ports
platform = LocalPlatform(home=Path(".data/dev"), ports=Ports())
platform.up()      # everything, waits for /health
platform.down()    # stops only what it started; data stays
"""

from infra.platform.local import (
    SERVICE_PROCESSES,
    LocalPlatform,
    Ports,
    ProcessStatus,
    ServiceProcess,
)
from infra.platform.processes import PlatformError
from infra.platform.provision import InitReport, init_platform

__all__ = [
    "SERVICE_PROCESSES",
    "InitReport",
    "LocalPlatform",
    "PlatformError",
    "Ports",
    "ProcessStatus",
    "ServiceProcess",
    "init_platform",
]
