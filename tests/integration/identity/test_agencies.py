"""Agencies on the real broker and database: the projection, client credentials, keys."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from aiokafka import AIOKafkaProducer
from joserfc.jwk import ECKey, OKPKey

from services.identity.settings import IdentitySettings
from shared.envelope import Envelope
from shared.events.catalog import AgencyRecorded
from shared.events.identity import (
    AgencyKeyPublished,
    AgencyKeyRevoked,
    AuthenticationFailed,
    IssuerKeyPublished,
)
from shared.kafka import publish
from shared.kafka_access import KafkaAccess
from shared.registry import decode
from shared.topics import Topic
from tests.integration.identity.conftest import OPERATOR, events_about, eventually, unique
from tests.integration.kafka_helpers import read_all

pytestmark = pytest.mark.integration

OPERATOR_HEADERS = {"authorization": f"Bearer {OPERATOR}"}


async def recorded_agency(kafka: KafkaAccess, code: str, *, active: bool = True) -> None:
    agency = AgencyRecorded(
        code=code,
        name_fa="سازمان ثبت احوال کشور",
        name_en="National Organization for Civil Registration",
        ministry_fa="وزارت کشور",
        ministry_en="Ministry of the Interior",
        province=None,
        window_connected_since=date(2019, 6, 1),
        exchange_connected_since=date(2018, 3, 1),
        active=active,
        revision=1,
    )
    producer = AIOKafkaProducer(**kafka.client_options())
    await producer.start()
    try:
        await publish(producer, Envelope.wrap(agency, source="catalog", subject=code))
    finally:
        await producer.stop()


async def new_client(http: httpx.AsyncClient, agency: str, scopes: list[str]) -> dict[str, str]:
    async def created() -> httpx.Response | None:
        response = await http.post(
            f"/operator/agencies/{agency}/clients",
            json={"name": "registry system", "scopes": scopes},
            headers=OPERATOR_HEADERS,
        )
        return response if response.status_code != 404 else None

    response = await eventually(created)
    assert response is not None, "the agency never reached identity's projection"
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


async def agency_token(http: httpx.AsyncClient, client: dict[str, str], scope: str = "") -> str:
    response = await http.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
            **({"scope": scope} if scope else {}),
        },
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def test_operators_create_clients_that_get_tokens_scoped_to_what_they_hold(
    client: httpx.AsyncClient, kafka_admin: KafkaAccess, settings: IdentitySettings
) -> None:
    agency = unique("civil-registration")
    await recorded_agency(kafka_admin, agency)
    created = await new_client(client, agency, ["exchange:provide", "metrics:read"])
    assert created["client_id"].startswith(agency)

    token = await agency_token(client, created, scope="metrics:read")
    jwks = pyjwt.PyJWKSet.from_dict((await client.get("/.well-known/jwks.json")).json())
    claims = pyjwt.decode(
        token,
        jwks[pyjwt.get_unverified_header(token)["kid"]].key,
        algorithms=["ES256"],
        audience="panjereh",
        issuer=settings.issuer,
    )
    assert (claims["sub"], claims["agency"], claims["scope"]) == (
        created["client_id"],
        agency,
        "metrics:read",
    )
    everything = await agency_token(client, created)
    assert pyjwt.decode(everything, options={"verify_signature": False})["scope"] == (
        "exchange:provide metrics:read"
    )

    too_much = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "exchange:admin"},
        auth=(created["client_id"], created["client_secret"]),
    )
    assert (too_much.status_code, too_much.json()["code"]) == (400, "invalid_scope")

    wrong = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(created["client_id"], "not-the-secret"),
    )
    assert (wrong.status_code, wrong.json()["code"]) == (401, "invalid_client")
    failures, _ = await events_about(
        kafka_admin, Topic.IDENTITY_AUTHENTICATIONS, agency, until=lambda rs: len(rs) >= 1
    )
    assert failures == [
        AuthenticationFailed(
            citizen=None,
            channel="agency_system",
            reason="invalid_client_credentials",
            agency=agency,
        )
    ]

    revoked = await client.delete(
        f"/operator/agencies/{agency}/clients/{created['client_id']}", headers=OPERATOR_HEADERS
    )
    assert revoked.status_code == 204
    after = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(created["client_id"], created["client_secret"]),
    )
    assert after.status_code == 401


async def test_operator_endpoints_refuse_without_the_operator_secret_or_for_unknown_agencies(
    client: httpx.AsyncClient,
) -> None:
    body = {"name": "x", "scopes": ["metrics:read"]}
    missing = await client.post("/operator/agencies/education/clients", json=body)
    wrong = await client.post(
        "/operator/agencies/education/clients",
        json=body,
        headers={"authorization": "Bearer guess"},
    )
    unknown = await client.post(
        f"/operator/agencies/{unique('nowhere')}/clients", json=body, headers=OPERATOR_HEADERS
    )
    bad_scope = await client.post(
        "/operator/agencies/education/clients",
        json={"name": "x", "scopes": ["root"]},
        headers=OPERATOR_HEADERS,
    )
    assert [r.status_code for r in (missing, wrong, unknown, bad_scope)] == [401, 401, 404, 422]
    assert [r.json()["code"] for r in (unknown, bad_scope)] == ["unknown_agency", "invalid_scope"]


async def test_agencies_register_rotate_and_revoke_their_signing_keys_on_the_topic(
    client: httpx.AsyncClient, kafka_admin: KafkaAccess
) -> None:
    agency = unique("tax")
    await recorded_agency(kafka_admin, agency)
    created = await new_client(client, agency, ["identity:agency-keys"])
    headers = {"authorization": f"Bearer {await agency_token(client, created)}"}

    async def add_key(jwk: dict[str, Any], **fields: str) -> httpx.Response:
        return await client.post("/agency-keys", json={"jwk": jwk, **fields}, headers=headers)

    first = ECKey.generate_key("P-256")
    registered = await add_key(first.as_dict(private=False), kid=f"{agency}-2026-1")
    assert registered.status_code == 201, registered.text
    assert registered.json()["algorithm"] == "ES256"

    second = OKPKey.generate_key("Ed25519")
    rotated = await add_key(second.as_dict(private=False), replaces=f"{agency}-2026-1")
    assert rotated.status_code == 201, rotated.text
    second_kid = rotated.json()["kid"]
    assert rotated.json()["algorithm"] == "EdDSA"

    private = await add_key(ECKey.generate_key("P-256").as_dict(private=True))
    assert (private.status_code, private.json()["code"]) == (422, "private_key_sent")
    taken = await add_key(first.as_dict(private=False), kid=f"{agency}-2026-1")
    assert taken.status_code == 409
    revoked = await client.post(
        f"/agency-keys/{second_kid}/revoke", json={"reason": "compromised"}, headers=headers
    )
    assert revoked.status_code == 204

    listed = (await client.get("/agency-keys", headers=headers)).json()
    assert [(k["kid"], k["revoked_because"]) for k in listed] == [
        (f"{agency}-2026-1", "rotated"),
        (second_kid, "compromised"),
    ]

    kids = {f"{agency}-2026-1", second_kid}

    def mine(records: list[object]) -> list[object]:
        return [r for r in records if r.key and r.key.decode() in kids]  # type: ignore[attr-defined]

    records = await read_all(
        kafka_admin, Topic.IDENTITY_AGENCY_KEYS, until=lambda rs: len(mine(rs)) >= 4
    )
    # Each kid is one record key, so one partition: its records keep their order.
    by_kid: dict[str, list[object]] = {kid: [] for kid in kids}
    for record in mine(records):
        payload = decode(record.value, Topic.IDENTITY_AGENCY_KEYS).payload  # type: ignore[attr-defined]
        by_kid[payload.kid].append(payload)  # type: ignore[attr-defined]
    for kid, payloads in by_kid.items():
        assert [type(p) for p in payloads] == [AgencyKeyPublished, AgencyKeyRevoked], kid
        published = payloads[0]
        assert isinstance(published, AgencyKeyPublished)
        assert published.agency == agency
        assert "d" not in published.jwk

    citizen_token = await client.get("/agency-keys", headers={"authorization": "Bearer x.y.z"})
    assert citizen_token.status_code == 401


async def test_an_agency_system_without_the_keys_scope_may_not_register_or_revoke_keys(
    client: httpx.AsyncClient, kafka_admin: KafkaAccess
) -> None:
    agency = unique("customs")
    await recorded_agency(kafka_admin, agency)
    keeper = await new_client(client, agency, ["identity:agency-keys"])
    exchanging = await new_client(client, agency, ["exchange:request", "exchange:provide"])
    keeper_headers = {"authorization": f"Bearer {await agency_token(client, keeper)}"}
    headers = {"authorization": f"Bearer {await agency_token(client, exchanging)}"}
    jwk = ECKey.generate_key("P-256").as_dict(private=False)

    refused = await client.post("/agency-keys", json={"jwk": jwk}, headers=headers)
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
    registered = await client.post("/agency-keys", json={"jwk": jwk}, headers=keeper_headers)
    assert registered.status_code == 201, registered.text
    kid = registered.json()["kid"]
    not_revoked = await client.post(f"/agency-keys/{kid}/revoke", headers=headers)
    assert (not_revoked.status_code, not_revoked.json()["code"]) == (403, "forbidden")
    listed = (await client.get("/agency-keys", headers=keeper_headers)).json()
    assert [(k["kid"], k["revoked_at"]) for k in listed] == [(kid, None)]


async def test_only_the_platform_operators_clients_may_hold_exchange_admin(
    client: httpx.AsyncClient, kafka_admin: KafkaAccess, settings: IdentitySettings
) -> None:
    agency = unique("health")
    await recorded_agency(kafka_admin, agency)
    await new_client(client, agency, ["metrics:read"])  # the agency reached the projection
    refused = await client.post(
        f"/operator/agencies/{agency}/clients",
        json={"name": "rights console", "scopes": ["exchange:admin"]},
        headers=OPERATOR_HEADERS,
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_scope")

    operator = sorted(settings.operator_agencies)[0]
    await recorded_agency(kafka_admin, operator)
    console = await new_client(client, operator, ["exchange:admin"])
    token = await agency_token(client, console, scope="exchange:admin")
    assert pyjwt.decode(token, options={"verify_signature": False})["scope"] == "exchange:admin"


async def test_issuer_keys_rotate_without_refusing_tokens_already_issued(
    client: httpx.AsyncClient, kafka_admin: KafkaAccess
) -> None:
    agency = unique("post")
    await recorded_agency(kafka_admin, agency)
    created = await new_client(client, agency, ["metrics:read"])
    before = await agency_token(client, created)
    rotated = await client.post("/operator/issuer-keys/rotate", headers=OPERATOR_HEADERS)
    assert rotated.status_code == 200
    new_kid = rotated.json()["kid"]
    after = await agency_token(client, created)
    assert pyjwt.get_unverified_header(after)["kid"] == new_kid
    jwks = pyjwt.PyJWKSet.from_dict((await client.get("/.well-known/jwks.json")).json())
    for token in (before, after):
        kid = pyjwt.get_unverified_header(token)["kid"]
        assert pyjwt.decode(token, jwks[kid].key, algorithms=["ES256"], audience="panjereh")

    # The old key is announced as retiring, after the last token it signed expires.
    old_kid = pyjwt.get_unverified_header(before)["kid"]
    records, _ = await events_about(
        kafka_admin,
        Topic.IDENTITY_ISSUER_KEYS,
        old_kid,
        until=lambda rs: any(b'retired_at":null' not in r.value for r in rs),
    )
    retiring = [k for k in records if isinstance(k, IssuerKeyPublished) and k.retired_at]
    assert retiring
    expires = pyjwt.decode(before, options={"verify_signature": False})["exp"]
    retired_at = retiring[-1].retired_at
    assert retired_at is not None
    assert retired_at.timestamp() > expires
