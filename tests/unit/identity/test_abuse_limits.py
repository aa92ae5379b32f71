"""Abuse limits and lockouts, on fakes: networks, windows, who is limited and locked."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from services.identity.adapters.hashing import BoundedHasher, HashingBusy, HashingGate
from services.identity.domain.attempts import MustWait
from services.identity.domain.limits import Limit, WindowCounters
from services.identity.domain.networks import client_address, client_network, parse_networks
from services.identity.use_cases import citizens
from services.identity.use_cases.ports import Dependencies
from shared.errors import NotAuthenticated
from tests.unit.identity.conftest import ADDRESS, MOBILE, NOW, codes_sent, national_id
from tests.unit.identity.fakes import FakeHasher, FakeIdentity

PROXIES = parse_networks("10.0.0.0/8, fd00::/8")


def test_an_ipv4_address_counts_under_its_slash_24_and_an_ipv6_address_under_its_slash_64() -> None:
    assert client_network("203.0.113.7") == client_network("203.0.113.250") == "203.0.113.0/24"
    assert client_network("203.0.114.7") != client_network("203.0.113.7")
    # An IPv6 subscriber rotates through its /64 for free: every address counts as one.
    assert client_network("2001:db8:1:2::1") == client_network("2001:db8:1:2:ffff:1:2:3")
    assert client_network("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert client_network("2001:db8:1:3::1") != client_network("2001:db8:1:2::1")
    assert client_network("::ffff:203.0.113.7") == "203.0.113.0/24"


def test_the_client_behind_a_trusted_proxy_is_the_rightmost_hop_the_proxy_did_not_add() -> None:
    assert client_address("10.0.0.5", "198.51.100.9", PROXIES) == "198.51.100.9"
    # Hops left of it are whatever the client wrote: never believed.
    assert client_address("10.0.0.5", "1.2.3.4, 198.51.100.9, 10.0.0.7", PROXIES) == (
        "198.51.100.9"
    )
    # A peer that is not one of our proxies is the client, whatever it claims.
    assert client_address("198.51.100.9", "1.2.3.4", PROXIES) == "198.51.100.9"
    assert client_address("10.0.0.5", "1.2.3.4", ()) == "10.0.0.5"
    assert client_address("10.0.0.5", None, PROXIES) == "10.0.0.5"
    assert client_address("10.0.0.5", "not an address", PROXIES) == "10.0.0.5"


def test_a_window_allows_its_count_then_refuses_until_it_ends_and_a_refusal_counts_nothing() -> (
    None
):
    counters = WindowCounters()
    tight = Limit("tight", 2, timedelta(minutes=1))
    loose = Limit("loose", 10, timedelta(minutes=1))
    charges = [(tight, "a"), (loose, "all")]
    assert counters.take(charges, NOW) is None
    assert counters.take(charges, NOW) is None
    assert counters.take(charges, NOW) == (tight, NOW + timedelta(minutes=1))
    # The refused attempt took nothing from the loose limit: 8 are left there.
    for _ in range(8):
        assert counters.take([(loose, "all")], NOW) is None
    assert counters.take([(loose, "all")], NOW) is not None
    assert counters.take(charges, NOW + timedelta(minutes=1)) is None


def test_a_flood_of_fresh_subjects_keeps_memory_bounded() -> None:
    counters = WindowCounters(max_subjects=100)
    limit = Limit("per-network", 1, timedelta(hours=1))
    for n in range(1000):
        counters.take([(limit, f"2001:db8:{n:x}::/64")], NOW)
    assert sum(len(windows) for windows in counters._windows.values()) <= 100


def with_settings(deps: Dependencies, **changes: object) -> Dependencies:
    settings = deps.settings.model_copy(update=changes)
    return Dependencies(
        settings=settings,
        signer=deps.signer,
        operator_check=deps.operator_check,
        hasher=deps.hasher,
        sms_gateway_key=deps.sms_gateway_key,
    )


def registration(national: str, mobile: str = MOBILE) -> citizens.Registration:
    return citizens.Registration(
        national_id=national,
        mobile=mobile,
        first_name="مریم",
        last_name="رضایی",
        birth_date="1365/06/31",
        calendar=None,
        province="IR-23",
    )


async def test_registrations_from_one_network_are_limited_and_refused_with_when_to_retry(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    deps = with_settings(deps, registrations_per_network_per_hour=3)
    for n in range(3):
        await citizens.register(
            storage, deps, registration(national_id(f"12345678{n}")), f"198.51.100.{n}", NOW
        )
    with pytest.raises(MustWait) as refusal:
        await citizens.register(
            storage, deps, registration(national_id("123456784")), "198.51.100.99", NOW
        )
    assert refusal.value.code == "too_many_requests"
    assert refusal.value.status == 429
    assert refusal.value.headers["retry-after"] == "3600"
    assert refusal.value.retry["limit"] == "registrations_per_network"
    # Another network registers.
    await citizens.register(
        storage, deps, registration(national_id("123456784")), "198.51.101.1", NOW
    )


async def test_trying_one_national_id_again_and_again_is_limited_before_the_operator_check(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    deps = with_settings(deps, registrations_per_national_id_per_hour=2)
    for n in range(2):
        await citizens.register(
            storage, deps, registration(national_id(), f"0912123456{n}"), f"203.0.{n}.1", NOW
        )
    with pytest.raises(MustWait):
        await citizens.register(
            storage, deps, registration(national_id(), "09121234569"), "203.0.9.1", NOW
        )


async def test_codes_to_one_mobile_are_limited_whichever_national_id_asks(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    deps = with_settings(deps, code_sends_per_mobile_per_hour=3, code_resend_seconds=0)
    nationals = [national_id(f"98765432{n}") for n in range(4)]
    for national in nationals:
        await citizens.register(storage, deps, registration(national), ADDRESS, NOW)
    for n, national in enumerate(nationals[:3]):
        await citizens.request_code(storage, deps, national, f"192.0.{n}.1", NOW)
    with pytest.raises(MustWait) as refusal:
        await citizens.request_code(storage, deps, nationals[3], "192.0.9.1", NOW)
    assert refusal.value.retry["limit"] == "code_sends_per_mobile"
    assert len(codes_sent(storage)) == 3


async def test_codes_asked_for_from_one_network_are_limited_across_citizens(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    deps = with_settings(deps, code_sends_per_network_per_hour=2)
    nationals = [national_id(f"55544433{n}") for n in range(3)]
    for n, national in enumerate(nationals):
        await citizens.register(
            storage, deps, registration(national, f"0913000000{n + 1}"), ADDRESS, NOW
        )
    # Two addresses of one IPv6 /64: one network.
    await citizens.request_code(storage, deps, nationals[0], "2001:db8:1:2::1", NOW)
    await citizens.request_code(storage, deps, nationals[1], "2001:db8:1:2::99", NOW)
    with pytest.raises(MustWait) as refusal:
        await citizens.request_code(storage, deps, nationals[2], "2001:db8:1:2::abcd", NOW)
    assert refusal.value.retry["limit"] == "code_sends_per_network"
    await citizens.request_code(storage, deps, nationals[2], "2001:db8:1:3::1", NOW)


async def test_a_resend_refused_as_too_soon_does_not_use_up_the_citizens_hourly_codes(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    deps = with_settings(deps, code_sends_per_national_id_per_hour=2, code_resend_seconds=60)
    await citizens.register(storage, deps, registration(national_id()), ADDRESS, NOW)
    await citizens.request_code(storage, deps, national_id(), ADDRESS, NOW)
    for _ in range(5):
        with pytest.raises(MustWait) as refusal:
            await citizens.request_code(storage, deps, national_id(), ADDRESS, NOW)
        assert refusal.value.code == "code_recently_sent"
    await citizens.request_code(storage, deps, national_id(), ADDRESS, NOW + timedelta(minutes=1))
    with pytest.raises(MustWait) as refusal:
        await citizens.request_code(
            storage, deps, national_id(), ADDRESS, NOW + timedelta(minutes=2)
        )
    assert refusal.value.retry["limit"] == "code_sends_per_national_id"


async def attempt(deps: Dependencies, storage: FakeIdentity, code: str, address: str) -> object:
    return await citizens.sign_in(
        storage,
        deps,
        national_id_text=national_id(),
        code_text=code,
        channel="web",
        client_address=address,
        user_agent="test",
        now=NOW,
    )


async def test_failing_on_purpose_from_one_network_locks_the_citizen_out_there_only(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    deps = with_settings(deps, code_attempts=100, code_resend_seconds=0)
    await citizens.register(storage, deps, registration(national_id()), ADDRESS, NOW)
    await citizens.request_code(storage, deps, national_id(), ADDRESS, NOW)
    [code] = codes_sent(storage)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    attacker = "203.0.113.66"
    for _ in range(deps.settings.citizen_max_failures - 1):
        with pytest.raises(NotAuthenticated):
            await attempt(deps, storage, wrong, attacker)
    with pytest.raises(MustWait):
        await attempt(deps, storage, wrong, attacker)
    # The attacker's network stays locked for this citizen, even with the right code...
    with pytest.raises(MustWait):
        await attempt(deps, storage, code, "203.0.113.67")
    # ...while the citizen, on their own network, signs in.
    tokens = await attempt(deps, storage, code, ADDRESS)
    assert tokens is not None


async def test_the_development_loopback_is_spared_network_limits_but_not_the_overall_ones(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    deps = with_settings(deps, registrations_per_network_per_hour=1, registrations_per_minute=3)
    for n in range(3):
        await citizens.register(
            storage, deps, registration(national_id(f"11122233{n}")), "127.0.0.1", NOW
        )
    with pytest.raises(MustWait) as refusal:
        await citizens.register(storage, deps, registration(national_id("111222339")), "::1", NOW)
    assert refusal.value.retry["limit"] == "registrations"


def test_in_production_loopback_is_limited_like_any_network(deps: Dependencies) -> None:
    assert deps.limits.unlimited("127.0.0.1")
    assert with_settings(deps, environment="test").limits.unlimited("::1")
    assert not with_settings(deps, environment="production").limits.unlimited("127.0.0.1")
    chosen = with_settings(deps, unlimited_networks="192.0.2.0/24")
    assert chosen.limits.unlimited("192.0.2.9")
    assert not chosen.limits.unlimited("127.0.0.1")


async def test_a_credentials_check_beyond_the_hashing_slots_is_refused_at_once() -> None:
    gate = HashingGate(1)
    entered, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with gate.admitted():
            entered.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await entered.wait()
    with pytest.raises(HashingBusy) as refusal:
        async with gate.admitted():
            pass
    assert (refusal.value.status, refusal.value.headers["retry-after"]) == (429, "1")
    release.set()
    await holder
    async with gate.admitted():
        pass


async def test_no_more_hashes_than_the_slots_ever_run_at_once() -> None:
    running, most = 0, 0

    class Slow(FakeHasher):
        def verify(self, stored: str, secret: str) -> bool:
            nonlocal running, most
            running += 1
            most = max(most, running)
            time.sleep(0.02)
            running -= 1
            return True

    bounded = BoundedHasher(Slow(), 2)
    await asyncio.gather(*(asyncio.to_thread(bounded.verify, "x", "y") for _ in range(8)))
    assert most <= 2
