"""Settings from the environment: one base for the platform, one subclass per service."""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.kafka_access import CredentialsError, KafkaAccess
from shared.sealing import parse_key
from shared.topics import DAY_MS, DEAD_LETTER_RETENTION_MS, Durability

Environment = Literal["development", "test", "production"]

# Secrets that ship in examples and compose defaults; refused outside development.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "panjereh", "password", "secret"})

# base64 of b"panjereh-development-data-key-32": development and tests only.
DEVELOPMENT_DATA_KEY = "cGFuamVyZWgtZGV2ZWxvcG1lbnQtZGF0YS1rZXktMzI="


class DedupSettings(BaseSettings):
    """How long the platform's consumers remember the events they handled: every process
    that handles events and the tool that replays dead letters read the same setting."""

    model_config = SettingsConfigDict(env_prefix="PANJEREH_", extra="ignore", frozen=True)

    dedup_horizon_days: int = Field(
        default=45,
        ge=1,
        description="How long a consumer remembers an event it handled, so that the same "
        "event coming again changes nothing; older inbox rows are deleted, and the metrics "
        "worker forgets older delivery and transaction ids. It must cover the "
        "dead-letter topics' retention (30 days), since a replayed dead letter comes again to "
        "every consumer of its topic; `dlq replay` refuses letters older than it.",
    )

    @model_validator(mode="after")
    def _dedup_covers_dead_letters(self) -> DedupSettings:
        dead_letter_days = DEAD_LETTER_RETENTION_MS // DAY_MS
        if self.dedup_horizon_days < dead_letter_days:
            raise ValueError(
                f"PANJEREH_DEDUP_HORIZON_DAYS={self.dedup_horizon_days} is shorter than the "
                f"dead-letter topics' retention ({dead_letter_days} days): a dead letter "
                "replayed after its original's inbox row was deleted would count twice"
            )
        return self

    @property
    def dedup_horizon(self) -> timedelta:
        """How long an event handled stays remembered (`dedup_horizon_days`)."""
        return timedelta(days=self.dedup_horizon_days)


