"""The issuer's signer: the tokens joserfc would make, verified as services verify them."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, import_key

from services.identity.adapters.key_ring import CompactSigner
from services.identity.domain.tokens import citizen_claims, new_signing_key, published
from shared.auth import InvalidToken, IssuerKeys

NOW = datetime(2026, 3, 20, 8, 30, tzinfo=UTC)
ISSUER = "https://identity.example"


def _claims() -> dict[str, object]:
    return citizen_claims(
        issuer=ISSUER,
        citizen="citizen-1",
        level_of_assurance=2,
        channel="web",
        session="family-1",
        now=NOW,
        lifetime=timedelta(minutes=10),
    )


def test_a_token_is_joserfcs_compact_jws_but_for_the_signature() -> None:
    key = new_signing_key(NOW, NOW)
    claims = _claims()
    ours = CompactSigner.of(key).sign(claims)
    header = {"alg": "ES256", "kid": key.kid, "typ": "at+jwt"}
    theirs = jwt.encode(header, claims, import_key(key.private_jwk))
    assert ours.split(".")[:2] == theirs.split(".")[:2]
    # r and s, 32 bytes each, as RFC 7518 wants them (not DER).
    signature = ours.split(".")[2]
    assert len(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))) == 64
    decoded = jwt.decode(ours, ECKey.import_key(key.public_jwk), algorithms=["ES256"])
    assert decoded.header == {"typ": "at+jwt", "alg": "ES256", "kid": key.kid}
    assert decoded.claims == claims


def test_a_token_verifies_as_services_verify_it_and_a_changed_one_does_not() -> None:
    key = new_signing_key(NOW, NOW)
    verifier = IssuerKeys(None, issuer=ISSUER)
    verifier.apply(published(key, ISSUER))
    token = CompactSigner.of(key).sign(_claims())
    principal = verifier.verify(token, NOW.timestamp())
    assert principal.subject == "citizen-1"
    header, payload, _ = token.split(".")
    forged = CompactSigner.of(new_signing_key(NOW, NOW)).sign(_claims()).split(".")[2]
    with pytest.raises(InvalidToken):
        verifier.verify(f"{header}.{payload}.{forged}", NOW.timestamp())


def test_only_a_private_p256_key_makes_a_signer() -> None:
    key = new_signing_key(NOW, NOW)
    with pytest.raises(ValueError, match="not a private P-256 key"):
        CompactSigner.of(replace(key, private_jwk=key.public_jwk))
    other = ECKey.generate_key("P-384", private=True)
    with pytest.raises(ValueError, match="not a private P-256 key"):
        CompactSigner.of(replace(key, private_jwk=dict(other.as_dict(private=True))))
