"""Identity against abuse, on the real broker and database: enumeration, SMS flooding,
hashing memory, lockouts per network and turned against the citizen."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable, Mapping

import httpx
import pytest

from services.identity.domain.citizens import normalise_mobile
from services.identity.settings import IdentitySettings
from shared.kafka_access import KafkaAccess
from tests.integration.identity.conftest import (
    OPERATOR,
    code_sent_to,
    new_mobile,
    new_national_id,
    register,
)

pytestmark = pytest.mark.integration

PROXY = "10.255.0.1"  # one of the platform's own reverse proxies (`trusted_proxies`)


@pytest.fixture(scope="module")
def settings(
    credentials_file: Callable[[str], str], database_urls: Mapping[str, str]
) -> IdentitySettings:
    return IdentitySettings(
        kafka_credentials_file=credentials_file("identity"),
        sms_gateway_credentials_file=credentials_file("sms-gateway"),
        database_url=database_urls["identity"],
        code_resend_seconds=0,
        citizen_max_failures=3,
        address_max_failures=4,
        registrations_per_network_per_hour=3,
        code_sends_per_network_per_hour=3,
        code_sends_per_mobile_per_hour=3,
        hashing_concurrency=1,
        trusted_proxies="10.255.0.0/16",
        key_publish_ahead_seconds=0,
        operator_token=OPERATOR,
        issuer="http://identity.test",
    )


def a_network() -> str:
    """A /24 no other test uses: its first address."""
    return f"100.{random.randrange(64, 128)}.{random.randrange(256)}.1"


def an_ipv6_network() -> str:
    return f"2001:db8:{random.randrange(2**16):x}:{random.randrange(2**16):x}"


def assert_refused_politely(response: httpx.Response, code: str) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) > 0
    body = response.json()
    assert body["code"] == code
    assert set(body["messages"]) == {"fa", "en"}


async def test_registering_a_registered_national_id_again_answers_exactly_as_the_first_time(
    client: httpx.AsyncClient,
) -> None:
    national_id, mobile = new_national_id(), new_mobile()
    first = await register(client, national_id, mobile)
    again = await register(client, national_id, mobile)
    assert first.status_code == again.status_code == 201, again.text
    assert first.json() == again.json()


async def test_registrations_from_one_network_stop_at_the_limit(
    client_for: Callable[[str], httpx.AsyncClient],
) -> None:
    network = a_network().rsplit(".", 1)[0]
    statuses = []
    for host in range(1, 5):
        async with client_for(f"{network}.{host}") as http:
            response = await register(http, new_national_id(), new_mobile())
            statuses.append(response.status_code)
    assert statuses == [201, 201, 201, 429]
    async with client_for(f"{network}.9") as http:
        assert_refused_politely(
            await register(http, new_national_id(), new_mobile()), "too_many_requests"
        )


async def registered_citizens(
    client_for: Callable[[str], httpx.AsyncClient], count: int
) -> list[tuple[str, str]]:
    citizens = []
    for _ in range(count):
        national_id, mobile = new_national_id(), new_mobile()
        async with client_for(a_network()) as http:
            assert (await register(http, national_id, mobile)).status_code == 201
        citizens.append((national_id, mobile))
    return citizens


async def test_codes_asked_for_from_one_ipv6_network_stop_at_the_limit_whatever_the_address(
    client_for: Callable[[str], httpx.AsyncClient],
) -> None:
    citizens = await registered_citizens(client_for, 4)
    prefix = an_ipv6_network()
    statuses = []
    for n, (national_id, _) in enumerate(citizens):
        async with client_for(f"{prefix}::{n + 1:x}") as http:
            response = await http.post("/citizens/sign-in/code", json={"national_id": national_id})
            statuses.append(response.status_code)
            last = response
    assert statuses == [202, 202, 202, 429]
    assert_refused_politely(last, "too_many_requests")


async def test_codes_to_one_mobile_stop_at_the_limit_whichever_network_asks(
    client_for: Callable[[str], httpx.AsyncClient], kafka_admin: KafkaAccess
) -> None:
    [(national_id, mobile)] = await registered_citizens(client_for, 1)
    statuses = []
    for _ in range(4):
        async with client_for(a_network()) as http:
            response = await http.post("/citizens/sign-in/code", json={"national_id": national_id})
            statuses.append(response.status_code)
    assert statuses == [202, 202, 202, 429]
    await code_sent_to(kafka_admin, normalise_mobile(mobile), after=2)


async def test_unauthenticated_token_requests_beyond_the_hashing_slots_are_refused_at_once(
    client: httpx.AsyncClient,
) -> None:
    async def token_request() -> httpx.Response:
        return await client.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "nobody.0000",
                "client_secret": "guess",
            },
        )

    responses = await asyncio.gather(*(token_request() for _ in range(8)))
    statuses = Counter(r.status_code for r in responses)
    # One argon2 hash (64 MiB) at a time: the rest are refused before hashing.
    assert statuses[401] >= 1
    assert statuses[429] >= 1
    assert statuses[401] + statuses[429] == 8
    assert_refused_politely(next(r for r in responses if r.status_code == 429), "hashing_busy")


async def signed_in_with(http: httpx.AsyncClient, national_id: str, code: str) -> httpx.Response:
    return await http.post("/citizens/sign-in", json={"national_id": national_id, "code": code})


async def test_failing_on_purpose_from_one_network_does_not_lock_the_citizen_out_of_theirs(
    client_for: Callable[[str], httpx.AsyncClient],
    kafka_admin: KafkaAccess,
    settings: IdentitySettings,
) -> None:
    [(national_id, mobile)] = await registered_citizens(client_for, 1)
    own, attacker = a_network(), a_network()
    async with client_for(attacker) as http:
        for _ in range(settings.citizen_max_failures + 1):
            await signed_in_with(http, national_id, "000000")
        assert_refused_politely(await signed_in_with(http, national_id, "000000"), "locked_out")
        # Locked from the attacker's network, even asking for a code.
        assert_refused_politely(
            await http.post("/citizens/sign-in/code", json={"national_id": national_id}),
            "locked_out",
        )
    async with client_for(own) as citizen:
        asked = await citizen.post("/citizens/sign-in/code", json={"national_id": national_id})
        assert asked.status_code == 202, asked.text
        code = await code_sent_to(kafka_admin, normalise_mobile(mobile))
        signed = await signed_in_with(citizen, national_id, code)
        assert signed.status_code == 200, signed.text


async def test_a_network_is_locked_as_one_however_many_ipv6_addresses_it_rotates_through(
    client_for: Callable[[str], httpx.AsyncClient], settings: IdentitySettings
) -> None:
    prefix = an_ipv6_network()
    statuses = []
    for n in range(settings.address_max_failures + 1):
        async with client_for(f"{prefix}:{n:x}::{n + 1:x}") as http:
            response = await signed_in_with(http, new_national_id(), "123456")
            statuses.append(response.status_code)
    limit = settings.address_max_failures
    assert statuses == [404] * (limit - 1) + [429, 429]


async def test_behind_a_trusted_proxy_each_client_network_is_locked_on_its_own(
    client_for: Callable[[str], httpx.AsyncClient], settings: IdentitySettings
) -> None:
    guesser, neighbour = a_network(), a_network()
    async with client_for(PROXY) as proxy:

        async def via_proxy(client: str) -> httpx.Response:
            return await proxy.post(
                "/citizens/sign-in",
                json={"national_id": new_national_id(), "code": "123456"},
                headers={"x-forwarded-for": f"6.6.6.6, {client}"},
            )

        for _ in range(settings.address_max_failures):
            await via_proxy(guesser)
        assert (await via_proxy(guesser)).status_code == 429
        # Everyone else behind the same proxy goes on: only the guesser's network is locked.
        assert (await via_proxy(neighbour)).status_code == 404
