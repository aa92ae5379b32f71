"""Citizens' use cases: register, ask for a code, sign in, read their sign-in history.

Where an attempt fails, the failure (counters, history, events) is committed first and
the refusal raised after, so a refusal is always recorded.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.identity.adapters.operator_check import OperatorCheckUnavailable
from services.identity.domain.attempts import (
    FAILURE_OF,
    Attempt,
    AttemptState,
    Challenge,
    Counters,
    MustWait,
    NewChallenge,
    NewCitizen,
    citizen_counter,
    code_refusal,
    judge_code,
    latest_lock,
)
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
    code_matches,
    hash_code,
    new_code,
    record_failure,
    sms_text,
)
from services.identity.domain.networks import client_network
from services.identity.use_cases.attempts import optimistically
from services.identity.use_cases.ports import (
    SOURCE,
    Dependencies,
    IdentityWork,
    OptimisticWrites,
    Statements,
)
from services.identity.use_cases.tokens import TokenResponse, new_session
from shared.envelope import Envelope
from shared.errors import (
    DomainError,
    Invalid,
    NotAuthenticated,
    NotFound,
    Unavailable,
)
from shared.events.identity import (
    AuthenticationFailed,
    CitizenAuthenticated,
    CitizenLockedOut,
    CitizenRegistered,
    FailureReason,
    SmsContent,
    SmsRequested,
)
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


async def register(
    statements: Statements,
    deps: Dependencies,
    form: Registration,
    client_address: str,
    now: datetime,
) -> str:
    """Register a citizen whose mobile the operator check says is theirs; their pseudonym.

    A national ID registered already is answered exactly as a new one (its pseudonym is
    the same either way): a refusal would tell anyone holding a national ID and its
    owner's mobile whether that person uses the platform. Registering again changes
    nothing; codes still go to the mobile registered first.
    """
    national_id = normalise_national_id(form.national_id)
    mobile = normalise_mobile(form.mobile)
    born = parse_birth_date(form.birth_date, form.calendar, now.date())
    # Charged before the operator check: every registration costs a call to the regulator.
    deps.limits.registration(national_id, mobile, client_address, now)
    try:
        owned = await deps.operator_check.mobile_belongs_to(national_id, mobile)
    except OperatorCheckUnavailable as error:
        raise Unavailable("operator_check_unavailable", str(error)) from None
    if not owned:
        raise Invalid("mobile_not_owned", "the operator check found another owner for this mobile")
    citizen = pseudonym(national_id, deps.pseudonym_key)
    async with statements.transaction() as work:
        added = await work.insert_citizen(
            NewCitizen(
                citizen=citizen,
                mobile=mobile,
                first_name=form.first_name.strip(),
                last_name=form.last_name.strip(),
                birth_date=born.gregorian,
                province=form.province,
                registered_at=now,
            )
        )
        if added:
            event = CitizenRegistered(
                citizen=citizen, province=form.province, birth_year=born.gregorian.year
            )
            await work.publish([Envelope.wrap(event, source=SOURCE, subject=citizen)])
    return citizen


@dataclass(frozen=True)
class CodeSent:
    expires_at: datetime
    sent_to: str


async def request_code(
    statements: Statements,
    deps: Dependencies,
    national_id_text: str,
    client_address: str,
    now: datetime,
) -> CodeSent:
    """Send a sign-in code to the citizen's mobile (as `SmsRequested` on `identity.sms`,
    sealed to the SMS gateway)."""
    citizen = pseudonym(normalise_national_id(national_id_text), deps.pseudonym_key)
    resend_after = timedelta(seconds=deps.settings.code_resend_seconds)
    deps.limits.code_request(client_address, now)
    charged = False

    def charge(state: AttemptState) -> None:
        # Once per request, though a collision may bring it to the send twice.
        nonlocal charged
        if not charged:
            deps.limits.code_send(citizen, state.record.mobile, client_address, now)
            charged = True

    async def plain(
        writes: OptimisticWrites, state: AttemptState, judged: Counters
    ) -> CodeSent | None:
        if code_refusal(state, judged, resend_after, now) is not None:
            return None
        charge(state)
        return await _send_code(writes, deps, state, now)

    async def locked(
        work: IdentityWork, state: AttemptState | None, judged: Counters
    ) -> CodeSent | DomainError:
        if state is not None:
            refusal = code_refusal(state, judged, resend_after, now)
            if refusal is not None:
                return refusal
            charge(state)
            sent = await _send_code(work, deps, state, now)
            assert sent is not None, "the citizen's lock keeps their state as read"
            return sent
        locked_until = latest_lock(judged, now)
        if locked_until is not None:
            return MustWait("locked_out", locked_until, now)
        # Asking about unregistered IDs is how IDs get enumerated: it counts as a failure
        # of the address.
        await _count_failures(
            work, deps, judged, None, client_address, "web", "unknown_citizen", now
        )
        return NotFound("not_registered", "no citizen has this national ID")

    return await optimistically(
        statements,
        citizen,
        client_network(client_address),
        now,
        count_network=not deps.limits.unlimited(client_address),
        plain=plain,
        locked=locked,
    )


async def _send_code(
    writes: OptimisticWrites, deps: Dependencies, state: AttemptState, now: datetime
) -> CodeSent | None:
    """Open a new code and send it; None if another attempt changed the citizen's state
    since `state` was read (then nothing was written)."""
    settings = deps.settings
    challenge_id = uuid.uuid4()
    code = new_code()
    expires_at = now + timedelta(seconds=settings.code_seconds)
    message = SmsRequested.sealed_to(
        deps.sms_gateway_key,
        SmsContent(
            mobile=state.record.mobile, text=sms_text(code, max(1, settings.code_seconds // 60))
        ),
        message_id=uuid.uuid4(),
        purpose="one_time_code",
        expires_at=expires_at,
    )
    written = await writes.try_open_challenge(
        state,
        NewChallenge(
            id=challenge_id,
            code_hash=hash_code(code, str(challenge_id), deps.pseudonym_key),
            created_at=now,
            expires_at=expires_at,
        ),
        Envelope.wrap(message, source=SOURCE, subject=str(message.message_id)),
    )
    return CodeSent(expires_at, mask_mobile(state.record.mobile)) if written else None


async def _count_failures(
    work: IdentityWork,
    deps: Dependencies,
    judged: Counters,
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
    for (scope, subject), counter in judged.items():
        if scope == "citizen" and citizen is None:
            continue
        if scope == "client_address":
            # Locked now, so concurrent failures from one address are counted one by one.
            counter = await work.lock_counter(scope, subject, now)
            if counter.locked_at(now) and counter.locked_until is not None:
                locks.append(counter.locked_until)
                continue
        policy = deps.citizen_policy if scope == "citizen" else deps.address_policy
        after = record_failure(counter, policy, now)
        await work.save_counter(scope, subject, after.counter)
        if after.locked_now and after.counter.locked_until is not None:
            until = after.counter.locked_until
            locks.append(until)
            caused_lock = True
            lockout = CitizenLockedOut(
                citizen=citizen, until=until, failed_attempts=after.failures_counted, scope=scope
            )
            await work.publish([Envelope.wrap(lockout, source=SOURCE, subject=citizen or subject)])
    failed = AuthenticationFailed(
        citizen=citizen, channel=channel, reason="too_many_attempts" if caused_lock else reason
    )
    await work.publish([Envelope.wrap(failed, source=SOURCE, subject=citizen or client_address)])
    return max(locks, default=None)


def _failures_to_clear(judged: Counters) -> bool:
    own = citizen_counter(judged)
    return own is not None and own[1].failures > 0


def _typed_code(text: str) -> str:
    code = to_ascii_digits(text).strip()
    if len(code) != CODE_DIGITS or not (code.isascii() and code.isdigit()):
        raise InvalidInput("wrong_code", f"the code has {CODE_DIGITS} digits")
    return code


async def sign_in(
    statements: Statements,
    deps: Dependencies,
    *,
    national_id_text: str,
    code_text: str,
    channel: AuthenticationChannel,
    client_address: str,
    user_agent: str | None,
    now: datetime,
) -> TokenResponse:
    """Sign a citizen in with their one-time code: tokens, or a refusal with the reason.

    A right code that nothing stands in the way of is written optimistically; every other
    attempt is judged under the citizen's lock, so no more than the allowed number of
    guesses is ever counted.
    """
    if channel == "agency_system":
        raise Invalid("invalid_request", "citizens sign in on web, app or pishkhan")
    attempt = Attempt(
        citizen=pseudonym(normalise_national_id(national_id_text), deps.pseudonym_key),
        code=_typed_code(code_text),
        channel=channel,
        client_address=client_address,
        user_agent=user_agent,
        now=now,
    )
    allowed = deps.settings.code_attempts

    def matches(challenge: Challenge) -> bool:
        return code_matches(
            attempt.code, str(challenge.id), deps.pseudonym_key, challenge.code_hash
        )

    async def plain(
        writes: OptimisticWrites, state: AttemptState, judged: Counters
    ) -> TokenResponse | None:
        # Only a right code with no lock and no failures to clear writes nothing else.
        if (
            latest_lock(judged, now) is not None
            or judge_code(state.newest_challenge, matches, allowed, now) != "matches"
            or _failures_to_clear(judged)
        ):
            return None
        return await _signed_in(writes, deps, attempt, state)

    async def locked(
        work: IdentityWork, state: AttemptState | None, judged: Counters
    ) -> TokenResponse | DomainError:
        return await _judged_sign_in(work, deps, attempt, state, judged)

    # Signing happens inside the transaction: the keys must not need another connection.
    await deps.signer.ready(now)
    deps.limits.sign_in(attempt.citizen, client_address, now)
    return await optimistically(
        statements,
        attempt.citizen,
        client_network(client_address),
        now,
        count_network=not deps.limits.unlimited(client_address),
        plain=plain,
        locked=locked,
    )


async def _signed_in(
    writes: OptimisticWrites, deps: Dependencies, attempt: Attempt, state: AttemptState
) -> TokenResponse | None:
    """Open the session with its tokens, close the code and record it all; None if another
    attempt changed the citizen's state since `state` was read (then nothing was written)."""
    assert state.newest_challenge is not None
    session, tokens = new_session(
        deps,
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
    written = await writes.try_sign_in(
        state,
        state.newest_challenge.id,
        session,
        attempt.history("succeeded", None),
        Envelope.wrap(authenticated, source=SOURCE, subject=attempt.citizen),
    )
    return tokens if written else None


async def _judged_sign_in(
    work: IdentityWork,
    deps: Dependencies,
    attempt: Attempt,
    state: AttemptState | None,
    judged: Counters,
) -> TokenResponse | DomainError:
    """A sign-in judged under the citizen's lock: the tokens, or the refusal, whose failure
    is written (counters, history, events) here."""
    citizen, channel, now = attempt.citizen, attempt.channel, attempt.now
    known = citizen if state is not None else None
    locked_until = latest_lock(judged, now)
    if locked_until is not None:
        failed = AuthenticationFailed(citizen=known, channel=channel, reason="locked_out")
        subject = known or attempt.client_address
        await work.publish([Envelope.wrap(failed, source=SOURCE, subject=subject)])
        if state is not None:
            await work.record_sign_in(attempt.history("locked_out", "locked_out"))
        return MustWait("locked_out", locked_until, now)
    reason: FailureReason = "unknown_citizen"
    if state is not None:
        challenge = state.newest_challenge
        verdict = judge_code(
            challenge,
            lambda c: code_matches(attempt.code, str(c.id), deps.pseudonym_key, c.code_hash),
            deps.settings.code_attempts,
            now,
        )
        if verdict == "matches":
            own = citizen_counter(judged)
            if own is not None and own[1].failures:
                # A success starts the citizen's window on this network afresh.
                subject, counter = own
                await work.save_counter("citizen", subject, Counter(0, now, counter.locked_until))
            tokens = await _signed_in(work, deps, attempt, state)
            assert tokens is not None, "the citizen's lock keeps their state as read"
            return tokens
        assert challenge is not None or verdict == "no_open_code"
        if verdict == "expired" and challenge is not None:
            await work.close_challenge(challenge.id, now, "expired")
        elif verdict in ("wrong", "wrong_and_spent") and challenge is not None:
            await work.count_attempt(challenge.id)
            if verdict == "wrong_and_spent":
                await work.close_challenge(challenge.id, now, "guessed")
        reason = FAILURE_OF[verdict]
    lock = await _count_failures(
        work, deps, judged, known, attempt.client_address, channel, reason, now
    )
    if state is not None:
        outcome = "failed" if lock is None else "locked_out"
        await work.record_sign_in(attempt.history(outcome, reason))
    if lock is not None:
        return MustWait("locked_out", lock, now)
    if reason == "unknown_citizen":
        return NotFound("not_registered", "no citizen has this national ID")
    if reason == "expired_code":
        return NotAuthenticated("expired_code", "ask for a new code")
    return NotAuthenticated("wrong_code", "the code does not match")


async def sign_in_history(statements: Statements, citizen: str, limit: int) -> list[dict[str, Any]]:
    """The citizen's own sign-ins and attempts, newest first."""
    return await statements.sign_ins(citizen, limit)
