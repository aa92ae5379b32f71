"""The metrics service's settings, from `PANJEREH_*` environment variables."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from shared.settings import ServiceSettings


class MetricsSettings(ServiceSettings):
    service_name: ClassVar[str] = "metrics"
    http_port: int = Field(default=8004, validation_alias="PANJEREH_METRICS_PORT")
    load_reference_when_empty: bool = Field(
        default=True,
        validation_alias="PANJEREH_METRICS_LOAD_REFERENCE_WHEN_EMPTY",
        description=(
            "In development only: load the programme's reference register "
            "(reference/programme.yaml) at start if the register has no indicator."
        ),
    )
