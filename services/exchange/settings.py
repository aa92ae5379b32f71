"""The exchange service's settings, from `PANJEREH_*` environment variables."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from shared.settings import ServiceSettings


class ExchangeSettings(ServiceSettings):
    service_name: ClassVar[str] = "exchange"
    uses_data_key: ClassVar[bool] = True  # seals the exchange's private signing key
    http_port: int = Field(default=8003, validation_alias="PANJEREH_EXCHANGE_PORT")
    transaction_consumers: int = Field(
        default=2,
        ge=1,
        le=12,
        description="Members of the consumer group that handle requests and answers.",
        validation_alias="PANJEREH_EXCHANGE_TRANSACTION_CONSUMERS",
    )
    payload_retention_seconds: float = Field(
        default=24 * 60 * 60,
        ge=0,
        le=90 * 24 * 60 * 60,
        description="How long an answered payload is kept after its outcome was delivered "
        "(published to the consumer); then only its digest stays.",
        validation_alias="PANJEREH_EXCHANGE_PAYLOAD_RETENTION_SECONDS",
    )
    audit_checkpoint_seconds: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="A checkpoint of the audit chain is signed at least this often while "
        "records wait for one.",
        validation_alias="PANJEREH_EXCHANGE_AUDIT_CHECKPOINT_SECONDS",
    )
    audit_checkpoint_records: int = Field(
        default=1000,
        ge=1,
        le=10_000,
        description="... and as soon as this many records wait; no checkpoint lists more.",
        validation_alias="PANJEREH_EXCHANGE_AUDIT_CHECKPOINT_RECORDS",
    )
