"""Generated secrets of a platform home, kept in files only their owner can read.

Each store is one JSON object of name → secret in `<home>/secrets/<kind>.json` (mode
0600), made on first use. Secrets are random (32 bytes, URL-safe), generated here and
never logged; a caller asks for a name and gets the same secret every time.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


def new_secret() -> str:
    """A fresh random secret (256 bits), safe in URLs, properties files and JAAS strings."""
    return secrets.token_urlsafe(32)


class SecretStore:
    """Named secrets in one owner-only JSON file; safe across processes (file lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, str]]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = self.path.with_suffix(".lock")
        with lock.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                values = self._read()
                before = dict(values)
                yield values
                if values != before:
                    self._write(values)
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self) -> dict[str, str]:
        if not self.path.exists():
            return {}
        loaded = json.loads(self.path.read_text("utf-8"))
        return {str(key): str(value) for key, value in loaded.items()}

    def _write(self, values: dict[str, str]) -> None:
        staging = self.path.with_suffix(".tmp")
        descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(values, handle, indent=1, sort_keys=True)
        staging.replace(self.path)

    def get(self, name: str) -> str:
        """The secret called `name`, generated and kept the first time it is asked for."""
        with self._locked() as values:
            if name not in values:
                values[name] = new_secret()
            return values[name]

    def peek(self, name: str) -> str | None:
        """The secret called `name`, or None; never creates one."""
        with self._locked() as values:
            return values.get(name)

    def put(self, name: str, value: str) -> None:
        with self._locked() as values:
            values[name] = value

    def remove(self, name: str) -> None:
        with self._locked() as values:
            values.pop(name, None)
