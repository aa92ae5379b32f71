"""What every command handler works with: settings, the database, the key ring, the ports."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher

from services.identity.adapters.operator_check import DevelopmentOperatorCheck, OperatorCheck
from services.identity.domain.codes import AttemptPolicy
from services.identity.handlers.issuer import KeyRing
from services.identity.settings import IdentitySettings
from shared.db import Pool
from shared.sealed_box import SealingKey

SOURCE = "identity"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Identity:
    """The service's dependencies, wired once by `bootstrap` and shared by routes and tasks."""

    settings: IdentitySettings
    operator_check: OperatorCheck = field(default_factory=DevelopmentOperatorCheck)
    hasher: PasswordHasher = field(default_factory=PasswordHasher)
    _pool: Pool | None = None
    _keys: KeyRing | None = None
    # Text messages are sealed to it: identity itself cannot open them again.
    sms_gateway_key: SealingKey = field(init=False)

    def __post_init__(self) -> None:
        self.sms_gateway_key = self.settings.sms_gateway_key

    def bind(self, pool: Pool) -> None:
        """Attach the running service's pool (the runtime creates it at start-up)."""
        if self._pool is not pool:
            self._pool = pool
            self._keys = KeyRing(self.settings, pool)

    @property
    def pool(self) -> Pool:
        if self._pool is None:
            raise RuntimeError("identity is not bound to a running service yet")
        return self._pool

    @property
    def keys(self) -> KeyRing:
        if self._keys is None:
            raise RuntimeError("identity is not bound to a running service yet")
        return self._keys

    @property
    def access_lifetime(self) -> timedelta:
        return timedelta(seconds=self.settings.access_token_seconds)

    @property
    def refresh_lifetime(self) -> timedelta:
        return timedelta(days=self.settings.refresh_token_days)

    @property
    def citizen_policy(self) -> AttemptPolicy:
        return AttemptPolicy(
            max_failures=self.settings.citizen_max_failures,
            window=timedelta(seconds=self.settings.failure_window_seconds),
            lockout=timedelta(seconds=self.settings.lockout_seconds),
        )

    @property
    def address_policy(self) -> AttemptPolicy:
        return AttemptPolicy(
            max_failures=self.settings.address_max_failures,
            window=timedelta(seconds=self.settings.failure_window_seconds),
            lockout=timedelta(seconds=self.settings.lockout_seconds),
        )
