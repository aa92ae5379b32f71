"""Messages sealed to one recipient's public key: only the holder of its private key opens them.

The construction is HPKE (RFC 9180) in base mode, single-shot, as the `cryptography`
package implements it: DHKEM(X25519, HKDF-SHA256) with a fresh ephemeral key per message,
HKDF-SHA256, AES-256-GCM. Nothing here composes primitives by hand, and any RFC 9180
library (a real SMS gateway's, in whatever language) opens what this module seals.

Contract:

- `SealingKey.seal(plain, binding=...)` never blocks on I/O and never fails for a valid
  key; each call uses a new ephemeral key, so sealing the same text twice gives unrelated
  ciphertexts. The sender cannot open what it sealed.
- `OpeningKey.open(box, binding=...)` returns exactly the sealed bytes, or raises
  `OpenError`: sealed to another key (named as such, from the box's key id), another
  binding, another suite, or altered in any byte.
- `binding` names what the box belongs to (e.g. an event's message id). It enters the HPKE
  key schedule as `info`, after a label of this module, so a box copied into another message
  does not open there; it is authenticated, not secret.

Keys travel as base64 of their 32 raw bytes (`new_key_pair()` makes a pair); the key id is
the first 16 hex digits of the public key's SHA-256.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import BaseModel, ConfigDict, Field

SuiteName = Literal["HPKE-Base-X25519-SHA256-AES256GCM"]
SUITE: SuiteName = "HPKE-Base-X25519-SHA256-AES256GCM"
KEY_BYTES = 32
_SUITE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)
# Separates these boxes from any other use of HPKE with the same key.
_LABEL = b"panjereh sealed box v1\x00"


class OpenError(ValueError):
    """A box that does not open: another key, another binding, or altered."""


class SealedBox(BaseModel):
    """A sealed message as it travels: which suite, to which key, and the ciphertext."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    suite: SuiteName = Field(
        description="RFC 9180 base mode: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM."
    )
    recipient: str = Field(
        pattern=r"^[0-9a-f]{16}$",
        description="The recipient key's id: the first 16 hex digits of its SHA-256.",
    )
    ciphertext: str = Field(
        min_length=1,
        description="base64 of the encapsulated ephemeral key (32 bytes), then the "
        "AES-256-GCM ciphertext with its tag.",
    )


def _decode(encoded: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"the {what} must be base64 (of {KEY_BYTES} bytes)") from error
    if len(raw) != KEY_BYTES:
        raise ValueError(f"the {what} must be {KEY_BYTES} bytes, base64-encoded")
    return raw


def _raw_public(key: X25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _key_id(key: X25519PublicKey) -> str:
    return hashlib.sha256(_raw_public(key)).hexdigest()[:16]


def _info(binding: str) -> bytes:
    return _LABEL + binding.encode()


def new_key_pair() -> tuple[str, str]:
    """A fresh (private, public) key pair, each base64 of its 32 raw bytes."""
    private = X25519PrivateKey.generate()
    return (
        base64.b64encode(private.private_bytes_raw()).decode(),
        base64.b64encode(_raw_public(private.public_key())).decode(),
    )


class SealingKey:
    """A recipient's public key: seals messages only that recipient can open."""

    def __init__(self, encoded: str) -> None:
        """From base64 of the 32 raw bytes; ValueError if it is anything else."""
        self._key = X25519PublicKey.from_public_bytes(_decode(encoded, "public key"))
        self.key_id = _key_id(self._key)

    def __repr__(self) -> str:
        return f"SealingKey(key_id={self.key_id})"

    def seal(self, plain: bytes, *, binding: str) -> SealedBox:
        sealed = _SUITE.encrypt(plain, self._key, info=_info(binding))
        return SealedBox(
            suite=SUITE, recipient=self.key_id, ciphertext=base64.b64encode(sealed).decode()
        )


class OpeningKey:
    """A recipient's private key: opens what was sealed to its public key."""

    def __init__(self, encoded: str) -> None:
        """From base64 of the 32 raw bytes; ValueError if it is anything else."""
        self._key = X25519PrivateKey.from_private_bytes(_decode(encoded, "private key"))
        self.public = base64.b64encode(_raw_public(self._key.public_key())).decode()
        self.key_id = _key_id(self._key.public_key())

    def __repr__(self) -> str:
        return f"OpeningKey(key_id={self.key_id})"

    def open(self, box: SealedBox, *, binding: str) -> bytes:
        if box.suite != SUITE:
            raise OpenError(f"unknown suite {box.suite!r}")
        if box.recipient != self.key_id:
            raise OpenError(f"sealed to key {box.recipient}, not to this one ({self.key_id})")
        try:
            sealed = base64.b64decode(box.ciphertext, validate=True)
            return _SUITE.decrypt(sealed, self._key, info=_info(binding))
        except (InvalidTag, binascii.Error, ValueError) as error:
            raise OpenError(f"the box for {binding} does not open") from error
