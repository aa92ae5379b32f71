"""How a process reaches the broker: where, as whom, and which authority it trusts.

The broker accepts only SASL/SCRAM-SHA-512 over TLS. A process holds one `KafkaAccess`
(its principal's name and secret, the platform CA that signed the broker's certificate)
and builds every client from it, so no client can be made that skips authentication.

The one exception is for measuring: a benchmark asked what TLS and SCRAM cost
(`--transport plaintext`) gives its processes the same principals' access `measuring`,
through the plaintext listener that only the benchmarks' own broker opens, and only
then. Such an access travels only as settings (`environment`), never as a credentials
file, and production refuses it (`shared.settings`).

The same facts travel as a librdkafka properties file (`panjereh credentials NAME`
prints one), which kcat, librdkafka clients and `KafkaAccess.read` all understand.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

SECURITY_PROTOCOL = "SASL_SSL"
#: Only towards a benchmark broker's measuring listener (see the module's docstring).
MEASURING_PROTOCOL = "PLAINTEXT"
MECHANISM = "SCRAM-SHA-512"
#: The broker keeps one credential per SCRAM mechanism: rotating a secret puts the new
#: one under the other mechanism, so old and new both work until the old is retired.
MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")


class CredentialsError(ValueError):
    """A credentials file or setting that cannot reach the broker as written."""


@lru_cache(maxsize=16)
def _ssl_context(ca_file: str) -> ssl.SSLContext:
    # One context per CA file: loading the CA once serves every client of the process.
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


@dataclass(frozen=True)
class KafkaAccess:
    """A principal's way to the broker. Immutable; `as_principal` derives another's."""

    bootstrap_servers: str
    username: str
    password: str = field(repr=False)
    ca_file: str
    mechanism: str = MECHANISM
    protocol: str = SECURITY_PROTOCOL

    @property
    def measuring(self) -> bool:
        """Whether this access goes to a measuring listener, without TLS or SCRAM."""
        return self.protocol == MEASURING_PROTOCOL

    def towards_measuring_listener(self, bootstrap_servers: str) -> KafkaAccess:
        """The same principal's access through a benchmark broker's measuring listener."""
        return replace(self, bootstrap_servers=bootstrap_servers, protocol=MEASURING_PROTOCOL)

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
        if self.measuring:
            return {
                "bootstrap_servers": self.bootstrap_servers,
                "security_protocol": MEASURING_PROTOCOL,
            }
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": SECURITY_PROTOCOL,
            "sasl_mechanism": self.mechanism,
            "sasl_plain_username": self.username,
            "sasl_plain_password": self.password,
            "ssl_context": self.ssl_context(),
        }

    def ssl_context(self) -> ssl.SSLContext:
        """A TLS context that trusts only the platform CA and checks the broker's name."""
        if not Path(self.ca_file).is_file():
            raise CredentialsError(f"the platform CA file {self.ca_file} does not exist")
        return _ssl_context(self.ca_file)

    def librdkafka_config(self) -> dict[str, str]:
        """The same access in librdkafka's terms (kcat, confluent-kafka)."""
        if self.measuring:
            return {"bootstrap.servers": self.bootstrap_servers, "security.protocol": self.protocol}
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.protocol,
            "sasl.mechanisms": self.mechanism,
            "sasl.username": self.username,
            "sasl.password": self.password,
            "ssl.ca.location": self.ca_file,
        }

    def properties(self) -> str:
        """A librdkafka properties file: `kcat -F FILE` reads it as it is."""
        lines = [f"{key}={value}" for key, value in self.librdkafka_config().items()]
        return "\n".join(lines) + "\n"

    def environment(self) -> dict[str, str]:
        """The `PANJEREH_KAFKA_*` variables that give a child process this access."""
        return {
            "PANJEREH_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "PANJEREH_KAFKA_USERNAME": self.username,
            "PANJEREH_KAFKA_PASSWORD": self.password,
            "PANJEREH_KAFKA_CA_FILE": self.ca_file,
            "PANJEREH_KAFKA_SECURITY_PROTOCOL": self.protocol,
        }

    def as_principal(self, username: str, password: str) -> KafkaAccess:
        """The same broker and CA, as another principal."""
        return replace(self, username=username, password=password)

    @classmethod
    def parse(cls, text: str) -> KafkaAccess:
        """Read a librdkafka properties file's text (the keys `properties` writes)."""
        values: dict[str, str] = {}
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            if not sep:
                raise CredentialsError(f"line {number} is not key=value")
            values[key.strip()] = value.strip()
        protocol = values.get("security.protocol", "").upper()
        mechanism = values.get("sasl.mechanisms", values.get("sasl.mechanism", "")).upper()
        if protocol != SECURITY_PROTOCOL or mechanism not in MECHANISMS:
            raise CredentialsError(
                f"the platform accepts only {SECURITY_PROTOCOL} with {' or '.join(MECHANISMS)}, "
                f"not {protocol or 'no protocol'} with {mechanism or 'no mechanism'}"
            )
        missing = [
            key
            for key in ("bootstrap.servers", "sasl.username", "sasl.password", "ssl.ca.location")
            if not values.get(key)
        ]
        if missing:
            raise CredentialsError(f"the credentials lack {', '.join(missing)}")
        return cls(
            bootstrap_servers=values["bootstrap.servers"],
            username=values["sasl.username"],
            password=values["sasl.password"],
            ca_file=values["ssl.ca.location"],
            mechanism=mechanism,
        )

    @classmethod
    def read(cls, path: str | Path) -> KafkaAccess:
        """Load a librdkafka properties file (as `panjereh credentials` prints it)."""
        try:
            text = Path(path).read_text("utf-8")
        except OSError as error:
            raise CredentialsError(f"cannot read the credentials file {path}: {error}") from None
        return cls.parse(text)
