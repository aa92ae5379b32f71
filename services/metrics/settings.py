"""The metrics service's settings, from `PANJEREH_*` environment variables."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from shared.settings import ServiceSettings


class MetricsSettings(ServiceSettings):
    service_name: ClassVar[str] = "metrics"
    http_port: int = Field(default=8004, validation_alias="PANJEREH_METRICS_PORT")
    identity_public_url: str = Field(
        default="http://127.0.0.1:8001",
        validation_alias="PANJEREH_METRICS_IDENTITY_PUBLIC_URL",
        description=(
            "Identity's address as browsers reach it: the weekly report form asks its token "
            "endpoint for a directorate's token (identity must list this service's origin in "
            "PANJEREH_IDENTITY_TOKEN_ENDPOINT_ORIGINS)."
        ),
    )
    load_reference_when_empty: bool = Field(
        default=True,
        validation_alias="PANJEREH_METRICS_LOAD_REFERENCE_WHEN_EMPTY",
        description=(
            "In development only: load the programme's reference register "
            "(reference/programme.yaml) at start if the register has no indicator."
        ),
    )
