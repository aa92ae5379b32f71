"""Citizens' use cases: register, ask for a code, sign in, read their sign-in history.

Each runs in one transaction with the events it causes. Where an attempt fails, the
failure (counters, history, events) is committed first and the refusal raised after, so
a refusal is always recorded.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.identity import storage
from services.identity.adapters.operator_check import OperatorCheckUnavailable
from services.identity.domain.citizens import (
    Calendar,
    InvalidInput,
    mask_mobile,
    normalise_mobile,
    normalise_national_id,
    parse_birth_date,
    pseudonym,
)
from services.identity.domain.codes import (
    CODE_DIGITS,
    Counter,
    LockScope,
    code_matches,
    hash_code,
    new_code,
    record_failure,
    retry_description,
    retry_sentence,
    sms_text,
)
from services.identity.handlers.context import SOURCE, Identity
from services.identity.handlers.tokens import TokenResponse, new_session
from shared.db import Connection
from shared.envelope import Envelope
from shared.events.identity import (
    AuthenticationFailed,
    CitizenAuthenticated,
    CitizenLockedOut,
    CitizenRegistered,
    FailureReason,
    SmsContent,
    SmsRequested,
)
from shared.http import ProblemError
from shared.outbox import enqueue
from shared.persian import to_ascii_digits
from shared.vocabulary import AuthenticationChannel, LevelOfAssurance

LEVEL_OF_ASSURANCE: LevelOfAssurance = (
    2  # a one-time code to a mobile the operator check proved is theirs
)


@dataclass(frozen=True)
class Registration:
    national_id: str
    mobile: str
    first_name: str
    last_name: str
    birth_date: str
    calendar: Calendar | None
    province: str


async def register(identity: Identity, form: Registration, now: datetime) -> str:
    """Register a citizen whose mobile the operator check says is theirs; their pseudonym."""
    national_id = normalise_national_id(form.national_id)
    mobile = normalise_mobile(form.mobile)
    born = parse_birth_date(form.birth_date, form.calendar, now.date())
    try:
        owned = await identity.operator_check.mobile_belongs_to(national_id, mobile)
    except OperatorCheckUnavailable as error:
        raise ProblemError(503, "operator_check_unavailable", str(error)) from None
    if not owned:
        raise ProblemError(
            422, "mobile_not_owned", "the operator check found another owner for this mobile"
        )
    citizen = pseudonym(national_id, identity.settings.pseudonym_key_bytes)
    async with identity.pool.acquire() as connection, connection.transaction():
        added = await storage.insert_citizen(
            connection,
            citizen=citizen,
            mobile=mobile,
            first_name=form.first_name.strip(),
            last_name=form.last_name.strip(),
            birth_date=born.gregorian,
            province=form.province,
            now=now,
        )
        if added:
            event = CitizenRegistered(
                citizen=citizen, province=form.province, birth_year=born.gregorian.year
            )
            await enqueue(connection, Envelope.wrap(event, source=SOURCE, subject=citizen))
    if not added:
        raise ProblemError(409, "already_registered", "this national ID is already registered")
    return citizen


@dataclass(frozen=True)
class CodeSent:
    expires_at: datetime
    sent_to: str


def _locked_problem(until: datetime, now: datetime) -> ProblemError:
    retry = retry_description(until, now)
    return ProblemError(
        429,
        "locked_out",
        retry_sentence(until, now),
        errors=[retry],
        headers={"retry-after": str(retry["retry_after_seconds"])},
    )


Counters = dict[tuple[LockScope, str], Counter]


def _counters(state: storage.AttemptState, client_address: str, now: datetime) -> Counters:
    """The counters a registered citizen's attempt is judged by: theirs and the address's."""
    fresh = Counter(0, now, None)
    return {
        ("citizen", state.record.citizen): state.citizen_counter or fresh,
        ("client_address", client_address): state.address_counter or fresh,
    }


async def _read(
    connection: Connection, citizen: str, client_address: str, now: datetime
) -> tuple[storage.AttemptState, Counters] | None:
    """A registered citizen's state and counters, by a plain read; None if not registered
    (an unregistered ID is always judged under the lock, where its failure is counted)."""
    state = await storage.attempt_state(connection, citizen, client_address, lock=False)
    return None if state is None else (state, _counters(state, client_address, now))


async def _judged(
    connection: Connection, citizen: str, client_address: str, now: datetime
) -> tuple[storage.AttemptState | None, Counters]:
    """The citizen's state (None if not registered), locked for the rest of the
    transaction, and the counters the attempt is judged by: the citizen's, if registered,
    and the address's.

    Many citizens share an address (an office, a pishkhan, a carrier's NAT): its counter
    is locked only when a failure is counted against it, so successes never queue on it.
    """
    state = await storage.attempt_state(connection, citizen, client_address, lock=True)
    if state is None:
        address = await storage.peek_counter(connection, "client_address", client_address)
        return None, {("client_address", client_address): address or Counter(0, now, None)}
    return state, _counters(state, client_address, now)


def _latest_lock(counters: Counters, now: datetime) -> datetime | None:
    locks = [c.locked_until for c in counters.values() if c.locked_at(now) and c.locked_until]
    return max(locks, default=None)


def _code_refusal(
    identity: Identity,
    state: storage.AttemptState,
    counters: Counters,
    now: datetime,
) -> ProblemError | None:
    """Why no code may be sent to this registered citizen now; None if one may."""
    locked_until = _latest_lock(counters, now)
    if locked_until is not None:
        return _locked_problem(locked_until, now)
    last = state.newest_challenge.created_at if state.newest_challenge else None
    wait = timedelta(seconds=identity.settings.code_resend_seconds)
    if last is not None and last + wait > now:
        retry = retry_description(last + wait, now)
        return ProblemError(
            429,
            "code_recently_sent",
            retry_sentence(last + wait, now),
            errors=[retry],
            headers={"retry-after": str(retry["retry_after_seconds"])},
        )
    return None


async def _send_code(
    identity: Identity, connection: Connection, state: storage.AttemptState, now: datetime
) -> CodeSent | None:
    """Open a new code and send it; None if another attempt changed the citizen's state
    since `state` was read (then nothing was written)."""
    settings = identity.settings
    challenge_id = uuid.uuid4()
    code = new_code()
    expires_at = now + timedelta(seconds=settings.code_seconds)
    message = SmsRequested.sealed_to(
        identity.sms_gateway_key,
        SmsContent(
            mobile=state.record.mobile, text=sms_text(code, max(1, settings.code_seconds // 60))
        ),
        message_id=uuid.uuid4(),
        purpose="one_time_code",
        expires_at=expires_at,
    )
    written = await enqueue(
        connection,
        Envelope.wrap(message, source=SOURCE, subject=str(message.message_id)),
        along=storage.opening_challenge(
            state,
            challenge_id=challenge_id,
            code_hash=hash_code(code, str(challenge_id), settings.pseudonym_key_bytes),
            now=now,
            expires_at=expires_at,
        ),
    )
    return CodeSent(expires_at, mask_mobile(state.record.mobile)) if written else None


async def request_code(
    identity: Identity, national_id_text: str, client_address: str, now: datetime
) -> CodeSent:
    """Send a sign-in code to the citizen's mobile (as `SmsRequested` on `identity.sms`,
    sealed to the SMS gateway).

    Most requests collide with no other attempt of the same citizen: they are judged on a
    plain read and written by one statement that checks the citizen's state is still the
    one judged. Any other (a refusal, or a collision) is judged again under the lock.
    """
    national_id = normalise_national_id(national_id_text)
    citizen = pseudonym(national_id, identity.settings.pseudonym_key_bytes)
    refusal: ProblemError | None = None
    sent: CodeSent | None = None
    async with identity.pool.acquire() as connection:
        read = await _read(connection, citizen, client_address, now)
        if read is not None and _code_refusal(identity, *read, now) is None:
            sent = await _send_code(identity, connection, read[0], now)
            if sent is not None:
                return sent
        async with connection.transaction():
            state, counters = await _judged(connection, citizen, client_address, now)
            locked_until = _latest_lock(counters, now)
            if state is not None:
                refusal = _code_refusal(identity, state, counters, now)
                if refusal is None:
                    sent = await _send_code(identity, connection, state, now)
                    assert sent is not None, "the citizen's lock keeps their state as read"
            elif locked_until is not None:
                refusal = _locked_problem(locked_until, now)
            else:
                # Asking about unregistered IDs is how IDs get enumerated: it counts as a
                # failure of the address.
                await _count_failures(
                    identity,
                    connection,
                    counters,
                    None,
                    client_address,
                    "web",
                    "unknown_citizen",
                    now,
                )
                refusal = ProblemError(404, "not_registered", "no citizen has this national ID")
    if refusal is not None:
        raise refusal
    assert sent is not None
    return sent


async def _count_failures(
    identity: Identity,
    connection: Connection,
    counters: Counters,
    citizen: str | None,
    client_address: str,
    channel: AuthenticationChannel,
    reason: FailureReason,
    now: datetime,
) -> datetime | None:
    """Count a failure against the citizen (if known) and the address.

    Returns the time until which sign-in is now locked for either, if it is.
    """
    locks: list[datetime] = []
    caused_lock = False
    for (scope, subject), judged in counters.items():
        if scope == "citizen" and citizen is None:
            continue
        counter = judged
        if scope == "client_address":
            # Locked now, so concurrent failures from one address are counted one by one.
            counter = await storage.lock_counter(connection, scope, subject, now)
            if counter.locked_at(now) and counter.locked_until is not None:
                locks.append(counter.locked_until)
                continue
        policy = identity.citizen_policy if scope == "citizen" else identity.address_policy
        after = record_failure(counter, policy, now)
        await storage.save_counter(connection, scope, subject, after.counter)
        if after.locked_now and after.counter.locked_until is not None:
            until = after.counter.locked_until
            locks.append(until)
            caused_lock = True
            lockout = CitizenLockedOut(
                citizen=citizen, until=until, failed_attempts=after.failures_counted, scope=scope
            )
            await enqueue(
                connection, Envelope.wrap(lockout, source=SOURCE, subject=citizen or subject)
            )
    failed = AuthenticationFailed(
        citizen=citizen, channel=channel, reason="too_many_attempts" if caused_lock else reason
    )
    await enqueue(
        connection, Envelope.wrap(failed, source=SOURCE, subject=citizen or client_address)
    )
    return max(locks, default=None)


def _typed_code(text: str) -> str:
    code = to_ascii_digits(text).strip()
    if len(code) != CODE_DIGITS or not (code.isascii() and code.isdigit()):
        raise InvalidInput("wrong_code", f"the code has {CODE_DIGITS} digits")
    return code


@dataclass(frozen=True)
class _Attempt:
    """One sign-in attempt, as the request gives it."""

    citizen: str
    code: str
    channel: AuthenticationChannel
    client_address: str
    user_agent: str | None
    now: datetime

    def history(self, outcome: str, reason: str | None) -> storage.SignInRecord:
        return storage.SignInRecord(
            self.citizen,
            self.now,
            self.client_address,
            self.channel,
            self.user_agent,
            outcome,
            reason,
        )


def _plainly_right(
    identity: Identity,
    attempt: _Attempt,
    state: storage.AttemptState,
    counters: Counters,
) -> bool:
    """Nothing stands in the way and nothing but the sign-in is to be written: no lock, the
    newest code open, unexpired and matching, no failures on the citizen's counter."""
    challenge = state.newest_challenge
    return (
        _latest_lock(counters, attempt.now) is None
        and challenge is not None
        and challenge.open
        and challenge.expires_at > attempt.now
        and not counters[("citizen", attempt.citizen)].failures
        and code_matches(
            attempt.code,
            str(challenge.id),
            identity.settings.pseudonym_key_bytes,
            challenge.code_hash,
        )
    )


