"""Secrets sealed at rest: AES-256-GCM under the platform's data key (PANJEREH_DATA_KEY).

A sealed value is a JSON object that can live in the same jsonb column as the plain value
it replaces:

    {"sealed": "A256GCM", "key": "<key id>", "nonce": "<b64>", "ciphertext": "<b64>"}

`binding` is the associated data: it names the row (e.g. `identity.issuer_keys:<kid>`),
so a sealed value copied into another row does not open. The key id is the first bytes of
the key's SHA-256, so a value sealed under another key is named as such, not as tampered.
Values stored in the clear by older releases open as they are (`is_sealed` tells them
apart, so their owners can seal them).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ALGORITHM = "A256GCM"
KEY_BYTES = 32
_NONCE_BYTES = 12


class SealError(ValueError):
    """A sealed value that cannot be opened: another key, another row, or altered."""


def parse_key(encoded: str) -> bytes:
    """The 32 bytes of a base64-encoded data key; ValueError if it is anything else."""
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except ValueError as error:
        raise ValueError("the data key must be base64 (of 32 random bytes)") from error
    if len(key) != KEY_BYTES:
        raise ValueError(f"the data key must be {KEY_BYTES} bytes, base64-encoded")
    return key


def new_key() -> str:
    """A fresh data key, base64-encoded (what PANJEREH_DATA_KEY holds)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


def is_sealed(stored: Mapping[str, Any]) -> bool:
    return "sealed" in stored


class Sealer:
    """Seals and opens JSON objects under one data key. Thread- and task-safe."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"the data key must be {KEY_BYTES} bytes")
        self._aead = AESGCM(key)
        self.key_id = hashlib.sha256(key).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"Sealer(key_id={self.key_id})"

    def seal(self, value: Mapping[str, Any], *, binding: str) -> dict[str, str]:
        """`value` encrypted and authenticated together with `binding`; a fresh nonce each."""
        nonce = os.urandom(_NONCE_BYTES)
        plain = json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
        ciphertext = self._aead.encrypt(nonce, plain, binding.encode())
        return {
            "sealed": ALGORITHM,
            "key": self.key_id,
            "nonce": base64.b64encode(nonce).decode(),
            "ciphertext": base64.b64encode(ciphertext).decode(),
        }

    def open(self, stored: Mapping[str, Any], *, binding: str) -> dict[str, Any]:
        """The value `seal` sealed with the same binding; a plain (older) value as it is.

        Raises SealError if it was sealed under another key or binding, or altered.
        """
        if not is_sealed(stored):
            return dict(stored)
        if stored["sealed"] != ALGORITHM:
            raise SealError(f"unknown sealing {stored['sealed']!r}")
        if stored.get("key") != self.key_id:
            raise SealError(
                f"sealed under data key {stored.get('key')}, not this one ({self.key_id})"
            )
        try:
            plain = self._aead.decrypt(
                base64.b64decode(stored["nonce"]),
                base64.b64decode(stored["ciphertext"]),
                binding.encode(),
            )
        except (InvalidTag, ValueError, KeyError) as error:
            raise SealError(f"sealed value for {binding} does not open") from error
        opened: dict[str, Any] = json.loads(plain)
        return opened
