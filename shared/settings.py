"""Settings from the environment: one base for the platform, one subclass per service."""

from __future__ import annotations

from typing import ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.sealing import parse_key

Environment = Literal["development", "test", "production"]

# Secrets that ship in examples and compose defaults; refused outside development.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "panjereh", "password", "secret"})

# base64 of b"panjereh-development-data-key-32": development and tests only.
DEVELOPMENT_DATA_KEY = "cGFuamVyZWgtZGV2ZWxvcG1lbnQtZGF0YS1rZXktMzI="


class PlatformSettings(BaseSettings):
    """What every Panjereh process reads from `PANJEREH_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix="PANJEREH_", extra="ignore", frozen=True)

    environment: Environment = "development"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    database_url: str = "postgresql://panjereh@127.0.0.1:55432/panjereh"
    http_host: str = "127.0.0.1"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    trace_exporter: Literal["none", "console"] = Field(
        default="none", description="Where finished spans go; `console` prints them as JSON."
    )
    data_key: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_DATA_KEY),
        description="base64 of 32 random bytes: seals private signing keys at rest"
        " (shared/sealing.py).",
    )

    #: Whether the process seals data with `data_key` (so production needs a real one).
    uses_data_key: ClassVar[bool] = False

    @model_validator(mode="after")
    def _no_placeholder_secrets_in_production(self) -> PlatformSettings:
        parse_key(self.data_key.get_secret_value())  # a malformed key fails at start
        if self.environment == "production":
            password = urlsplit(self.database_url).password or ""
            if password.lower() in PLACEHOLDER_SECRETS:
                raise ValueError(
                    "PANJEREH_DATABASE_URL needs a real password in production, not a placeholder"
                )
            if self.uses_data_key and self.data_key.get_secret_value() == DEVELOPMENT_DATA_KEY:
                raise ValueError(
                    "PANJEREH_DATA_KEY needs a real key in production (base64 of 32 random"
                    " bytes), not the development key"
                )
        return self

    @property
    def data_key_bytes(self) -> bytes:
        return parse_key(self.data_key.get_secret_value())


class ServiceSettings(PlatformSettings):
    """Settings of one service; subclasses name the service and its default port."""

    service_name: ClassVar[str]
    http_port: int
    database_pool_size: int = Field(
        default=10,
        ge=2,
        le=100,
        description="Most connections the service holds; requests beyond it queue for one.",
    )

    @property
    def database_schema(self) -> str:
        """The Postgres schema this service owns; no other service touches it."""
        return self.service_name
