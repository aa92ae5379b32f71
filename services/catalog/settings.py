"""The catalog service's settings, from `PANJEREH_*` environment variables."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from shared.settings import ServiceSettings


class CatalogSettings(ServiceSettings):
    service_name: ClassVar[str] = "catalog"
    http_port: int = Field(default=8002, validation_alias="PANJEREH_CATALOG_PORT")
