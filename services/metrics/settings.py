"""The metrics service's settings, from `PANJEREH_*` environment variables."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from shared.settings import ServiceSettings


class MetricsSettings(ServiceSettings):
    service_name: ClassVar[str] = "metrics"
    http_port: int = Field(default=8004, validation_alias="PANJEREH_METRICS_PORT")
