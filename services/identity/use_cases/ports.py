"""What identity's use cases need from the world: storage, the key ring, and the adapters.

Two kinds of storage work. `IdentityWork` is a unit of work: one transaction, whose
events are published through the outbox in it. `Statements` is a connection outside any
transaction, where each call is one atomic statement: a plain read, or a write judged on
a plain read whose guard is checked in that same statement (so the common case costs no
transaction at all); its `transaction()` opens the unit of work, on the same connection,
for everything else. `storage.py` implements both; `tests/unit/identity/fakes.py` too.
"""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, Protocol

from services.identity.adapters.operator_check import OperatorCheck
from services.identity.domain.attempts import (
    AttemptState,
    NewChallenge,
    NewCitizen,
    SignInRecord,
)
from services.identity.domain.codes import AttemptPolicy, Counter, LockScope
from services.identity.domain.tokens import (
    AgencyClient,
    ClientRegistration,
    NewSession,
    RefreshToken,
    SigningKey,
)
from services.identity.settings import IdentitySettings
from services.identity.use_cases.limits import AbuseLimits
from shared.auth import Principal
from shared.envelope import Envelope
from shared.events.identity import AgencyKeyPublished, CitizenAuthenticated, SmsRequested
from shared.sealed_box import SealingKey
from shared.unit_of_work import Publisher

SOURCE = "identity"


class OptimisticWrites(Protocol):
    """A citizen's writes judged on an `AttemptState`: each one statement with its event,
    made only if the citizen's attempts are still at `state.version`. False (and nothing
    written) if another attempt moved them on meanwhile."""

    async def try_open_challenge(
        self, state: AttemptState, challenge: NewChallenge, message: Envelope[SmsRequested]
    ) -> bool:
        """Open a new code (closing any still open) with the message that sends it."""
        ...

    async def try_sign_in(
        self,
        state: AttemptState,
        used_challenge: uuid.UUID,
        session: NewSession,
        record: SignInRecord,
        event: Envelope[CitizenAuthenticated],
    ) -> bool:
        """Close the used code, open the session with its first token, add the history."""
        ...


class IdentityWork(OptimisticWrites, Publisher, Protocol):
    """One transaction of identity's storage."""

    # Citizens and their attempts.
    async def insert_citizen(self, citizen: NewCitizen) -> bool:
        """False if the citizen is registered already."""
        ...

    async def lock_attempt_state(self, citizen: str, network: str) -> AttemptState | None:
        """As `Statements.attempt_state`, with the citizen's row locked to the end of the
        transaction and their version moved on; None if not registered."""
        ...

    async def peek_counter(self, scope: LockScope, subject: str) -> Counter | None: ...

    async def lock_counter(self, scope: LockScope, subject: str, now: datetime) -> Counter:
        """The subject's counter, created if missing, locked to the end of the transaction."""
        ...

    async def save_counter(self, scope: LockScope, subject: str, counter: Counter) -> None: ...

    async def count_attempt(self, challenge_id: uuid.UUID) -> None: ...

    async def close_challenge(
        self, challenge_id: uuid.UUID, now: datetime, because: str
    ) -> None: ...

    async def record_sign_in(self, record: SignInRecord) -> None: ...

    # Sessions.
    async def lock_refresh_token(self, token_hash: bytes) -> RefreshToken | None:
        """The token and its session, locked (one rotation at a time per session)."""
        ...

    async def rotate_refresh_token(self, token_hash: bytes, now: datetime) -> None: ...

    async def insert_refresh_token(
        self, token_hash: bytes, family_id: uuid.UUID, now: datetime, expires_at: datetime
    ) -> None: ...

    async def revoke_family(self, family_id: uuid.UUID, now: datetime, because: str) -> bool:
        """False if the session was revoked already."""
        ...

    # Agencies: the projection of the catalog's register, clients, keys.
    async def upsert_agency(self, record: dict[str, Any]) -> None:
        """Keep the newest revision; an older or equal one changes nothing."""
        ...

    async def agency_active(self, code: str) -> bool:
        """False if the agency is unknown or inactive."""
        ...

    async def insert_client(self, client: ClientRegistration) -> None: ...

    async def revoke_client(self, agency: str, client_id: str, now: datetime) -> bool:
        """False if the agency has no such client."""
        ...

    async def insert_agency_key(self, key: AgencyKeyPublished, registered_by: str) -> bool:
        """False if the kid is taken."""
        ...

    async def revoke_agency_key(
        self, agency: str, kid: str, now: datetime, because: str
    ) -> bool | None:
        """True if revoked now, False if it was already, None if the agency has no such key."""
        ...

    # The issuer's keys.
    async def lock_issuer_keys(self) -> None:
        """One instance at a time changes the issuer's keys, to the end of the transaction."""
        ...

    async def issuer_keys(self) -> list[SigningKey]: ...

    async def insert_issuer_key(self, key: SigningKey) -> None: ...

    async def retire_issuer_key(self, kid: str, retired_at: datetime) -> None: ...

    async def seal_plain_issuer_keys(self) -> int:
        """Seal private keys older releases stored in the clear; how many."""
        ...


class Statements(OptimisticWrites, Protocol):
    """Identity's storage outside a transaction: each call one atomic statement."""

    def transaction(self) -> AbstractAsyncContextManager[IdentityWork]:
        """A unit of work on the same connection: committed on leaving, rolled back on error."""
        ...

    async def release(self) -> None:
        """Hold no connection during slow work that needs none (hashing); the next call
        takes one again."""
        ...

    async def attempt_state(self, citizen: str, network: str) -> AttemptState | None:
        """The citizen, their counter on this client network, the network's counter and
        their newest code, by a plain read; None if the citizen is not registered."""
        ...

    async def sign_ins(self, citizen: str, limit: int) -> list[dict[str, Any]]: ...

    async def family_revoked(self, family_id: uuid.UUID) -> bool: ...

    async def client(self, client_id: str) -> AgencyClient | None: ...

    async def update_client_secret(self, client_id: str, secret_hash: str) -> None: ...

    async def clients_of(self, agency: str) -> list[dict[str, Any]]: ...

    async def agency_keys(self, agency: str) -> list[dict[str, Any]]: ...


class Signer(Protocol):
    """The issuer's key ring, as the use cases see it."""

    async def ready(self, now: datetime) -> None:
        """Make `sign` work without I/O; call it before opening a transaction that signs."""
        ...

    def sign(self, claims: dict[str, Any], now: datetime) -> str: ...

    async def verify(self, token: str, now: datetime) -> Principal:
        """The principal of one of our tokens; raises `shared.auth.InvalidToken`."""
        ...


class SecretHasher(Protocol):
    """Hashes agency systems' client secrets (argon2 in production: slow on purpose)."""

    def hash(self, secret: str) -> str: ...

    def verify(self, stored: str, secret: str) -> bool:
        """True, or raises (argon2's VerificationError or InvalidHashError)."""
        ...

    def check_needs_rehash(self, stored: str) -> bool: ...


@dataclass(frozen=True)
class Dependencies:
    """Everything but storage a use case may need; made once when the service starts."""

    settings: IdentitySettings
    signer: Signer
    operator_check: OperatorCheck
    hasher: SecretHasher
    # Text messages are sealed to it: identity itself cannot open them again.
    sms_gateway_key: SealingKey = field(repr=False)

    @cached_property
    def limits(self) -> AbuseLimits:
        """The abuse limits and their counters, one set per service (made on first use)."""
        return AbuseLimits(self.settings)

    @property
    def pseudonym_key(self) -> bytes:
        return self.settings.pseudonym_key_bytes

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
