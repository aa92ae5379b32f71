"""Identity's storage kept in dictionaries: the ports of `use_cases/ports.py`, for unit
tests of the use cases. One `FakeIdentity` plays both the storage outside a transaction
and the unit of work; a transaction that raises leaves the state as it was."""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from opentelemetry import context as otel_context

from services.identity.domain.attempts import (
    AttemptState,
    Challenge,
    CitizenRecord,
    NewChallenge,
    NewCitizen,
    SignInRecord,
    citizen_on_network,
)
from services.identity.domain.codes import Counter, LockScope
from services.identity.domain.tokens import (
    AgencyClient,
    ClientRegistration,
    NewSession,
    RefreshToken,
    SigningKey,
)
from shared.auth import InvalidToken, Principal
from shared.envelope import Envelope
from shared.events.identity import AgencyKeyPublished, CitizenAuthenticated, SmsRequested


@dataclass
class StoredChallenge:
    citizen: str
    code_hash: bytes
    created_at: datetime
    expires_at: datetime
    attempts: int = 0
    closed_at: datetime | None = None
    closed_because: str | None = None


@dataclass
class Family:
    citizen: str
    channel: str
    level_of_assurance: int
    created_at: datetime
    revoked_at: datetime | None = None
    revoked_because: str | None = None


@dataclass
class StoredToken:
    family_id: uuid.UUID
    issued_at: datetime
    expires_at: datetime
    rotated_at: datetime | None = None


@dataclass
class State:
    citizens: dict[str, NewCitizen] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    counters: dict[tuple[LockScope, str], Counter] = field(default_factory=dict)
    challenges: dict[uuid.UUID, StoredChallenge] = field(default_factory=dict)
    sign_ins: list[SignInRecord] = field(default_factory=list)
    families: dict[uuid.UUID, Family] = field(default_factory=dict)
    tokens: dict[bytes, StoredToken] = field(default_factory=dict)
    agencies: dict[str, dict[str, Any]] = field(default_factory=dict)
    clients: dict[str, dict[str, Any]] = field(default_factory=dict)
    agency_keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    issuer_keys: dict[str, SigningKey] = field(default_factory=dict)
    published: list[Envelope[Any]] = field(default_factory=list)


