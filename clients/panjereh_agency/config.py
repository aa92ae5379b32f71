"""What an agency's system is configured with: the platform's credentials file for it,
the exchange's public address (for its keys), and the key the agency signs with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from joserfc.jwk import Key, import_key

from panjereh_agency.exchange_keys import ExchangeKeys
from shared.kafka_access import CredentialsError, KafkaAccess
from shared.principals import AGENCY_PREFIX


@dataclass(frozen=True)
class AgencyConfig:
    """One agency system's settings. `agency` is read from the credentials' principal."""

    kafka: KafkaAccess
    exchange_url: str

    @property
    def agency(self) -> str:
        return self.kafka.username.removeprefix(AGENCY_PREFIX)

    @classmethod
    def load(cls, credentials_file: str | Path, exchange_url: str) -> AgencyConfig:
        """From the properties file `panjereh credentials agency-<code>` printed."""
        kafka = KafkaAccess.read(credentials_file)
        if not kafka.username.startswith(AGENCY_PREFIX):
            raise CredentialsError(f"{kafka.username} is not an agency's principal")
        return cls(kafka=kafka, exchange_url=exchange_url)

    def exchange_keys(self) -> ExchangeKeys:
        return ExchangeKeys(self.exchange_url)


def load_signing_key(path: str | Path) -> Key:
    """The agency's private signing key, a JWK file (its public half registered with
    identity as the agency's key)."""
    return import_key(Path(path).read_text("utf-8"))
