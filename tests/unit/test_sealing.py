"""Sealing private keys at rest with the data key (shared/sealing.py) and its settings."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import ValidationError

from services.exchange.settings import ExchangeSettings
from services.identity.settings import IdentitySettings
from services.metrics.settings import MetricsSettings
from shared.sealed_box import new_key_pair
from shared.sealing import Sealer, SealError, is_sealed, new_key, parse_key
from shared.settings import DEVELOPMENT_DATA_KEY, PlatformSettings

JWK = {"kty": "EC", "crv": "P-256", "x": "xx", "y": "yy", "d": "the-private-scalar"}
REAL_DSN = "postgresql://identity:a-real-password@db/panjereh"


def sealer() -> Sealer:
    return Sealer(parse_key(new_key()))


def test_a_sealed_value_opens_to_what_was_sealed() -> None:
    one = sealer()
    sealed = one.seal(JWK, binding="identity.issuer_keys:k1")
    assert is_sealed(sealed)
    assert one.open(sealed, binding="identity.issuer_keys:k1") == JWK


def test_a_sealed_value_holds_nothing_of_the_value_in_clear() -> None:
    sealed = sealer().seal(JWK, binding="identity.issuer_keys:k1")
    text = json.dumps(sealed)
    assert "the-private-scalar" not in text
    assert '"d"' not in text
    assert "kty" not in sealed


def test_every_seal_uses_a_fresh_nonce() -> None:
    one = sealer()
    first, second = (one.seal(JWK, binding="b") for _ in range(2))
    assert first["nonce"] != second["nonce"]
    assert first["ciphertext"] != second["ciphertext"]


def test_a_value_sealed_for_one_row_does_not_open_for_another() -> None:
    one = sealer()
    sealed = one.seal(JWK, binding="identity.issuer_keys:k1")
    with pytest.raises(SealError):
        one.open(sealed, binding="identity.issuer_keys:k2")


def test_a_value_does_not_open_under_another_key() -> None:
    sealed = sealer().seal(JWK, binding="b")
    with pytest.raises(SealError, match="not this one"):
        sealer().open(sealed, binding="b")


def test_an_altered_value_does_not_open() -> None:
    one = sealer()
    sealed = one.seal(JWK, binding="b")
    raw = bytearray(base64.b64decode(sealed["ciphertext"]))
    raw[0] ^= 1
    with pytest.raises(SealError):
        one.open({**sealed, "ciphertext": base64.b64encode(bytes(raw)).decode()}, binding="b")


def test_a_plain_value_from_an_older_release_opens_as_it_is() -> None:
    assert not is_sealed(JWK)
    assert sealer().open(JWK, binding="anything") == JWK


@pytest.mark.parametrize("encoded", ["", "not base64!", base64.b64encode(b"short").decode()])
def test_a_malformed_data_key_is_refused(encoded: str) -> None:
    with pytest.raises(ValueError, match="data key"):
        parse_key(encoded)
    with pytest.raises(ValidationError, match="data key"):
        PlatformSettings(data_key=encoded)


def test_development_and_tests_have_a_data_key_by_default() -> None:
    settings = IdentitySettings()
    assert settings.data_key.get_secret_value() == DEVELOPMENT_DATA_KEY
    assert len(settings.data_key_bytes) == 32
    assert DEVELOPMENT_DATA_KEY not in repr(settings)


def test_production_refuses_the_development_data_key_for_identity() -> None:
    secrets = {"pseudonym_key": "p" * 40, "operator_token": "o" * 40}
    with pytest.raises(ValidationError, match="PANJEREH_DATA_KEY"):
        IdentitySettings(environment="production", database_url=REAL_DSN, **secrets)  # type: ignore[arg-type]
    key = new_key()
    accepted = IdentitySettings(
        environment="production",
        database_url=REAL_DSN,
        data_key=key,
        sms_gateway="off",
        sms_gateway_public_key=new_key_pair()[1],
        operator_check="http",
        operator_check_url="https://regulator.example/check",
        **secrets,  # type: ignore[arg-type]
    )
    assert accepted.data_key_bytes == base64.b64decode(key)


def test_production_refuses_the_development_data_key_for_the_exchange() -> None:
    with pytest.raises(ValidationError, match="PANJEREH_DATA_KEY"):
        ExchangeSettings(environment="production", database_url=REAL_DSN)
    key = new_key()
    accepted = ExchangeSettings(
        environment="production",
        database_url=REAL_DSN,
        data_key=key,
    )
    assert accepted.data_key_bytes == base64.b64decode(key)


def test_a_service_that_seals_nothing_needs_no_data_key_in_production() -> None:
    settings = MetricsSettings(environment="production", database_url=REAL_DSN)
    assert settings.environment == "production"
