"""Settings come from the environment and refuse placeholder secrets in production."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from services.catalog.settings import CatalogSettings
from services.exchange.settings import ExchangeSettings
from services.identity.settings import IdentitySettings
from services.metrics.settings import MetricsSettings
from shared.settings import DedupSettings, PlatformSettings
from shared.topics import SPECS


def test_services_listen_on_their_documented_ports_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("IDENTITY", "CATALOG", "EXCHANGE", "METRICS"):
        monkeypatch.delenv(f"PANJEREH_{name}_PORT", raising=False)
    ports = [
        cls().http_port
        for cls in (IdentitySettings, CatalogSettings, ExchangeSettings, MetricsSettings)
    ]
    assert ports == [8001, 8002, 8003, 8004]


def test_a_port_is_overridden_by_its_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PANJEREH_CATALOG_PORT", "18002")
    assert CatalogSettings().http_port == 18002
    assert CatalogSettings().database_schema == "catalog"


@pytest.mark.parametrize("password", ["", "changeme", "panjereh"])
def test_production_refuses_a_placeholder_database_password(
    monkeypatch: pytest.MonkeyPatch, password: str
) -> None:
    monkeypatch.setenv("PANJEREH_ENVIRONMENT", "production")
    auth = f"panjereh:{password}" if password else "panjereh"
    monkeypatch.setenv("PANJEREH_DATABASE_URL", f"postgresql://{auth}@db:5432/panjereh")
    with pytest.raises(ValidationError, match="real password"):
        PlatformSettings()


def test_production_accepts_a_real_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANJEREH_ENVIRONMENT", "production")
    monkeypatch.setenv("PANJEREH_DATABASE_URL", "postgresql://panjereh:Xk9-rT4q@db:5432/p")
    assert PlatformSettings().environment == "production"


def test_a_process_without_a_database_needs_no_database_password_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from infra.access.__main__ import AccessManagerSettings

    monkeypatch.setenv("PANJEREH_ENVIRONMENT", "production")
    monkeypatch.setenv("PANJEREH_IDENTITY_OPERATOR_TOKEN", "o" * 40)
    monkeypatch.delenv("PANJEREH_DATABASE_URL", raising=False)
    assert AccessManagerSettings().environment == "production"


def test_the_access_manager_refuses_the_development_operator_secret_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from infra.access.__main__ import AccessManagerSettings

    monkeypatch.setenv("PANJEREH_ENVIRONMENT", "production")
    monkeypatch.delenv("PANJEREH_IDENTITY_OPERATOR_TOKEN", raising=False)
    with pytest.raises(ValidationError, match="PANJEREH_IDENTITY_OPERATOR_TOKEN"):
        AccessManagerSettings()


def test_development_runs_without_a_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANJEREH_ENVIRONMENT", "development")
    monkeypatch.setenv("PANJEREH_DATABASE_URL", "postgresql://panjereh@127.0.0.1:55432/p")
    assert PlatformSettings().environment == "development"


def test_a_dedup_horizon_shorter_than_the_dead_letters_retention_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PANJEREH_DEDUP_HORIZON_DAYS", "29")
    with pytest.raises(ValidationError, match="dead-letter topics' retention"):
        PlatformSettings()
    with pytest.raises(ValidationError, match="dead-letter topics' retention"):
        DedupSettings()
    monkeypatch.setenv("PANJEREH_DEDUP_HORIZON_DAYS", "30")
    assert PlatformSettings().dedup_horizon == timedelta(days=30)


def test_the_default_dedup_horizon_outlasts_every_dead_letter() -> None:
    dead_letter_retention = max(
        spec.retention_ms or 0 for spec in SPECS.values() if spec.name.endswith(".dlq")
    )
    assert DedupSettings().dedup_horizon > timedelta(milliseconds=dead_letter_retention)