class FakeIdentity:
    """`Statements` and `IdentityWork` at once, on a `State`."""

    def __init__(self) -> None:
        self.state = State()
        self.transactions = 0
        # Runs just before an optimistic write: a test moves the citizen on there to
        # stand for another attempt that came between the read and the write.
        self.between_read_and_write: Callable[[], None] | None = None
        self.in_transaction = False

    @property
    def published(self) -> list[Envelope[Any]]:
        return self.state.published

    def payloads(self, kind: type[Any] | None = None) -> list[Any]:
        return [e.payload for e in self.published if kind is None or isinstance(e.payload, kind)]

    # Statements -----------------------------------------------------------------------

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeIdentity]:
        self.transactions += 1
        before = copy.deepcopy(self.state)
        self.in_transaction = True
        try:
            yield self
        except BaseException:
            self.state = before
            raise
        finally:
            self.in_transaction = False

    async def release(self) -> None:
        pass

    async def attempt_state(self, citizen: str, network: str) -> AttemptState | None:
        found = self.state.citizens.get(citizen)
        if found is None:
            return None
        mine = [
            (c.created_at, i, c) for i, c in self.state.challenges.items() if c.citizen == citizen
        ]
        newest = None
        if mine:
            _, challenge_id, stored = max(mine, key=lambda item: item[0])
            newest = Challenge(
                id=challenge_id,
                code_hash=stored.code_hash,
                created_at=stored.created_at,
                expires_at=stored.expires_at,
                attempts=stored.attempts,
                open=stored.closed_at is None,
            )
        return AttemptState(
            record=CitizenRecord(found.citizen, found.mobile, found.birth_date, found.province),
            version=self.state.versions[citizen],
            citizen_counter=self.state.counters.get(
                ("citizen", citizen_on_network(citizen, network))
            ),
            address_counter=self.state.counters.get(("client_address", network)),
            newest_challenge=newest,
        )

    async def sign_ins(self, citizen: str, limit: int) -> list[dict[str, Any]]:
        mine = [r for r in reversed(self.state.sign_ins) if r.citizen == citizen]
        return [
            {
                "at": r.at,
                "client_address": r.client_address,
                "channel": r.channel,
                "user_agent": r.user_agent,
                "outcome": r.outcome,
                "reason": r.reason,
            }
            for r in sorted(mine, key=lambda r: r.at, reverse=True)[:limit]
        ]

    async def family_revoked(self, family_id: uuid.UUID) -> bool:
        found = self.state.families.get(family_id)
        return found is not None and found.revoked_at is not None

    async def client(self, client_id: str) -> AgencyClient | None:
        found = self.state.clients.get(client_id)
        if found is None:
            return None
        return AgencyClient(
            client_id=client_id,
            agency=found["agency"],
            secret_hash=found["secret_hash"],
            scopes=frozenset(found["scopes"]),
            revoked_at=found["revoked_at"],
            agency_active=bool(self.state.agencies[found["agency"]]["active"]),
        )

    async def update_client_secret(self, client_id: str, secret_hash: str) -> None:
        self.state.clients[client_id]["secret_hash"] = secret_hash

    async def clients_of(self, agency: str) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in c.items() if k != "secret_hash"}
            for c in self.state.clients.values()
            if c["agency"] == agency
        ]

    async def agency_keys(self, agency: str) -> list[dict[str, Any]]:
        return [dict(k) for k in self.state.agency_keys.values() if k["agency"] == agency]

    # Optimistic writes ----------------------------------------------------------------

    def _moved_on(self, state: AttemptState) -> bool:
        if self.between_read_and_write is not None:
            hook, self.between_read_and_write = self.between_read_and_write, None
            hook()
        citizen = state.record.citizen
        if self.state.versions.get(citizen) != state.version:
            return False
        self.state.versions[citizen] += 1
        return True

    async def try_open_challenge(
        self, state: AttemptState, challenge: NewChallenge, message: Envelope[SmsRequested]
    ) -> bool:
        if not self._moved_on(state):
            return False
        for stored in self.state.challenges.values():
            if stored.citizen == state.record.citizen and stored.closed_at is None:
                stored.closed_at, stored.closed_because = challenge.created_at, "superseded"
        self.state.challenges[challenge.id] = StoredChallenge(
            state.record.citizen, challenge.code_hash, challenge.created_at, challenge.expires_at
        )
        self.state.published.append(message)
        return True

    async def try_sign_in(
        self,
        state: AttemptState,
        used_challenge: uuid.UUID,
        session: NewSession,
        record: SignInRecord,
        event: Envelope[CitizenAuthenticated],
    ) -> bool:
        if not self._moved_on(state):
            return False
        used = self.state.challenges[used_challenge]
        used.closed_at, used.closed_because = session.created_at, "used"
        self.state.sign_ins.append(record)
        self.state.families[session.family_id] = Family(
            session.citizen, session.channel, session.level_of_assurance, session.created_at
        )
        self.state.tokens[session.first_token_hash] = StoredToken(
            session.family_id, session.created_at, session.expires_at
        )
        self.state.published.append(event)
        return True

    # The unit of work -----------------------------------------------------------------

    async def publish(
        self,
        envelopes: Sequence[Envelope[Any]],
        parents: Sequence[otel_context.Context | None] | None = None,
    ) -> None:
        assert self.in_transaction, "events are published inside a transaction"
        self.state.published.extend(envelopes)

    async def insert_citizen(self, citizen: NewCitizen) -> bool:
        if citizen.citizen in self.state.citizens:
            return False
        self.state.citizens[citizen.citizen] = citizen
        self.state.versions[citizen.citizen] = 0
        return True

    async def lock_attempt_state(self, citizen: str, network: str) -> AttemptState | None:
        if citizen not in self.state.citizens:
            return None
        self.state.versions[citizen] += 1
        return await self.attempt_state(citizen, network)

    async def peek_counter(self, scope: LockScope, subject: str) -> Counter | None:
        return self.state.counters.get((scope, subject))

    async def lock_counter(self, scope: LockScope, subject: str, now: datetime) -> Counter:
        return self.state.counters.setdefault((scope, subject), Counter(0, now, None))

    async def save_counter(self, scope: LockScope, subject: str, counter: Counter) -> None:
        self.state.counters[(scope, subject)] = counter

    async def count_attempt(self, challenge_id: uuid.UUID) -> None:
        self.state.challenges[challenge_id].attempts += 1

    async def close_challenge(self, challenge_id: uuid.UUID, now: datetime, because: str) -> None:
        stored = self.state.challenges[challenge_id]
        stored.closed_at, stored.closed_because = now, because

    async def record_sign_in(self, record: SignInRecord) -> None:
        self.state.sign_ins.append(record)

    async def lock_refresh_token(self, token_hash: bytes) -> RefreshToken | None:
        token = self.state.tokens.get(token_hash)
        if token is None:
            return None
        family = self.state.families[token.family_id]
        return RefreshToken(
            token_hash=token_hash,
            family_id=token.family_id,
            expires_at=token.expires_at,
            rotated_at=token.rotated_at,
            citizen=family.citizen,
            channel=family.channel,
            level_of_assurance=family.level_of_assurance,
            family_revoked_at=family.revoked_at,
            session_started_at=family.created_at,
        )

    async def rotate_refresh_token(self, token_hash: bytes, now: datetime) -> None:
        self.state.tokens[token_hash].rotated_at = now

    async def insert_refresh_token(
        self, token_hash: bytes, family_id: uuid.UUID, now: datetime, expires_at: datetime
    ) -> None:
        self.state.tokens[token_hash] = StoredToken(family_id, now, expires_at)

    async def revoke_family(self, family_id: uuid.UUID, now: datetime, because: str) -> bool:
        family = self.state.families.get(family_id)
        if family is None or family.revoked_at is not None:
            return False
        family.revoked_at, family.revoked_because = now, because
        return True

    async def upsert_agency(self, record: dict[str, Any]) -> None:
        found = self.state.agencies.get(record["code"])
        if found is None or found["revision"] < record["revision"]:
            self.state.agencies[record["code"]] = dict(record)

    async def agency_active(self, code: str) -> bool:
        found = self.state.agencies.get(code)
        return found is not None and bool(found["active"])

    async def insert_client(self, client: ClientRegistration) -> None:
        self.state.clients[client.client_id] = {**asdict(client), "revoked_at": None}

    async def revoke_client(self, agency: str, client_id: str, now: datetime) -> bool:
        found = self.state.clients.get(client_id)
        if found is None or found["agency"] != agency:
            return False
        found["revoked_at"] = found["revoked_at"] or now
        return True

    async def insert_agency_key(self, key: AgencyKeyPublished, registered_by: str) -> bool:
        if key.kid in self.state.agency_keys:
            return False
        self.state.agency_keys[key.kid] = {
            **key.model_dump(),
            "registered_by": registered_by,
            "revoked_at": None,
            "revoked_because": None,
        }
        return True

    async def revoke_agency_key(
        self, agency: str, kid: str, now: datetime, because: str
    ) -> bool | None:
        found = self.state.agency_keys.get(kid)
        if found is None or found["agency"] != agency:
            return None
        if found["revoked_at"] is not None:
            return False
        found["revoked_at"], found["revoked_because"] = now, because
        return True

    async def lock_issuer_keys(self) -> None:
        assert self.in_transaction, "the issuer keys' lock is a transaction's"

    async def issuer_keys(self) -> list[SigningKey]:
        return sorted(self.state.issuer_keys.values(), key=lambda k: k.not_before)

    async def insert_issuer_key(self, key: SigningKey) -> None:
        self.state.issuer_keys[key.kid] = key

    async def retire_issuer_key(self, kid: str, retired_at: datetime) -> None:
        self.state.issuer_keys[kid] = replace(self.state.issuer_keys[kid], retired_at=retired_at)

    async def seal_plain_issuer_keys(self) -> int:
        return 0