async def _signed_in(
    identity: Identity, connection: Connection, attempt: _Attempt, state: storage.AttemptState
) -> TokenResponse | None:
    """Open the session with its tokens, close the code and record it all; None if another
    attempt changed the citizen's state since `state` was read (then nothing was written)."""
    assert state.newest_challenge is not None
    session, tokens = new_session(
        identity,
        citizen=attempt.citizen,
        channel=attempt.channel,
        level_of_assurance=LEVEL_OF_ASSURANCE,
        now=attempt.now,
    )
    authenticated = CitizenAuthenticated(
        citizen=attempt.citizen,
        channel=attempt.channel,
        level_of_assurance=LEVEL_OF_ASSURANCE,
        province=state.record.province,
        birth_year=state.record.birth_date.year,
    )
    written = await enqueue(
        connection,
        Envelope.wrap(authenticated, source=SOURCE, subject=attempt.citizen),
        along=storage.successful_sign_in(
            state,
            used_challenge=state.newest_challenge.id,
            session=session,
            record=attempt.history("succeeded", None),
        ),
    )
    return tokens if written else None


async def sign_in(
    identity: Identity,
    *,
    national_id_text: str,
    code_text: str,
    channel: AuthenticationChannel,
    client_address: str,
    user_agent: str | None,
    now: datetime,
) -> TokenResponse:
    """Sign a citizen in with their one-time code: tokens, or a refusal with the reason.

    A right code that nothing stands in the way of is judged on a plain read and written
    by one statement that checks the citizen's state is still the one judged. Every other
    attempt is judged under the citizen's lock, so concurrent attempts are judged one
    after the other and no more than the allowed number is ever counted as a guess.
    """
    national_id = normalise_national_id(national_id_text)
    attempt = _Attempt(
        citizen=pseudonym(national_id, identity.settings.pseudonym_key_bytes),
        code=_typed_code(code_text),
        channel=channel,
        client_address=client_address,
        user_agent=user_agent,
        now=now,
    )
    citizen = attempt.citizen
    refusal: ProblemError | None = None
    tokens: TokenResponse | None = None
    await identity.keys.ready(now)
    async with identity.pool.acquire() as connection:
        read = await _read(connection, citizen, client_address, now)
        if read is not None and _plainly_right(identity, attempt, *read):
            tokens = await _signed_in(identity, connection, attempt, read[0])
            if tokens is not None:
                return tokens
        async with connection.transaction():
            state, counters = await _judged(connection, citizen, client_address, now)
            refusal, tokens = await _judged_sign_in(identity, connection, attempt, state, counters)
    if refusal is not None:
        raise refusal
    assert tokens is not None
    return tokens


