"""The public keys agencies' systems sign messages with: what is acceptable as one."""

from __future__ import annotations

from typing import Any, Literal

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey, import_key

from services.identity.domain.citizens import InvalidInput

Algorithm = Literal["ES256", "EdDSA", "RS256"]

# Members of a JWK that only a private key has (RFC 7518 §6, RFC 8037).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_PUBLIC_MEMBERS = {
    "EC": ("kty", "crv", "x", "y"),
    "OKP": ("kty", "crv", "x"),
    "RSA": ("kty", "n", "e"),
}
MIN_RSA_BITS = 2048


def accept_public_jwk(jwk: dict[str, Any], kid: str) -> tuple[Algorithm, dict[str, Any]]:
    """The algorithm of an agency's public key and its published form, or InvalidInput.

    Accepted: EC P-256 (ES256, preferred), OKP Ed25519 (EdDSA), RSA of 2048 bits or more
    (RS256). A key with any private member is refused outright: it must not travel.
    """
    if not isinstance(jwk, dict):
        raise InvalidInput("invalid_key", "the key must be a JWK object")
    private = sorted(_PRIVATE_MEMBERS & set(jwk))
    if private:
        raise InvalidInput(
            "private_key_sent", f"the key has private members ({', '.join(private)})"
        )
    try:
        key = import_key(jwk)
    except (JoseError, ValueError, TypeError, KeyError) as error:
        raise InvalidInput("invalid_key", f"not a usable JWK: {error}") from None
    algorithm: Algorithm
    if isinstance(key, ECKey) and jwk.get("crv") == "P-256":
        algorithm = "ES256"
    elif isinstance(key, OKPKey) and jwk.get("crv") == "Ed25519":
        algorithm = "EdDSA"
    elif isinstance(key, RSAKey):
        if key.raw_value.key_size < MIN_RSA_BITS:
            raise InvalidInput("invalid_key", f"RSA keys need at least {MIN_RSA_BITS} bits")
        algorithm = "RS256"
    else:
        raise InvalidInput("invalid_key", "use EC P-256 (ES256), Ed25519 (EdDSA) or RSA (RS256)")
    declared = jwk.get("alg")
    if declared is not None and declared != algorithm:
        raise InvalidInput("invalid_key", f"the key's alg {declared!r} does not fit the key")
    published = {name: jwk[name] for name in _PUBLIC_MEMBERS[str(jwk["kty"])]}
    published.update({"kid": kid, "alg": algorithm, "use": "sig"})
    return algorithm, published


def thumbprint(jwk: dict[str, Any]) -> str:
    """The RFC 7638 thumbprint of a public JWK: the default key id."""
    return str(import_key(jwk).thumbprint())