class FakeSigner:
    """Signs by writing the claims down; verifies what it signed."""

    def __init__(self) -> None:
        self.signed: dict[str, dict[str, Any]] = {}
        self.ready_calls = 0

    async def ready(self, now: datetime) -> None:
        self.ready_calls += 1

    def sign(self, claims: dict[str, Any], now: datetime) -> str:
        token = f"access-{len(self.signed)}"
        self.signed[token] = claims
        return token

    async def verify(self, token: str, now: datetime) -> Principal:
        claims = self.signed.get(token)
        if claims is None:
            raise InvalidToken("not one of ours")
        return Principal(
            subject=claims["sub"],
            agency=claims.get("agency"),
            scopes=frozenset(str(claims.get("scope", "")).split()),
            level_of_assurance=claims.get("loa"),
            token_id=claims["jti"],
            claims=claims,
        )


class FakeHasher:
    """Hashes by writing the secret down under the parameters' `version`; a hash made
    under another version needs hashing again."""

    def __init__(self, version: int = 1) -> None:
        self.version = version

    def hash(self, secret: str) -> str:
        return f"v{self.version}:{secret}"

    def verify(self, stored: str, secret: str) -> bool:
        return stored.partition(":")[2] == secret

    def check_needs_rehash(self, stored: str) -> bool:
        return not stored.startswith(f"v{self.version}:")


class FakeOperatorCheck:
    def __init__(self, owned: bool = True, error: Exception | None = None) -> None:
        self.owned, self.error = owned, error

    async def mobile_belongs_to(self, national_id: str, mobile: str) -> bool:
        if self.error is not None:
            raise self.error
        return self.owned
