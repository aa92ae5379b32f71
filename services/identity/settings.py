"""The identity service's settings, from `PANJEREH_*` environment variables."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from shared.settings import ServiceSettings


class IdentitySettings(ServiceSettings):
    service_name: ClassVar[str] = "identity"
    http_port: int = Field(default=8001, validation_alias="PANJEREH_IDENTITY_PORT")
