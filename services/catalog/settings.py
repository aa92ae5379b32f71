"""The catalog service's settings, from `PANJEREH_*` environment variables."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from shared.settings import ServiceSettings


class CatalogSettings(ServiceSettings):
    service_name: ClassVar[str] = "catalog"
    http_port: int = Field(default=8002, validation_alias="PANJEREH_CATALOG_PORT")
    operator_agencies: frozenset[str] = Field(
        default=frozenset({"ito"}),
        validation_alias="PANJEREH_CATALOG_OPERATOR_AGENCIES",
        description=(
            "Agencies whose systems may register and update agencies (with `catalog:write`): "
            "by default the Information Technology Organization, which runs the window."
        ),
    )
    load_reference_when_empty: bool = Field(
        default=True,
        validation_alias="PANJEREH_CATALOG_LOAD_REFERENCE_WHEN_EMPTY",
        description="In development only: load the reference register at start if it is empty.",
    )