async def _judged_sign_in(
    identity: Identity,
    connection: Connection,
    attempt: _Attempt,
    state: storage.AttemptState | None,
    counters: Counters,
) -> tuple[ProblemError | None, TokenResponse | None]:
    """A sign-in judged under the citizen's lock: the refusal, or the tokens. A failure is
    written (counters, history, events) before the caller raises the refusal."""
    settings = identity.settings
    citizen, channel, now = attempt.citizen, attempt.channel, attempt.now
    record = state.record if state is not None else None
    known = citizen if record is not None else None
    locked_until = _latest_lock(counters, now)
    if locked_until is not None:
        failed = AuthenticationFailed(citizen=known, channel=channel, reason="locked_out")
        await enqueue(
            connection,
            Envelope.wrap(failed, source=SOURCE, subject=known or attempt.client_address),
        )
        if record is not None:
            await storage.record_sign_in(connection, attempt.history("locked_out", "locked_out"))
        return _locked_problem(locked_until, now), None
    reason: FailureReason | None
    challenge = state.newest_challenge if state is not None else None
    if state is None:
        reason = "unknown_citizen"
    elif challenge is None or not challenge.open:
        reason = "expired_code"
    elif challenge.expires_at <= now:
        await storage.close_challenge(connection, challenge.id, now, "expired")
        reason = "expired_code"
    elif code_matches(
        attempt.code, str(challenge.id), settings.pseudonym_key_bytes, challenge.code_hash
    ):
        reason = None  # the code is closed as used with the session's write
    else:
        reason = "wrong_code"
        await storage.count_attempt(connection, challenge.id)
        if challenge.attempts + 1 >= settings.code_attempts:
            await storage.close_challenge(connection, challenge.id, now, "guessed")
    if reason is None and state is not None:
        citizen_counter = counters[("citizen", citizen)]
        if citizen_counter.failures:
            # A success starts the citizen's window afresh.
            cleared = Counter(0, now, citizen_counter.locked_until)
            await storage.save_counter(connection, "citizen", citizen, cleared)
        tokens = await _signed_in(identity, connection, attempt, state)
        assert tokens is not None, "the citizen's lock keeps their state as read"
        return None, tokens
    assert reason is not None
    lock = await _count_failures(
        identity, connection, counters, known, attempt.client_address, channel, reason, now
    )
    if record is not None:
        outcome = "failed" if lock is None else "locked_out"
        await storage.record_sign_in(connection, attempt.history(outcome, reason))
    if lock is not None:
        return _locked_problem(lock, now), None
    if reason == "unknown_citizen":
        return ProblemError(404, "not_registered", "no citizen has this national ID"), None
    if reason == "expired_code":
        return ProblemError(401, "expired_code", "ask for a new code"), None
    return ProblemError(401, "wrong_code", "the code does not match"), None


async def sign_in_history(identity: Identity, citizen: str, limit: int) -> list[dict[str, Any]]:
    """The citizen's own sign-ins and attempts, newest first."""
    async with identity.pool.acquire() as connection:
        return await storage.sign_ins(connection, citizen, limit)
