"""The identity service's settings, from `PANJEREH_*` environment variables."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator

from shared.sealed_box import SealingKey
from shared.settings import PLACEHOLDER_SECRETS, ServiceSettings

DEVELOPMENT_PSEUDONYM_KEY = "development-pseudonym-key"
DEVELOPMENT_OPERATOR_TOKEN = "development-operator-token"
_DEVELOPMENT_SECRETS = PLACEHOLDER_SECRETS | {DEVELOPMENT_PSEUDONYM_KEY, DEVELOPMENT_OPERATOR_TOKEN}
# The public half of the development SMS gateway's key pair (its private half is
# DEVELOPMENT_SMS_GATEWAY_PRIVATE_KEY in adapters/sms_gateway.py): development and tests only.
DEVELOPMENT_SMS_GATEWAY_PUBLIC_KEY = "R5Pa6I1W058v+zhTcKaqIf/Fq3I3e2vEnk2GlAokhS4="


def _env(name: str) -> AliasChoices:
    """`PANJEREH_IDENTITY_<NAME>` in the environment, or the field's name in code."""
    return AliasChoices(f"PANJEREH_IDENTITY_{name.upper()}", name)


class IdentitySettings(ServiceSettings):
    service_name: ClassVar[str] = "identity"
    uses_data_key: ClassVar[bool] = True  # seals the issuer's private keys
    http_port: int = Field(default=8001, validation_alias="PANJEREH_IDENTITY_PORT")

    issuer: str = Field(
        default="http://127.0.0.1:8001",
        validation_alias=_env("issuer"),
        description="The `iss` of every token, and the base of the discovery document.",
    )
    pseudonym_key: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_PSEUDONYM_KEY),
        validation_alias=_env("pseudonym_key"),
        description="Keys the citizen's pseudonymous id and the stored one-time codes.",
    )
    operator_token: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_OPERATOR_TOKEN),
        validation_alias=_env("operator_token"),
        description="Bearer secret of the platform operators' endpoints.",
    )
    access_token_seconds: int = Field(
        default=300, validation_alias=_env("access_token_seconds"), ge=30, le=3600
    )
    refresh_token_days: int = Field(
        default=30,
        validation_alias=_env("refresh_token_days"),
        ge=1,
        le=365,
        description="A session unused this long ends: each refresh token expires after it.",
    )
    session_lifetime_hours: int = Field(
        default=7 * 24,
        validation_alias=_env("session_lifetime_hours"),
        ge=1,
        le=90 * 24,
        description="A session ends this long after its sign-in, however often it was "
        "refreshed: no refresh or access token of it outlives that.",
    )
    operator_agencies: frozenset[str] = Field(
        default=frozenset({"ito"}),
        validation_alias=AliasChoices(
            "PANJEREH_IDENTITY_OPERATOR_AGENCIES",
            "PANJEREH_CATALOG_OPERATOR_AGENCIES",
            "operator_agencies",
        ),
        description="The platform operator's agencies (by default the Information Technology "
        "Organization, which runs the platform): only their clients may hold the operator's "
        "scopes (`exchange:admin`, `programme:admin`). The catalog's operator setting is read "
        "when identity has none of its own, so one setting names the operator everywhere.",
    )
    token_endpoint_origins: list[str] = Field(
        default=["http://127.0.0.1:8004", "http://localhost:8004"],
        validation_alias=_env("token_endpoint_origins"),
        description="Web origins whose pages may ask the token endpoint for a token from the "
        "browser (JSON list): the metrics service's weekly report form, at its local address "
        "by default. Only /oauth/token answers them.",
    )
    code_seconds: int = Field(default=120, validation_alias=_env("code_seconds"), ge=30, le=900)
    code_attempts: int = Field(
        default=3,
        validation_alias=_env("code_attempts"),
        ge=1,
        description="Guesses allowed on one code.",
    )
    code_resend_seconds: int = Field(
        default=60,
        validation_alias=_env("code_resend_seconds"),
        ge=0,
        description="A new code for a citizen at most this often.",
    )
    citizen_max_failures: int = Field(
        default=5, validation_alias=_env("citizen_max_failures"), ge=1
    )
    address_max_failures: int = Field(
        default=20, validation_alias=_env("address_max_failures"), ge=1
    )
    failure_window_seconds: int = Field(
        default=900, validation_alias=_env("failure_window_seconds"), ge=1
    )
    lockout_seconds: int = Field(default=900, validation_alias=_env("lockout_seconds"), ge=1)
    # Abuse limits, per instance, in fixed windows (services/identity/README.md has the
    # table). 0 turns one off. Network: the client's IPv4 /24 or IPv6 /64.
    registrations_per_national_id_per_hour: int = Field(
        default=5, validation_alias=_env("registrations_per_national_id_per_hour"), ge=0
    )
    registrations_per_mobile_per_hour: int = Field(
        default=5, validation_alias=_env("registrations_per_mobile_per_hour"), ge=0
    )
    registrations_per_network_per_hour: int = Field(
        default=60, validation_alias=_env("registrations_per_network_per_hour"), ge=0
    )
    registrations_per_minute: int = Field(
        default=60_000, validation_alias=_env("registrations_per_minute"), ge=0
    )
    code_sends_per_national_id_per_hour: int = Field(
        default=10, validation_alias=_env("code_sends_per_national_id_per_hour"), ge=0
    )
    code_sends_per_mobile_per_hour: int = Field(
        default=10, validation_alias=_env("code_sends_per_mobile_per_hour"), ge=0
    )
    code_sends_per_network_per_hour: int = Field(
        default=600, validation_alias=_env("code_sends_per_network_per_hour"), ge=0
    )
    code_sends_per_minute: int = Field(
        default=60_000, validation_alias=_env("code_sends_per_minute"), ge=0
    )
    sign_ins_per_national_id_and_network_per_hour: int = Field(
        default=30,
        validation_alias=_env("sign_ins_per_national_id_and_network_per_hour"),
        ge=0,
    )
    sign_ins_per_network_per_hour: int = Field(
        default=1200, validation_alias=_env("sign_ins_per_network_per_hour"), ge=0
    )
    sign_ins_per_minute: int = Field(
        default=60_000, validation_alias=_env("sign_ins_per_minute"), ge=0
    )
    trusted_proxies: str = Field(
        default="",
        validation_alias=_env("trusted_proxies"),
        description="The platform's own reverse proxies (CIDRs, comma-separated): from these "
        "peers the client is the rightmost untrusted X-Forwarded-For hop. Empty: the peer.",
    )
    unlimited_networks: str | None = Field(
        default=None,
        validation_alias=_env("unlimited_networks"),
        description="Networks (CIDRs, comma-separated) the per-network limits and lockouts "
        "spare, e.g. pishkhan offices behind one address. Unset: loopback in development "
        "and test (the simulator and benchmarks), none in production.",
    )
    hashing_concurrency: int = Field(
        default=4,
        validation_alias=_env("hashing_concurrency"),
        ge=1,
        le=64,
        description="Client secrets hashed at once at most (argon2, 64 MiB each); a token "
        "request beyond it is refused at once with 429.",
    )
    signing_key_days: int = Field(
        default=30,
        validation_alias=_env("signing_key_days"),
        ge=1,
        description="How long a key signs.",
    )
    key_publish_ahead_seconds: int = Field(
        default=300,
        validation_alias=_env("key_publish_ahead_seconds"),
        ge=0,
        description="A new signing key is published this long before it signs.",
    )
    sms_gateway: Literal["log", "http", "off"] = Field(
        default="log",
        validation_alias=_env("sms_gateway"),
        description="`log`: the development gateway (development and tests only), which logs "
        "each message and hands it to the simulated phones; `http`: the real gateway, beside "
        "identity, sending through the SMS provider's HTTP service (its settings are "
        "`PANJEREH_SMS_GATEWAY_*`); `off`: a gateway outside this process reads `identity.sms`.",
    )
    operator_check: Literal["development", "http"] = Field(
        default="development",
        validation_alias=_env("operator_check"),
        description="Who says a mobile is the national ID holder's: `development` (any mobile "
        "not ending in 0000; development and tests only) or `http`, the regulator's service.",
    )
    operator_check_url: str | None = Field(
        default=None,
        validation_alias=_env("operator_check_url"),
        description="The regulator's check (contract in adapters/operator_check.py).",
    )
    operator_check_token: SecretStr | None = Field(
        default=None, validation_alias=_env("operator_check_token")
    )
    operator_check_timeout_seconds: float = Field(
        default=2.0, gt=0, validation_alias=_env("operator_check_timeout_seconds")
    )
    operator_check_retries: int = Field(
        default=2, ge=0, validation_alias=_env("operator_check_retries")
    )
    sms_gateway_public_key: str = Field(
        default=DEVELOPMENT_SMS_GATEWAY_PUBLIC_KEY,
        validation_alias=_env("sms_gateway_public_key"),
        description="The SMS gateway's X25519 public key (base64 of 32 bytes): the mobile "
        "and the text of every text message are sealed to it.",
    )

    sms_gateway_credentials_file: str | None = Field(
        default=None,
        validation_alias=_env("sms_gateway_credentials_file"),
        description="The development SMS gateway's own Kafka credentials (properties file).",
    )

    @model_validator(mode="after")
    def _real_secrets_in_production(self) -> IdentitySettings:
        SealingKey(self.sms_gateway_public_key)  # a malformed key fails at start
        if self.environment == "production":
            for name, secret in (
                ("PANJEREH_IDENTITY_PSEUDONYM_KEY", self.pseudonym_key),
                ("PANJEREH_IDENTITY_OPERATOR_TOKEN", self.operator_token),
            ):
                value = secret.get_secret_value()
                if value.lower() in _DEVELOPMENT_SECRETS or len(value) < 32:
                    raise ValueError(f"{name} needs a real secret (32+ characters) in production")
            if self.operator_check == "development":
                raise ValueError(
                    "PANJEREH_IDENTITY_OPERATOR_CHECK=development says any mobile not ending "
                    "in 0000 belongs to whoever asks: refused in production (set it to `http` "
                    "and PANJEREH_IDENTITY_OPERATOR_CHECK_URL to the regulator's check)"
                )
            if self.sms_gateway == "log":
                raise ValueError(
                    "PANJEREH_IDENTITY_SMS_GATEWAY=log runs the development SMS gateway, which "
                    "hands every code to the simulated phones: refused in production (set it "
                    "to `off` and run a real gateway)"
                )
            if self.sms_gateway_public_key.strip() == DEVELOPMENT_SMS_GATEWAY_PUBLIC_KEY:
                raise ValueError(
                    "PANJEREH_IDENTITY_SMS_GATEWAY_PUBLIC_KEY needs the real gateway's public "
                    "key in production, not the development key"
                )
        return self

    @model_validator(mode="after")
    def _operator_check_has_an_address(self) -> IdentitySettings:
        if self.operator_check == "http" and not self.operator_check_url:
            raise ValueError(
                "PANJEREH_IDENTITY_OPERATOR_CHECK=http needs PANJEREH_IDENTITY_OPERATOR_CHECK_URL"
            )
        return self

    @property
    def sms_gateway_key(self) -> SealingKey:
        return SealingKey(self.sms_gateway_public_key)

    @property
    def pseudonym_key_bytes(self) -> bytes:
        return self.pseudonym_key.get_secret_value().encode()
