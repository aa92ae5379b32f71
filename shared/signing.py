"""What agencies and the exchange sign, and how: the exchange's signature contract.

Every signed exchange event carries `signature`, a JWS (RFC 7515) in compact form with a
detached payload (Appendix F): `BASE64URL(header)..BASE64URL(signature)`. The protected
header names the algorithm (ES256, EdDSA or RS256) and the key (`kid`). The signed
payload is the canonical JSON (RFC 8785, JCS) of the event's other fields, exactly as
they travel (`model_dump(mode="json")` without `signature`), so anyone holding the event
and the public key can check it without trusting the bytes it arrived in.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import rfc8785
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey, import_key
from pydantic import BaseModel

ALGORITHMS = ("ES256", "EdDSA", "RS256")

SigningKey = ECKey | OKPKey | RSAKey


class SignatureInvalid(Exception):
    """The signature is malformed, made with another key, or does not cover the content."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def canonical(document: Any) -> bytes:
    """RFC 8785 canonical JSON of a JSON-compatible value."""
    return rfc8785.dumps(document)


def signed_content(event: BaseModel | dict[str, Any]) -> bytes:
    """The bytes a signature over `event` covers: its fields but `signature`, canonical."""
    fields = event.model_dump(mode="json") if isinstance(event, BaseModel) else dict(event)
    fields.pop("signature", None)
    return canonical(fields)


def algorithm_of(key: Key) -> str:
    """The JWS algorithm a key signs with under this contract."""
    if isinstance(key, ECKey):
        return "ES256"
    if isinstance(key, OKPKey):
        return "EdDSA"
    if isinstance(key, RSAKey):
        return "RS256"
    raise ValueError(f"unsupported key type {type(key).__name__}")


def sign(content: bytes, private_key: Key, kid: str) -> str:
    """A detached compact JWS over `content`, naming `kid` in its protected header."""
    header = {"alg": algorithm_of(private_key), "kid": kid}
    token = jws.serialize_compact(header, content, private_key, algorithms=ALGORITHMS)
    protected, _, signature = token.split(".")
    return f"{protected}..{signature}"


def sign_event(event: BaseModel | dict[str, Any], private_key: Key, kid: str) -> str:
    """The signature of an event (over its fields but `signature`)."""
    return sign(signed_content(event), private_key, kid)


def key_id_of(signature: str) -> str:
    """The `kid` a signature's protected header names, read before verifying; or invalid."""
    parts = signature.split(".")
    if len(parts) != 3 or parts[1] != "":
        raise SignatureInvalid("not a compact JWS with a detached payload")
    try:
        header = jws.extract_compact(f"{parts[0]}.e30.{parts[2]}".encode()).headers()
    except (JoseError, ValueError) as error:
        raise SignatureInvalid(f"unreadable signature header: {error}") from None
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise SignatureInvalid("the signature names no key (kid)")
    return kid


@functools.lru_cache(maxsize=1024)
def _public_key(jwk_json: bytes) -> Key:
    """An imported public key, kept: importing costs more than verifying."""
    return import_key(json.loads(jwk_json))


def verify(signature: str, content: bytes, public_jwk: dict[str, Any], algorithm: str) -> None:
    """Check that `signature` covers `content` under this public key; SignatureInvalid if not."""
    if algorithm not in ALGORITHMS:
        raise SignatureInvalid(f"algorithm {algorithm} is not accepted")
    parts = signature.split(".")
    if len(parts) != 3 or parts[1] != "":
        raise SignatureInvalid("not a compact JWS with a detached payload")
    try:
        key = _public_key(canonical(public_jwk))
        jws.deserialize_compact(signature, key, algorithms=[algorithm], payload=content)
    except (JoseError, ValueError, TypeError) as error:
        raise SignatureInvalid(f"the signature does not verify: {error}") from None


def verify_event(
    event: BaseModel | dict[str, Any], public_jwk: dict[str, Any], algorithm: str
) -> None:
    """Check an event's own `signature` field against its content."""
    fields = event.model_dump(mode="json") if isinstance(event, BaseModel) else dict(event)
    signature = fields.get("signature")
    if not isinstance(signature, str):
        raise SignatureInvalid("the event carries no signature")
    verify(signature, signed_content(fields), public_jwk, algorithm)


def generate_key() -> ECKey:
    """A new P-256 private key for ES256."""
    return ECKey.generate_key("P-256", private=True)


def public_jwk(key: Key) -> dict[str, Any]:
    """The public half of a key as a JWK (no private members)."""
    document: dict[str, Any] = dict(key.as_dict(private=False))
    return document
