"""The local platform's database passwords, generated once and kept in its home.

    <home>/secrets/postgres.json   {"postgres": "...", "services": {"identity": "...", ...}}

The directory is 0700 and the file 0600, owned by whoever runs the platform. Passwords
are URL-safe (they go into DSNs as they are) and never printed or logged; a password
missing from an older file is generated and added.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shared.db import SERVICES

FILE_NAME = "postgres.json"


@dataclass(frozen=True)
class DatabasePasswords:
    """The cluster superuser's password and each service role's."""

    admin: str
    services: Mapping[str, str]

    def __repr__(self) -> str:
        return "DatabasePasswords(<hidden>)"


def _new_password() -> str:
    return secrets.token_urlsafe(32)


def secrets_dir(home: Path) -> Path:
    return home / "secrets"


def load_or_create(home: Path) -> DatabasePasswords:
    """The home's passwords; whatever is missing is generated and written (mode 0600).

    Callers that may generate (starting the cluster) hold the platform's lock; the file
    is written whole to a temporary name and renamed, so a reader never sees half of it.
    """
    folder = secrets_dir(home)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)
    path = folder / FILE_NAME
    stored: dict[str, object] = {}
    if path.exists():
        stored = json.loads(path.read_text("utf-8"))
    admin = stored.get("postgres")
    services = stored.get("services")
    if not isinstance(services, dict):
        services = {}
    changed = not isinstance(admin, str) or any(s not in services for s in SERVICES)
    if not isinstance(admin, str):
        admin = _new_password()
    for service in SERVICES:
        if not isinstance(services.get(service), str):
            services[service] = _new_password()
    if changed:
        _write(path, {"postgres": admin, "services": services})
    path.chmod(0o600)
    return DatabasePasswords(admin=admin, services=dict(services))


def _write(path: Path, content: dict[str, object]) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".postgres-", suffix=".json")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:  # mkstemp makes it 0600
            json.dump(content, handle, indent=2)
            handle.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