class PlatformSettings(DedupSettings):
    """What every Panjereh process reads from `PANJEREH_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix="PANJEREH_", extra="ignore", frozen=True)

    environment: Environment = "development"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_credentials_file: str | None = Field(
        default=None,
        description=(
            "The process's librdkafka properties file (`panjereh credentials NAME`); when set,"
            " it alone says where the broker is and who this process is."
        ),
    )
    kafka_username: str | None = Field(default=None, description="This process's principal.")
    kafka_password: SecretStr | None = None
    kafka_ca_file: str | None = Field(
        default=None, description="The platform CA's certificate (PEM), the only one trusted."
    )
    kafka_security_protocol: Literal["SASL_SSL", "PLAINTEXT"] = Field(
        default="SASL_SSL",
        description="SASL_SSL, always, but for a benchmark measuring what TLS and SCRAM cost"
        " on its own broker's measuring listener (PLAINTEXT); production refuses PLAINTEXT.",
    )
    kafka_replication_factor: int = Field(
        default=1,
        ge=1,
        description="Brokers that hold each partition of the topics the platform makes "
        "(3 on a production cluster).",
    )
    kafka_min_insync_replicas: int = Field(
        default=1,
        ge=1,
        description="Replicas that must have a write before the broker acknowledges it "
        "(2 on a production cluster of 3).",
    )
    database_url: str = "postgresql://panjereh@127.0.0.1:55432/panjereh"
    http_host: str = "127.0.0.1"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    trace_exporter: Literal["none", "console", "otlp"] = Field(
        default="none",
        description="Where finished spans go: `console` prints them as JSON, `otlp` sends "
        "them to a collector over OTLP/HTTP (PANJEREH_OTLP_ENDPOINT).",
    )
    otlp_endpoint: str = Field(
        default="http://127.0.0.1:4318/v1/traces",
        description="The collector's OTLP/HTTP traces endpoint.",
    )
    otlp_headers: SecretStr = Field(
        default=SecretStr(""),
        description="Headers every export carries, `name=value` comma-separated (a "
        "collector's API key, say).",
    )
    metrics_token: SecretStr = Field(
        default=SecretStr(""),
        description="The bearer secret a Prometheus scrape of `GET /metrics` presents. "
        "Unset, development and test serve metrics to anyone and production to no one.",
    )
    data_key: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_DATA_KEY),
        description="base64 of 32 random bytes: seals private signing keys at rest"
        " (shared/sealing.py).",
    )

    #: Whether the process seals data with `data_key` (so production needs a real one).
    uses_data_key: ClassVar[bool] = False
    #: Whether the process logs in to PostgreSQL (so production needs a real password).
    uses_database: ClassVar[bool] = True

    @model_validator(mode="after")
    def _no_placeholder_secrets_in_production(self) -> PlatformSettings:
        parse_key(self.data_key.get_secret_value())  # a malformed key fails at start
        if self.environment == "production":
            password = urlsplit(self.database_url).password or ""
            if self.uses_database and password.lower() in PLACEHOLDER_SECRETS:
                raise ValueError(
                    "PANJEREH_DATABASE_URL needs a real password in production, not a placeholder"
                )
            if self.uses_data_key and self.data_key.get_secret_value() == DEVELOPMENT_DATA_KEY:
                raise ValueError(
                    "PANJEREH_DATA_KEY needs a real key in production (base64 of 32 random"
                    " bytes), not the development key"
                )
        return self

    @model_validator(mode="after")
    def _production_reaches_kafka_over_tls(self) -> PlatformSettings:
        # PLAINTEXT is for a benchmark's measuring listener alone (shared/kafka_access.py).
        if self.environment == "production" and self.kafka_security_protocol != "SASL_SSL":
            raise ValueError("production reaches Kafka over SASL_SSL only")
        return self

    @model_validator(mode="after")
    def _otlp_headers_are_readable(self) -> PlatformSettings:
        from shared.tracing import otlp_headers

        otlp_headers(self.otlp_headers.get_secret_value())  # ValueError names the bad pair
        return self

    @model_validator(mode="after")
    def _durability_is_possible(self) -> PlatformSettings:
        self.durability  # noqa: B018 - raises when min.insync.replicas exceeds the factor
        return self

    @property
    def durability(self) -> Durability:
        """How the topics this process makes are replicated."""
        return Durability(self.kafka_replication_factor, self.kafka_min_insync_replicas)

    @property
    def kafka(self) -> KafkaAccess:
        """How this process reaches the broker; CredentialsError if it was not told."""
        if self.kafka_credentials_file:
            return KafkaAccess.read(self.kafka_credentials_file)
        if not (self.kafka_username and self.kafka_password and self.kafka_ca_file):
            raise CredentialsError(
                "no Kafka credentials: set PANJEREH_KAFKA_CREDENTIALS_FILE, or "
                "PANJEREH_KAFKA_USERNAME, PANJEREH_KAFKA_PASSWORD and PANJEREH_KAFKA_CA_FILE"
            )
        return KafkaAccess(
            bootstrap_servers=self.kafka_bootstrap_servers,
            username=self.kafka_username,
            password=self.kafka_password.get_secret_value(),
            ca_file=self.kafka_ca_file,
            protocol=self.kafka_security_protocol,
        )

    @property
    def data_key_bytes(self) -> bytes:
        return parse_key(self.data_key.get_secret_value())


class ServiceSettings(PlatformSettings):
    """Settings of one service; subclasses name the service and its default port."""

    service_name: ClassVar[str]
    http_port: int
    token_issuer: str = Field(
        default="http://127.0.0.1:8001",
        validation_alias=AliasChoices(
            "PANJEREH_TOKEN_ISSUER", "PANJEREH_IDENTITY_ISSUER", "token_issuer"
        ),
        description=(
            "The only issuer whose tokens and keys this service accepts (identity's `iss`)."
        ),
    )
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
