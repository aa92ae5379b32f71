"""A citizen's attempts: asking for a code and signing in with it, judged on their state.

Pure: the state is read by storage, the decisions here say what may happen, and the use
cases write what was decided.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from services.identity.domain.codes import Counter, LockScope, retry_description, retry_sentence
from shared.errors import TooManyAttempts
from shared.events.identity import FailureReason
from shared.vocabulary import AuthenticationChannel


@dataclass(frozen=True)
class CitizenRecord:
    citizen: str
    mobile: str
    birth_date: date
    province: str


@dataclass(frozen=True)
class NewCitizen:
    """A citizen about to be registered."""

    citizen: str
    mobile: str
    first_name: str
    last_name: str
    birth_date: date
    province: str
    registered_at: datetime


@dataclass(frozen=True)
class Challenge:
    """A one-time code sent to a citizen, as stored (the code itself only as a hash)."""

    id: uuid.UUID
    code_hash: bytes
    created_at: datetime
    expires_at: datetime
    attempts: int
    open: bool


@dataclass(frozen=True)
class NewChallenge:
    """A code about to be opened; any code still open for the citizen is superseded."""

    id: uuid.UUID
    code_hash: bytes
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class AttemptState:
    """What judging a citizen's code request or sign-in needs, read in one round trip.

    `version` moves on with every write to the citizen's attempts: a write judged on this
    state is made only if it is still this version.
    """

    record: CitizenRecord
    version: int
    citizen_counter: Counter | None
    address_counter: Counter | None
    newest_challenge: Challenge | None


Counters = dict[tuple[LockScope, str], Counter]


def citizen_on_network(citizen: str, network: str) -> str:
    """The subject of a citizen's failure counter: the citizen on one client network.

    A citizen is locked out only on the network the failures came from, so whoever fails
    on purpose elsewhere cannot lock the citizen out of their own phone or pishkhan.
    Guessing across many networks stays bounded by the code itself (a few guesses each)
    and by how many codes a national ID may be sent an hour. `attempt_state` in the
    migrations builds the same subject.
    """
    return f"{citizen} {network}"


def counters(
    state: AttemptState | None,
    network: str,
    now: datetime,
    address: Counter | None = None,
    *,
    count_network: bool = True,
) -> Counters:
    """The counters an attempt is judged by: the citizen's on this network and the
    network's, fresh ones where none is stored; for an unregistered citizen, the network's
    alone (`address`, as read apart). An unlimited network has no counter of its own."""
    fresh = Counter(0, now, None)
    judged: Counters = {}
    if state is not None:
        judged[("citizen", citizen_on_network(state.record.citizen, network))] = (
            state.citizen_counter or fresh
        )
    if count_network:
        network_counter = state.address_counter if state is not None else address
        judged[("client_address", network)] = network_counter or fresh
    return judged


def citizen_counter(judged: Counters) -> tuple[str, Counter] | None:
    """The citizen's own counter among those an attempt is judged by, with its subject."""
    for (scope, subject), counter in judged.items():
        if scope == "citizen":
            return subject, counter
    return None


def latest_lock(judged: Counters, now: datetime) -> datetime | None:
    """Until when the attempt is locked out by any of its counters; None if it is not."""
    locks = [c.locked_until for c in judged.values() if c.locked_at(now) and c.locked_until]
    return max(locks, default=None)


class MustWait(TooManyAttempts):
    """Refused until `until`: the problem says when, in words and in `errors`."""

    def __init__(
        self, code: str, until: datetime, now: datetime, *, limit: str | None = None
    ) -> None:
        self.retry: dict[str, Any] = retry_description(until, now)
        if limit is not None:
            self.retry["limit"] = limit  # which limit refused, for the client to read
        super().__init__(
            code,
            retry_sentence(until, now),
            errors=[self.retry],
            headers={"retry-after": str(self.retry["retry_after_seconds"])},
        )


def code_refusal(
    state: AttemptState, judged: Counters, resend_after: timedelta, now: datetime
) -> MustWait | None:
    """Why no code may be sent to this registered citizen now; None if one may."""
    locked_until = latest_lock(judged, now)
    if locked_until is not None:
        return MustWait("locked_out", locked_until, now)
    last = state.newest_challenge.created_at if state.newest_challenge else None
    if last is not None and last + resend_after > now:
        return MustWait("code_recently_sent", last + resend_after, now)
    return None


CodeVerdict = Literal["matches", "expired", "no_open_code", "wrong", "wrong_and_spent"]


def judge_code(
    challenge: Challenge | None,
    matches: Callable[[Challenge], bool],
    allowed_attempts: int,
    now: datetime,
) -> CodeVerdict:
    """What a typed code is, against the citizen's newest code (`matches`: whether the
    typed code is the one this challenge's hash was made of)."""
    if challenge is None or not challenge.open:
        return "no_open_code"
    if challenge.expires_at <= now:
        return "expired"
    if matches(challenge):
        return "matches"
    return "wrong_and_spent" if challenge.attempts + 1 >= allowed_attempts else "wrong"


FAILURE_OF: dict[CodeVerdict, FailureReason] = {
    "no_open_code": "expired_code",
    "expired": "expired_code",
    "wrong": "wrong_code",
    "wrong_and_spent": "wrong_code",
}


@dataclass(frozen=True)
class SignInRecord:
    """One line of a citizen's sign-in history."""

    citizen: str
    at: datetime
    client_address: str
    channel: str
    user_agent: str | None
    outcome: str
    reason: str | None


@dataclass(frozen=True)
class Attempt:
    """One sign-in attempt, as the request gives it."""

    citizen: str
    code: str
    channel: AuthenticationChannel
    client_address: str
    user_agent: str | None
    now: datetime

    def history(self, outcome: str, reason: str | None) -> SignInRecord:
        return SignInRecord(
            self.citizen,
            self.now,
            self.client_address,
            self.channel,
            self.user_agent,
            outcome,
            reason,
        )
