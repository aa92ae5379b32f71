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
    weekly_reports: bool = Field(
        default=True,
        validation_alias="PANJEREH_METRICS_WEEKLY_REPORTS",
        description="Generate the weekly reports' files when a week closes, and again when "
        "a late report or a correction arrives for it.",
    )
    weekly_reports_interval_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        validation_alias="PANJEREH_METRICS_WEEKLY_REPORTS_INTERVAL_SECONDS",
        description="How often the weekly reports look for a closed week or a new report.",
    )
    weekly_reports_catch_up: int = Field(
        default=2,
        ge=1,
        le=52,
        validation_alias="PANJEREH_METRICS_WEEKLY_REPORTS_CATCH_UP",
        description="How many of the latest ended weeks are generated if they never were "
        "(weeks that ended while the service was down).",
    )
