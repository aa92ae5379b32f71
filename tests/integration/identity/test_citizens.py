"""Citizens end to end on the real broker and database: register, code, sign in, tokens."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import asyncpg
import httpx
import jwt as pyjwt
import pytest

from services.identity.domain.citizens import normalise_mobile
from services.identity.domain.codes import code_matches, sms_text
from services.identity.domain.networks import client_network
from services.identity.settings import IdentitySettings
from shared.auth import IssuerKeys
from shared.events.identity import (
    AuthenticationFailed,
    CitizenAuthenticated,
    CitizenLockedOut,
    CitizenRegistered,
)
from shared.kafka_access import KafkaAccess
from shared.topics import Topic
from tests.integration.identity.conftest import (
    citizen_of,
    code_sent_to,
    codes_sent_to,
    events_about,
    new_mobile,
    new_national_id,
    register,
    sms_sent_to,
)

pytestmark = pytest.mark.integration

PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


async def a_registered_citizen(http: httpx.AsyncClient) -> tuple[str, str]:
    """A citizen newly registered with a fresh national id and mobile: those two."""
    national_id, mobile = new_national_id(), new_mobile()
    assert (await register(http, national_id, mobile)).status_code == 201
    return national_id, mobile


async def code_asked_for(
    http: httpx.AsyncClient, kafka: KafkaAccess, national_id: str, mobile: str
) -> str:
    """Ask for a sign-in code for `national_id`, and the code the SMS took to `mobile`."""
    assert (
        await http.post("/citizens/sign-in/code", json={"national_id": national_id})
    ).status_code == 202
    return await code_sent_to(kafka, normalise_mobile(mobile))


async def signed_in(
    http: httpx.AsyncClient, kafka: KafkaAccess, national_id: str, mobile: str
) -> dict[str, str]:
    code = await code_asked_for(http, kafka, national_id, mobile)
    response = await http.post(
        "/citizens/sign-in", json={"national_id": national_id, "code": code, "channel": "web"}
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, str] = response.json()
    return tokens


async def test_a_code_travels_sealed_to_the_sms_gateway_alone(
    client: httpx.AsyncClient, kafka_admin: KafkaAccess, settings: IdentitySettings
) -> None:
    national_id, mobile = await a_registered_citizen(client)
    sent = await client.post("/citizens/sign-in/code", json={"national_id": national_id})
    assert sent.status_code == 202, sent.text
    e164 = normalise_mobile(mobile)
    [sms] = await sms_sent_to(kafka_admin, e164, 1)
    # The record on the topic holds neither the code nor the mobile, in any form.
    for clear in (sms.code, sms.code.translate(PERSIAN), e164, e164[3:], mobile, national_id):
        assert clear.encode() not in sms.value, clear
    assert sms.message.sealed.recipient == settings.sms_gateway_key.key_id
    # The gateway's private key opens it to the text identity wrote, with the live code.
    assert sms.content.text == sms_text(sms.code, max(1, settings.code_seconds // 60))
    signed = await client.post(
        "/citizens/sign-in", json={"national_id": national_id, "code": sms.code}
    )
    assert signed.status_code == 200, signed.text


async def test_register_sign_in_verify_refresh_and_revoke_end_to_end(
    client: httpx.AsyncClient, kafka_admin: KafkaAccess, settings: IdentitySettings
) -> None:
    national_id, mobile = new_national_id(), new_mobile()
    typed_id = f"{national_id[:3]}-{national_id[3:9]}-{national_id[9]}".translate(PERSIAN)
    registered = await register(client, typed_id, mobile.translate(PERSIAN))
    assert registered.status_code == 201, registered.text
    citizen = registered.json()["citizen"]
    assert citizen == citizen_of(national_id, settings)

    sent = await client.post("/citizens/sign-in/code", json={"national_id": national_id})
    assert sent.status_code == 202
    assert sent.json()["sent_to"].endswith(mobile[-4:])
    code = await code_sent_to(kafka_admin, normalise_mobile(mobile))
    response = await client.post(
        "/citizens/sign-in",
        json={"national_id": national_id, "code": code.translate(PERSIAN), "channel": "mobile_app"},
    )
    assert response.status_code == 200, response.text
    tokens = response.json()

    # The access token verifies with a JOSE library that is not ours, from the JWKS alone.
    jwks = (await client.get("/.well-known/jwks.json")).json()
    discovery = (await client.get("/.well-known/openid-configuration")).json()
    assert discovery["jwks_uri"].endswith("/.well-known/jwks.json")
    kid = pyjwt.get_unverified_header(tokens["access_token"])["kid"]
    public = pyjwt.PyJWKSet.from_dict(jwks)[kid].key
    claims = pyjwt.decode(
        tokens["access_token"],
        public,
        algorithms=["ES256"],
        audience="panjereh",
        issuer=discovery["issuer"],
    )
    assert claims["sub"] == citizen
    assert (claims["loa"], claims["acr"]) == (2, "loa2")
    assert national_id not in tokens["access_token"]

    # Refresh rotates the refresh token; using the spent one again revokes the session.
    refreshed = await client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()
    assert second["refresh_token"] != tokens["refresh_token"]
    assert (
        pyjwt.decode(second["access_token"], public, algorithms=["ES256"], audience="panjereh")[
            "sub"
        ]
        == citizen
    )

    # Revocation ends the session: the refresh token no longer works.
    assert (
        await client.post("/oauth/revoke", data={"token": second["refresh_token"]})
    ).status_code == 200
    after_revoke = await client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]},
    )
    assert after_revoke.status_code == 400
    assert after_revoke.json()["code"] == "invalid_grant"
    history = await client.get(
        "/citizens/me/sign-ins", headers={"authorization": f"Bearer {second['access_token']}"}
    )
    assert history.status_code == 401

    # The events arrived, about the pseudonym only.
    registrations, raw_registrations = await events_about(
        kafka_admin, Topic.IDENTITY_CITIZENS, citizen, until=lambda rs: len(rs) >= 1
    )
    assert registrations == [CitizenRegistered(citizen=citizen, province="IR-23", birth_year=1986)]
    authentications, raw_authentications = await events_about(
        kafka_admin,
        Topic.IDENTITY_AUTHENTICATIONS,
        citizen,
        until=lambda rs: len(rs) >= 1,
    )
    assert [type(e) for e in authentications] == [CitizenAuthenticated]
    assert authentications[0].channel == "mobile_app"
    assert authentications[0].level_of_assurance == 2
    for raw in raw_registrations + raw_authentications:
        assert national_id.encode() not in raw
        assert normalise_mobile(mobile)[3:].encode() not in raw


async def test_a_token_verifies_with_the_issuer_keys_read_from_the_topic(
    client: httpx.AsyncClient, kafka_admin: KafkaAccess, settings: IdentitySettings
) -> None:
    national_id, mobile = await a_registered_citizen(client)
    tokens = await signed_in(client, kafka_admin, national_id, mobile)
    keys = IssuerKeys(kafka_admin, issuer=settings.issuer)
    follower = asyncio.create_task(keys.run())
    try:
        await asyncio.wait_for(keys.ready.wait(), timeout=30)
        principal = None
        for _ in range(100):
            try:
                principal = keys.verify(tokens["access_token"])
                break
            except Exception:
                await asyncio.sleep(0.2)
        assert principal is not None
        assert principal.subject == citizen_of(national_id, settings)
        assert principal.level_of_assurance == 2
    finally:
        await keys.stop()
        await follower


async def test_concurrent_wrong_codes_count_exactly_up_to_the_limit_and_lock_once(
    client: httpx.AsyncClient, kafka_admin: KafkaAccess, settings: IdentitySettings
) -> None:
    national_id, mobile = await a_registered_citizen(client)
    code = await code_asked_for(client, kafka_admin, national_id, mobile)
    wrong = f"{(int(code) + 1) % 10**6:06d}"

    attempts = [
        client.post("/citizens/sign-in", json={"national_id": national_id, "code": wrong})
        for _ in range(16)
    ]
    responses = await asyncio.gather(*attempts)
    statuses = Counter(r.status_code for r in responses)
    # Failures 1 to 4 are answered 401; the 5th locks (429), and so is everything after.
    assert statuses == {
        401: settings.citizen_max_failures - 1,
        429: 16 - (settings.citizen_max_failures - 1),
    }
    locked = next(r for r in responses if r.status_code == 429)
    assert locked.headers["content-type"].startswith("application/problem+json")
    body = locked.json()
    assert body["code"] == "locked_out"
    assert set(body["messages"]) == {"fa", "en"}
    assert int(locked.headers["retry-after"]) > 0
    assert body["errors"][0]["locked_until_jalali"]

    # Locked means locked: even the right code is refused now.
    right = await client.post("/citizens/sign-in", json={"national_id": national_id, "code": code})
    assert right.status_code == 429

    citizen = citizen_of(national_id, settings)
    events, _ = await events_about(
        kafka_admin,
        Topic.IDENTITY_AUTHENTICATIONS,
        citizen,
        until=lambda rs: len(rs) >= 17,
    )
    lockouts = [e for e in events if isinstance(e, CitizenLockedOut)]
    assert len(lockouts) == 1
    assert lockouts[0].scope == "citizen"
    assert lockouts[0].failed_attempts == settings.citizen_max_failures
    reasons = Counter(e.reason for e in events if isinstance(e, AuthenticationFailed))
    assert reasons["locked_out"] == 16 - settings.citizen_max_failures + 1
    assert reasons["too_many_attempts"] == 1


async def test_the_right_code_sent_many_times_at_once_signs_in_exactly_once(
    client: httpx.AsyncClient, kafka_admin: KafkaAccess, settings: IdentitySettings
) -> None:
    national_id, mobile = await a_registered_citizen(client)
    code = await code_asked_for(client, kafka_admin, national_id, mobile)

    # As many as can fail without locking the citizen out.
    tries = settings.citizen_max_failures
    responses = await asyncio.gather(
        *(
            client.post("/citizens/sign-in", json={"national_id": national_id, "code": code})
            for _ in range(tries)
        )
    )
    assert sorted(r.status_code for r in responses) == [200] + [401] * (tries - 1)
    assert {r.json()["code"] for r in responses if r.status_code == 401} == {"expired_code"}

    citizen = citizen_of(national_id, settings)
    events, _ = await events_about(
        kafka_admin, Topic.IDENTITY_AUTHENTICATIONS, citizen, until=lambda rs: len(rs) >= tries
    )
    assert Counter(type(e).__name__ for e in events) == {
        "CitizenAuthenticated": 1,
        "AuthenticationFailed": tries - 1,
    }


async def test_codes_asked_for_at_once_leave_only_the_newest_open_and_it_signs_in(
    client: httpx.AsyncClient, kafka_admin: KafkaAccess, settings: IdentitySettings
) -> None:
    national_id, mobile = await a_registered_citizen(client)
    responses = await asyncio.gather(
        *(
            client.post("/citizens/sign-in/code", json={"national_id": national_id})
            for _ in range(6)
        )
    )
    # With no resend interval, a request still waits for any code sent at a later clock
    # reading than its own: only those are refused.
    sent = [r for r in responses if r.status_code == 202]
    refused = [r for r in responses if r.status_code != 202]
    assert sent
    assert {(r.status_code, r.json()["code"]) for r in refused} <= {(429, "code_recently_sent")}
    codes = await codes_sent_to(kafka_admin, normalise_mobile(mobile), len(sent))

    connection = await asyncpg.connect(settings.database_url)
    try:
        challenges = await connection.fetch(
            "SELECT id, code_hash, closed_at IS NULL AS open FROM identity.code_challenges"
            " WHERE citizen = $1 ORDER BY created_at DESC",
            citizen_of(national_id, settings),
        )
    finally:
        await connection.close()
    assert [c["open"] for c in challenges] == [True] + [False] * (len(sent) - 1)
    newest = challenges[0]
    key = settings.pseudonym_key_bytes
    (open_code,) = [
        c for c in codes if code_matches(c, str(newest["id"]), key, newest["code_hash"])
    ]
    response = await client.post(
        "/citizens/sign-in", json={"national_id": national_id, "code": open_code}
    )
    assert response.status_code == 200, response.text


async def test_a_client_address_is_locked_after_too_many_failures_across_citizens(
    client_for: Callable[[str], httpx.AsyncClient], settings: IdentitySettings
) -> None:
    address = f"192.0.{int(time.time() * 1000) % 250}.1"
    async with client_for(address) as http:
        statuses = []
        for _ in range(settings.address_max_failures + 2):
            response = await http.post(
                "/citizens/sign-in", json={"national_id": new_national_id(), "code": "123456"}
            )
            statuses.append(response.status_code)
    assert statuses[: settings.address_max_failures - 1] == [404] * (
        settings.address_max_failures - 1
    )
    assert statuses[settings.address_max_failures - 1 :] == [429, 429, 429]


async def test_citizens_read_their_own_sign_in_history_with_their_token(
    client: httpx.AsyncClient, kafka_admin: KafkaAccess
) -> None:
    national_id, mobile = await a_registered_citizen(client)
    await client.post("/citizens/sign-in", json={"national_id": national_id, "code": "000000"})
    tokens = await signed_in(client, kafka_admin, national_id, mobile)
    history = await client.get(
        "/citizens/me/sign-ins",
        headers={"authorization": f"Bearer {tokens['access_token']}", "user-agent": "test"},
    )
    assert history.status_code == 200, history.text
    rows = history.json()
    assert [(r["outcome"], r["channel"]) for r in rows] == [("succeeded", "web"), ("failed", "web")]
    assert rows[0]["client_address"].startswith("10.")
    assert rows[0]["at_jalali"].startswith("14")
    assert (await client.get("/citizens/me/sign-ins")).status_code == 401


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        (
            "/citizens",
            {
                "national_id": "1234567890",
                "mobile": "09121234567",
                "first_name": "a",
                "last_name": "b",
                "birth_date": "1370/01/01",
                "province": "IR-23",
            },
            422,
            "invalid_national_id",
        ),
        (
            "/citizens",
            {
                "national_id": "0499370899",
                "mobile": "02112345678",
                "first_name": "a",
                "last_name": "b",
                "birth_date": "1370/01/01",
                "province": "IR-23",
            },
            422,
            "invalid_mobile",
        ),
        (
            "/citizens",
            {
                "national_id": "0499370899",
                "mobile": "09121234567",
                "first_name": "a",
                "last_name": "b",
                "birth_date": "1370/13/40",
                "province": "IR-23",
            },
            422,
            "invalid_birth_date",
        ),
        (
            "/citizens",
            {
                "national_id": "0499370899",
                "mobile": "09120000000",
                "first_name": "a",
                "last_name": "b",
                "birth_date": "1370/01/01",
                "province": "IR-23",
            },
            422,
            "mobile_not_owned",
        ),
        ("/citizens", {"national_id": "0499370899"}, 422, "invalid_request"),
        ("/citizens/sign-in/code", {"national_id": "۱۱۱۱۱۱۱۱۱۱"}, 422, "invalid_national_id"),
        ("/citizens/sign-in", {"national_id": "0499370899", "code": "12"}, 422, "wrong_code"),
        ("/oauth/token", {"grant_type": "password"}, 400, "unsupported_grant_type"),
        (
            "/oauth/token",
            {"grant_type": "refresh_token", "refresh_token": "nope"},
            400,
            "invalid_grant",
        ),
        ("/oauth/token", {"grant_type": "client_credentials"}, 401, "invalid_client"),
    ],
)
async def test_bad_input_gets_a_4xx_problem_with_the_reason_in_persian_and_english(
    client: httpx.AsyncClient, path: str, body: dict[str, str], status: int, code: str
) -> None:
    response = await client.post(path, json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == code
    assert problem["messages"]["fa"]
    assert problem["messages"]["en"]


async def test_a_refresh_token_used_twice_at_once_rotates_once_and_revokes_the_session(
    client: httpx.AsyncClient, kafka_admin: KafkaAccess
) -> None:
    national_id, mobile = await a_registered_citizen(client)
    tokens = await signed_in(client, kafka_admin, national_id, mobile)
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    responses = await asyncio.gather(*(client.post("/oauth/token", data=form) for _ in range(6)))
    assert sorted(r.status_code for r in responses) == [200, 400, 400, 400, 400, 400]
    winner = next(r for r in responses if r.status_code == 200).json()
    # The replays revoked the family: even the token the winner received is dead.
    again = await client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": winner["refresh_token"]},
    )
    assert (again.status_code, again.json()["code"]) == (400, "invalid_grant")


async def test_concurrent_failures_from_one_address_lock_it_exactly_once(
    client_for: Callable[[str], httpx.AsyncClient],
    kafka_admin: KafkaAccess,
    settings: IdentitySettings,
) -> None:
    address = f"198.18.{int(time.time()) % 250}.{int(time.time() * 1000) % 250 + 1}"
    async with client_for(address) as http:
        responses = await asyncio.gather(
            *(
                http.post(
                    "/citizens/sign-in", json={"national_id": new_national_id(), "code": "123456"}
                )
                for _ in range(settings.address_max_failures * 3)
            )
        )
    statuses = Counter(r.status_code for r in responses)
    limit = settings.address_max_failures
    assert statuses == {404: limit - 1, 429: 2 * limit + 1}
    # The lockout is the network's (its /24), and is keyed by it.
    events, _ = await events_about(
        kafka_admin,
        Topic.IDENTITY_AUTHENTICATIONS,
        client_network(address),
        until=lambda rs: any(b"CitizenLockedOut" in r.value for r in rs),
    )
    lockouts = [e for e in events if isinstance(e, CitizenLockedOut)]
    assert len(lockouts) == 1
    assert (lockouts[0].scope, lockouts[0].citizen) == ("client_address", None)
