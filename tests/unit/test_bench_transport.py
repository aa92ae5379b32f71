"""A benchmark measuring what TLS and SCRAM cost gives every process and client the same
principal's access through its own broker's plaintext listener, and only then."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from benchmarks.stage import Stage, add_arguments, open_stage
from shared.kafka_access import KafkaAccess
from shared.principals import Principal

ISSUED = KafkaAccess("127.0.0.1:49092", "exchange", "s3cret-value", "/bench/tls/ca.pem")


def issued_stage(home: Path, measuring_bootstrap: str | None) -> Stage:
    (home / "credentials").mkdir(parents=True)
    (home / "credentials" / f"{Principal.EXCHANGE}.properties").write_text(ISSUED.properties())
    return Stage(home=home, platform=None, measuring_bootstrap=measuring_bootstrap)


def test_as_deployed_processes_get_the_credentials_file_the_platform_issued(
    tmp_path: Path,
) -> None:
    stage = issued_stage(tmp_path, None)
    assert stage.access(Principal.EXCHANGE) == ISSUED
    assert stage.kafka_environment(Principal.EXCHANGE) == {
        "PANJEREH_KAFKA_CREDENTIALS_FILE": str(stage.credentials_file(Principal.EXCHANGE))
    }


def test_measuring_every_process_is_the_same_principal_on_the_plaintext_listener(
    tmp_path: Path,
) -> None:
    stage = issued_stage(tmp_path, "127.0.0.1:49098")
    access = stage.access(Principal.EXCHANGE)
    assert access == ISSUED.towards_measuring_listener("127.0.0.1:49098")
    environment = stage.kafka_environment(Principal.EXCHANGE)
    assert environment["PANJEREH_KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT"
    assert environment["PANJEREH_KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:49098"
    assert environment["PANJEREH_KAFKA_USERNAME"] == "exchange"
    assert "PANJEREH_KAFKA_CREDENTIALS_FILE" not in environment


def test_a_running_platform_is_never_measured_without_tls(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser, database=True)
    arguments = parser.parse_args(["--home", str(tmp_path), "--transport", "plaintext"])
    with pytest.raises(SystemExit, match="own infrastructure"):
        open_stage(arguments, "exchange")
