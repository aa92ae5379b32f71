"""One-time codes, the attempt policy, key rotation and agencies' keys: pure rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from joserfc.jwk import ECKey, OKPKey, RSAKey

from services.identity.domain.agency_keys import accept_public_jwk
from services.identity.domain.citizens import InvalidInput
from services.identity.domain.codes import (
    AttemptPolicy,
    Counter,
    code_matches,
    hash_code,
    new_code,
    record_failure,
    retry_sentence,
)
from services.identity.domain.tokens import (
    SigningKey,
    granted_scopes,
    plan_rotation,
    rotation_due,
    signing_key,
)
from services.identity.settings import IdentitySettings
from shared.sealed_box import new_key_pair
from shared.sealing import new_key

NOW = datetime(2026, 3, 20, 8, 30, tzinfo=UTC)
POLICY = AttemptPolicy(max_failures=3, window=timedelta(minutes=15), lockout=timedelta(minutes=15))


def test_codes_are_six_digits_and_stored_only_as_a_hash_bound_to_the_challenge() -> None:
    code = new_code()
    assert len(code) == 6
    assert code.isdigit()
    stored = hash_code(code, "challenge-1", b"key")
    assert code.encode() not in stored
    assert code_matches(code, "challenge-1", b"key", stored)
    assert not code_matches(code, "challenge-2", b"key", stored)
    assert not code_matches(code, "challenge-1", b"another", stored)


def test_the_limit_th_failure_in_a_window_locks_and_resets_the_count() -> None:
    counter = Counter(0, NOW, None)
    outcomes = []
    for _ in range(3):
        after = record_failure(counter, POLICY, NOW)
        counter = after.counter
        outcomes.append(after.locked_now)
    assert outcomes == [False, False, True]
    assert counter.locked_until == NOW + POLICY.lockout
    assert counter.locked_at(NOW + timedelta(minutes=14))
    assert not counter.locked_at(NOW + timedelta(minutes=15))


def test_failures_older_than_the_window_are_forgotten() -> None:
    counter = Counter(2, NOW - timedelta(minutes=20), None)
    after = record_failure(counter, POLICY, NOW)
    assert not after.locked_now
    assert after.counter.failures == 1


def test_the_retry_sentence_tells_when_in_persian_and_english() -> None:
    sentence = retry_sentence(NOW + timedelta(minutes=15), NOW)
    assert "۱۴۰۴/۱۲/۲۹ ۱۲:۱۵:۰۰" in sentence  # Tehran time, the day before Nowruz
    assert "in 900 seconds" in sentence


def key(kid: str, not_before: datetime, retired_at: datetime | None = None) -> SigningKey:
    return SigningKey(kid, {}, {"kid": kid}, not_before, retired_at)


def test_a_new_key_is_published_before_it_signs_and_the_old_verifies_until_its_tokens_expire() -> (
    None
):
    plan = plan_rotation(NOW, timedelta(minutes=5), timedelta(minutes=5))
    old = key("old", NOW - timedelta(days=30), plan.old_retired_at)
    new = key("new", plan.new_not_before)
    assert signing_key([old, new], NOW).kid == "old"  # type: ignore[union-attr]
    assert signing_key([old, new], plan.new_not_before).kid == "new"  # type: ignore[union-attr]
    last_old_token_expires = plan.new_not_before + timedelta(minutes=5)
    assert old.verifies_at(last_old_token_expires)
    assert not old.verifies_at(plan.old_retired_at)


def test_rotation_is_due_when_the_newest_key_has_signed_its_lifetime() -> None:
    assert rotation_due([], NOW, timedelta(days=30))
    assert not rotation_due([key("a", NOW - timedelta(days=29))], NOW, timedelta(days=30))
    assert rotation_due([key("a", NOW - timedelta(days=30))], NOW, timedelta(days=30))


def test_scopes_granted_are_those_held_and_requested() -> None:
    held = frozenset({"catalog:write", "metrics:read"})
    assert granted_scopes(held, None) == held
    assert granted_scopes(held, "metrics:read") == frozenset({"metrics:read"})
    assert granted_scopes(held, "exchange:admin") is None


def test_agency_keys_of_the_three_algorithms_are_accepted_in_public_form() -> None:
    ec = ECKey.generate_key("P-256").as_dict(private=False)
    ed = OKPKey.generate_key("Ed25519").as_dict(private=False)
    rsa = RSAKey.generate_key(2048).as_dict(private=False)
    assert accept_public_jwk(ec, "k1")[0] == "ES256"
    assert accept_public_jwk(ed, "k2")[0] == "EdDSA"
    algorithm, published = accept_public_jwk(rsa, "k3")
    assert algorithm == "RS256"
    assert published["kid"] == "k3"
    assert "d" not in published


def test_a_private_key_is_refused_with_the_members_named() -> None:
    private = ECKey.generate_key("P-256").as_dict(private=True)
    with pytest.raises(InvalidInput) as refusal:
        accept_public_jwk(private, "k")
    assert refusal.value.code == "private_key_sent"
    assert "d" in refusal.value.reason


@pytest.mark.parametrize(
    "jwk",
    [{"kty": "EC", "crv": "P-256", "x": "bad"}, {"kty": "oct"}, {}, {"kty": "EC", "crv": "P-384"}],
)
def test_unusable_keys_are_refused(jwk: dict[str, str]) -> None:
    with pytest.raises(InvalidInput):
        accept_public_jwk(jwk, "k")


def test_production_refuses_the_development_secrets() -> None:
    data_key = new_key()
    with pytest.raises(ValueError, match="PSEUDONYM_KEY"):
        IdentitySettings(
            environment="production",
            database_url="postgresql://u:a-real-password@db/panjereh",
            data_key=data_key,
        )
    with pytest.raises(ValueError, match="PANJEREH_DATA_KEY"):
        IdentitySettings(
            environment="production",
            database_url="postgresql://u:a-real-password@db/panjereh",
            PANJEREH_IDENTITY_PSEUDONYM_KEY="p" * 40,
            PANJEREH_IDENTITY_OPERATOR_TOKEN="o" * 40,
        )
    accepted = IdentitySettings(
        environment="production",
        database_url="postgresql://u:a-real-password@db/panjereh",
        data_key=data_key,
        PANJEREH_IDENTITY_PSEUDONYM_KEY="p" * 40,
        PANJEREH_IDENTITY_OPERATOR_TOKEN="o" * 40,
        PANJEREH_IDENTITY_SMS_GATEWAY="off",
        PANJEREH_IDENTITY_SMS_GATEWAY_PUBLIC_KEY=new_key_pair()[1],
        PANJEREH_IDENTITY_OPERATOR_CHECK="http",
        PANJEREH_IDENTITY_OPERATOR_CHECK_URL="https://regulator.example/check",
    )
    assert accepted.pseudonym_key_bytes == b"p" * 40
