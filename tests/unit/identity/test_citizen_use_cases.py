"""Citizens' use cases on a fake unit of work: registration, codes, sign-in, history."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from services.identity.adapters.operator_check import OperatorCheckUnavailable
from services.identity.domain.attempts import MustWait, citizen_on_network
from services.identity.domain.citizens import InvalidInput
from services.identity.domain.codes import Counter
from services.identity.domain.tokens import hash_secret
from services.identity.use_cases import citizens
from services.identity.use_cases.ports import Dependencies
from services.identity.use_cases.tokens import TokenResponse
from shared.errors import Invalid, NotAuthenticated, NotFound, Unavailable
from shared.events.identity import (
    AuthenticationFailed,
    CitizenAuthenticated,
    CitizenLockedOut,
    CitizenRegistered,
    SmsRequested,
)
from tests.unit.identity.conftest import (
    ADDRESS,
    NETWORK,
    NOW,
    citizen_of,
    codes_sent,
    national_id,
    registered,
)
from tests.unit.identity.fakes import FakeIdentity, FakeOperatorCheck, FakeSigner


async def ask_code(
    storage: FakeIdentity, deps: Dependencies, *, at: timedelta = timedelta(), national: str = ""
) -> citizens.CodeSent:
    return await citizens.request_code(storage, deps, national or national_id(), ADDRESS, NOW + at)


async def sign_in(
    storage: FakeIdentity,
    deps: Dependencies,
    code: str,
    *,
    at: timedelta = timedelta(),
    national: str = "",
) -> TokenResponse:
    return await citizens.sign_in(
        storage,
        deps,
        national_id_text=national or national_id(),
        code_text=code,
        channel="web",
        client_address=ADDRESS,
        user_agent="test",
        now=NOW + at,
    )


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def registered_with_code(storage: FakeIdentity, deps: Dependencies) -> tuple[str, str]:
    """A registered citizen who has asked for a code: their pseudonym and the code sent."""
    citizen = await registered(storage, deps)
    await ask_code(storage, deps)
    [code] = codes_sent(storage)
    return citizen, code


async def registered_after_a_wrong_code(
    storage: FakeIdentity, deps: Dependencies
) -> tuple[str, str]:
    """A citizen with a code who has already failed once with a wrong one."""
    citizen, code = await registered_with_code(storage, deps)
    with pytest.raises(NotAuthenticated):
        await sign_in(storage, deps, wrong(code))
    return citizen, code


def lock_out(storage: FakeIdentity, citizen: str, until: datetime) -> None:
    storage.state.counters[("citizen", citizen_on_network(citizen, NETWORK))] = Counter(
        0, until, until
    )


def collide_between_read_and_write(storage: FakeIdentity, citizen: str) -> None:
    """Another attempt of the same citizen lands between the use case's read and its write."""

    def another_attempt() -> None:
        storage.state.versions[citizen] += 1

    storage.between_read_and_write = another_attempt


# Registration -----------------------------------------------------------------------


