"""A principal's way to the broker, and the credentials file that carries it."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.kafka_access import CredentialsError, KafkaAccess
from shared.settings import PlatformSettings

ACCESS = KafkaAccess("127.0.0.1:9092", "analyst", "s3cret-value", "/etc/panjereh/ca.pem")


def test_a_credentials_file_reads_back_as_the_access_it_was_written_from() -> None:
    assert KafkaAccess.parse(ACCESS.properties()) == ACCESS


def test_the_credentials_file_speaks_librdkafka() -> None:
    lines = dict(line.split("=", 1) for line in ACCESS.properties().splitlines())
    assert lines == {
        "bootstrap.servers": "127.0.0.1:9092",
        "security.protocol": "SASL_SSL",
        "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": "analyst",
        "sasl.password": "s3cret-value",
        "ssl.ca.location": "/etc/panjereh/ca.pem",
    }


@pytest.mark.parametrize(
    "replaced",
    [
        ("security.protocol=SASL_SSL", "security.protocol=PLAINTEXT"),
        ("security.protocol=SASL_SSL", "security.protocol=SASL_PLAINTEXT"),
        ("sasl.mechanisms=SCRAM-SHA-512", "sasl.mechanisms=PLAIN"),
        ("sasl.password=s3cret-value", "sasl.password="),
    ],
)
def test_credentials_that_would_not_authenticate_over_tls_are_refused(
    replaced: tuple[str, str],
) -> None:
    with pytest.raises(CredentialsError):
        KafkaAccess.parse(ACCESS.properties().replace(*replaced))


def test_the_password_never_shows_in_the_access_repr() -> None:
    assert "s3cret-value" not in repr(ACCESS)


def test_a_process_without_kafka_credentials_is_told_what_to_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("CREDENTIALS_FILE", "USERNAME", "PASSWORD", "CA_FILE"):
        monkeypatch.delenv(f"PANJEREH_KAFKA_{name}", raising=False)
    with pytest.raises(CredentialsError, match="PANJEREH_KAFKA_CREDENTIALS_FILE"):
        _ = PlatformSettings().kafka


def test_a_missing_ca_file_is_a_clear_error(tmp_path: Path) -> None:
    access = KafkaAccess("127.0.0.1:9092", "analyst", "x", str(tmp_path / "absent.pem"))
    with pytest.raises(CredentialsError, match="CA file"):
        access.ssl_context()


def test_settings_read_the_credentials_file_they_are_given(tmp_path: Path) -> None:
    path = tmp_path / "analyst.properties"
    path.write_text(ACCESS.properties())
    assert PlatformSettings(kafka_credentials_file=str(path)).kafka == ACCESS


def test_a_measuring_access_is_the_same_principal_without_tls_or_scram() -> None:
    measuring = ACCESS.towards_measuring_listener("127.0.0.1:9098")
    assert measuring.measuring
    assert not ACCESS.measuring
    assert measuring.username == ACCESS.username
    assert measuring.client_options() == {
        "bootstrap_servers": "127.0.0.1:9098",
        "security_protocol": "PLAINTEXT",
    }


def test_a_measuring_access_travels_as_settings_and_never_as_a_credentials_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    measuring = ACCESS.towards_measuring_listener("127.0.0.1:9098")
    with pytest.raises(CredentialsError):
        KafkaAccess.parse(measuring.properties())
    monkeypatch.delenv("PANJEREH_KAFKA_CREDENTIALS_FILE", raising=False)
    for name, value in measuring.environment().items():
        monkeypatch.setenv(name, value)
    assert PlatformSettings().kafka == measuring


def test_production_refuses_to_reach_kafka_without_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANJEREH_ENVIRONMENT", "production")
    monkeypatch.setenv("PANJEREH_DATABASE_URL", "postgresql://panjereh:Xk9-rT4q@db:5432/p")
    monkeypatch.setenv("PANJEREH_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    with pytest.raises(ValueError, match="SASL_SSL only"):
        PlatformSettings()
