"""Traces go to an OTLP collector with the headers the settings name, or the process does
not start."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.settings import PlatformSettings
from shared.tracing import otlp_headers


def test_otlp_headers_are_name_value_pairs_separated_by_commas() -> None:
    assert otlp_headers("") == {}
    assert otlp_headers("x-api-key=abc=, x-tenant = panjereh") == {
        "x-api-key": "abc=",
        "x-tenant": "panjereh",
    }


@pytest.mark.parametrize("bad", ["no-equals", "=value"])
def test_a_malformed_header_stops_the_process_at_start(
    bad: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PANJEREH_TRACE_EXPORTER", "otlp")
    monkeypatch.setenv("PANJEREH_OTLP_HEADERS", bad)
    with pytest.raises(ValidationError, match="an OTLP header is name=value"):
        PlatformSettings()


def test_the_otlp_exporter_and_its_endpoint_come_from_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PANJEREH_TRACE_EXPORTER", "otlp")
    monkeypatch.setenv("PANJEREH_OTLP_ENDPOINT", "https://collector.example/v1/traces")
    settings = PlatformSettings()
    assert (settings.trace_exporter, settings.otlp_endpoint) == (
        "otlp",
        "https://collector.example/v1/traces",
    )