async def test_a_citizen_is_registered_under_their_pseudonym_and_announced(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    citizen = await registered(storage, deps)
    assert citizen == citizen_of(deps)
    stored = storage.state.citizens[citizen]
    assert (stored.mobile, stored.first_name, stored.birth_date.year) == (
        "+989121234567",
        "مریم",
        1986,
    )
    [event] = storage.payloads()
    assert isinstance(event, CitizenRegistered)
    assert (event.citizen, event.province, event.birth_year) == (citizen, "IR-23", 1986)


async def test_registering_a_registered_national_id_again_answers_as_the_first_time(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    """Nobody learns from registration whether a national ID is registered already."""
    first = await registered(storage, deps)
    again = await registered(storage, deps)
    assert again == first
    assert len(storage.published) == 1  # announced once


async def test_a_mobile_the_operator_check_gives_to_another_is_refused(
    storage: FakeIdentity, deps: Dependencies, operator_check: FakeOperatorCheck
) -> None:
    operator_check.owned = False
    with pytest.raises(Invalid) as refusal:
        await registered(storage, deps)
    assert (refusal.value.code, refusal.value.status) == ("mobile_not_owned", 422)
    assert storage.state.citizens == {}


async def test_registration_is_unavailable_while_the_operator_check_is(
    storage: FakeIdentity, deps: Dependencies, operator_check: FakeOperatorCheck
) -> None:
    operator_check.error = OperatorCheckUnavailable("the regulator is down")
    with pytest.raises(Unavailable) as refusal:
        await registered(storage, deps)
    assert (refusal.value.code, refusal.value.status) == ("operator_check_unavailable", 503)


async def test_a_national_id_with_a_wrong_check_digit_is_invalid_input(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    valid = national_id()
    with pytest.raises(InvalidInput) as refusal:
        await registered(storage, deps, valid[:-1] + str((int(valid[-1]) + 1) % 10))
    assert (refusal.value.code, refusal.value.status) == ("invalid_national_id", 422)


# Codes ------------------------------------------------------------------------------


async def test_a_code_is_sent_sealed_to_the_registered_mobile_without_a_transaction(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    citizen = await registered(storage, deps)
    transactions = storage.transactions
    sent = await ask_code(storage, deps)
    assert storage.transactions == transactions, "the common case needs no transaction"
    assert sent.sent_to == "+98912***4567"
    assert sent.expires_at == NOW + timedelta(seconds=deps.settings.code_seconds)
    [code] = codes_sent(storage)
    [challenge] = storage.state.challenges.values()
    assert challenge.citizen == citizen
    assert challenge.closed_at is None
    assert len(code) == 6


async def test_a_new_code_within_the_resend_wait_is_refused_with_when_to_retry(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    await registered(storage, deps)
    await ask_code(storage, deps)
    with pytest.raises(MustWait) as refusal:
        await ask_code(storage, deps, at=timedelta(seconds=20))
    assert (refusal.value.code, refusal.value.status) == ("code_recently_sent", 429)
    assert refusal.value.headers == {"retry-after": "40"}
    assert refusal.value.retry["retry_after_seconds"] == 40
    assert len(storage.payloads(SmsRequested)) == 1


async def test_a_new_code_supersedes_the_open_one(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    await registered(storage, deps)
    await ask_code(storage, deps)
    await ask_code(storage, deps, at=timedelta(seconds=61))
    first, second = sorted(storage.state.challenges.values(), key=lambda c: c.created_at)
    assert first.closed_because == "superseded"
    assert second.closed_at is None


async def test_a_code_for_an_unregistered_id_is_not_found_and_counts_against_the_address(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    with pytest.raises(NotFound) as refusal:
        await ask_code(storage, deps)
    assert refusal.value.code == "not_registered"
    assert storage.state.counters[("client_address", NETWORK)].failures == 1
    [failed] = storage.payloads(AuthenticationFailed)
    assert (failed.citizen, failed.reason) == (None, "unknown_citizen")


async def test_an_address_that_asked_for_too_many_unknown_ids_is_locked_out(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    for _ in range(deps.settings.address_max_failures):
        with pytest.raises((NotFound, MustWait)):
            await ask_code(storage, deps)
    [lockout] = storage.payloads(CitizenLockedOut)
    assert (lockout.scope, lockout.citizen) == ("client_address", None)
    with pytest.raises(MustWait) as refusal:
        await ask_code(storage, deps)
    assert refusal.value.code == "locked_out"


async def test_a_code_request_that_collides_with_another_attempt_is_decided_under_the_lock(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    citizen = await registered(storage, deps)
    transactions = storage.transactions
    collide_between_read_and_write(storage, citizen)
    await ask_code(storage, deps)
    assert storage.transactions == transactions + 1
    assert len(storage.payloads(SmsRequested)) == 1
    assert len(storage.state.challenges) == 1


async def test_a_locked_out_citizen_gets_no_code(storage: FakeIdentity, deps: Dependencies) -> None:
    citizen = await registered(storage, deps)
    lock_out(storage, citizen, until=NOW + timedelta(minutes=10))
    with pytest.raises(MustWait) as refusal:
        await ask_code(storage, deps)
    assert refusal.value.code == "locked_out"
    assert refusal.value.headers == {"retry-after": "600"}
    assert storage.payloads(SmsRequested) == []


# Sign-in ----------------------------------------------------------------------------


async def test_the_right_code_signs_in_on_the_optimistic_path(
    storage: FakeIdentity, deps: Dependencies, signer: FakeSigner
) -> None:
    citizen, code = await registered_with_code(storage, deps)
    transactions = storage.transactions
    tokens = await sign_in(storage, deps, code, at=timedelta(seconds=30))
    assert storage.transactions == transactions, "the common case needs no transaction"
    claims = signer.signed[tokens.access_token]
    assert (claims["sub"], claims["loa"], claims["channel"]) == (citizen, 2, "web")
    assert tokens.refresh_token is not None
    stored = storage.state.tokens[hash_secret(tokens.refresh_token)]
    assert str(stored.family_id) == claims["sid"]
    [challenge] = storage.state.challenges.values()
    assert challenge.closed_because == "used"
    [history] = storage.state.sign_ins
    assert (history.outcome, history.reason, history.user_agent) == ("succeeded", None, "test")
    [event] = storage.payloads(CitizenAuthenticated)
    assert (event.citizen, event.province, event.birth_year) == (citizen, "IR-23", 1986)
    assert signer.ready_calls == 1


async def test_a_wrong_code_is_refused_and_the_failure_is_recorded(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    citizen, code = await registered_with_code(storage, deps)
    with pytest.raises(NotAuthenticated) as refusal:
        await sign_in(storage, deps, wrong(code))
    assert (refusal.value.code, refusal.value.status) == ("wrong_code", 401)
    [challenge] = storage.state.challenges.values()
    assert (challenge.attempts, challenge.closed_at) == (1, None)
    assert storage.state.counters[("citizen", citizen_on_network(citizen, NETWORK))].failures == 1
    assert storage.state.counters[("client_address", NETWORK)].failures == 1
    [history] = storage.state.sign_ins
    assert (history.outcome, history.reason) == ("failed", "wrong_code")
    [failed] = storage.payloads(AuthenticationFailed)
    assert (failed.citizen, failed.reason) == (citizen, "wrong_code")


async def test_a_code_guessed_at_too_often_is_closed(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    _, code = await registered_with_code(storage, deps)
    for _ in range(deps.settings.code_attempts):
        with pytest.raises(NotAuthenticated, match="wrong_code"):
            await sign_in(storage, deps, wrong(code))
    [challenge] = storage.state.challenges.values()
    assert challenge.closed_because == "guessed"
    with pytest.raises(NotAuthenticated) as refusal:
        await sign_in(storage, deps, code)
    assert refusal.value.code == "expired_code"


async def test_an_expired_code_is_closed_and_refused(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    _, code = await registered_with_code(storage, deps)
    late = timedelta(seconds=deps.settings.code_seconds)
    with pytest.raises(NotAuthenticated) as refusal:
        await sign_in(storage, deps, code, at=late)
    assert refusal.value.code == "expired_code"
    [challenge] = storage.state.challenges.values()
    assert challenge.closed_because == "expired"
    [history] = storage.state.sign_ins
    assert history.reason == "expired_code"


async def test_the_citizens_last_allowed_failure_locks_them_out(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    citizen = await registered(storage, deps)
    allowed = deps.settings.citizen_max_failures
    storage.state.counters[("citizen", citizen_on_network(citizen, NETWORK))] = Counter(
        allowed - 1, NOW, None
    )
    await ask_code(storage, deps)
    [code] = codes_sent(storage)
    with pytest.raises(MustWait) as refusal:
        await sign_in(storage, deps, wrong(code))
    assert refusal.value.code == "locked_out"
    assert refusal.value.headers == {"retry-after": str(deps.settings.lockout_seconds)}
    [lockout] = storage.payloads(CitizenLockedOut)
    assert (lockout.citizen, lockout.scope, lockout.failed_attempts) == (
        citizen,
        "citizen",
        allowed,
    )
    [failed] = storage.payloads(AuthenticationFailed)
    assert failed.reason == "too_many_attempts"
    assert storage.state.sign_ins[-1].outcome == "locked_out"


async def test_a_locked_out_citizen_is_refused_even_with_the_right_code(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    citizen, code = await registered_with_code(storage, deps)
    lock_out(storage, citizen, until=NOW + timedelta(minutes=5))
    with pytest.raises(MustWait) as refusal:
        await sign_in(storage, deps, code)
    assert refusal.value.code == "locked_out"
    [history] = storage.state.sign_ins
    assert (history.outcome, history.reason) == ("locked_out", "locked_out")
    [failed] = storage.payloads(AuthenticationFailed)
    assert failed.reason == "locked_out"
    assert storage.payloads(CitizenAuthenticated) == []


async def test_signing_in_with_an_unregistered_id_is_not_found_and_counts_against_the_address(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    with pytest.raises(NotFound) as refusal:
        await sign_in(storage, deps, "123456")
    assert refusal.value.code == "not_registered"
    assert storage.state.counters[("client_address", NETWORK)].failures == 1
    assert storage.state.sign_ins == []


async def test_a_success_after_failures_starts_the_citizens_window_afresh(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    citizen, code = await registered_after_a_wrong_code(storage, deps)
    transactions = storage.transactions
    await sign_in(storage, deps, code, at=timedelta(seconds=5))
    assert storage.transactions == transactions + 1, "clearing failures takes the lock"
    assert storage.state.counters[("citizen", citizen_on_network(citizen, NETWORK))] == Counter(
        0, NOW + timedelta(seconds=5), None
    )
    assert storage.state.sign_ins[-1].outcome == "succeeded"


async def test_a_sign_in_that_collides_with_another_attempt_is_decided_under_the_lock(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    citizen, code = await registered_with_code(storage, deps)
    collide_between_read_and_write(storage, citizen)
    transactions = storage.transactions
    await sign_in(storage, deps, code)
    assert storage.transactions == transactions + 1
    assert len(storage.payloads(CitizenAuthenticated)) == 1
    assert len(storage.state.families) == 1


async def test_a_code_that_is_not_six_digits_is_invalid_input(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    with pytest.raises(InvalidInput) as refusal:
        await sign_in(storage, deps, "12ab")
    assert (refusal.value.code, refusal.value.status) == ("wrong_code", 422)
    assert storage.published == []


async def test_agency_systems_do_not_sign_in_as_citizens(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    with pytest.raises(Invalid) as refusal:
        await citizens.sign_in(
            storage,
            deps,
            national_id_text=national_id(),
            code_text="123456",
            channel="agency_system",
            client_address=ADDRESS,
            user_agent=None,
            now=NOW,
        )
    assert (refusal.value.code, refusal.value.status) == ("invalid_request", 422)


async def test_persian_digits_in_the_code_are_read_as_digits(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    _, code = await registered_with_code(storage, deps)
    persian = code.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    assert (await sign_in(storage, deps, persian)).refresh_token


# History ----------------------------------------------------------------------------


async def test_the_sign_in_history_is_the_citizens_own_newest_first(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    citizen, code = await registered_after_a_wrong_code(storage, deps)
    await sign_in(storage, deps, code, at=timedelta(seconds=1))
    history = await citizens.sign_in_history(storage, citizen, 10)
    assert [h["outcome"] for h in history] == ["succeeded", "failed"]
    assert await citizens.sign_in_history(storage, citizen, 1) == history[:1]
    assert await citizens.sign_in_history(storage, "someone-else", 10) == []
