"""The registers' use cases on a fake unit of work: data services, rights, agencies, keys."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from services.exchange.domain.registers import AccessTerms, DataServiceTerms
from services.exchange.use_cases.registers import (
    access_right,
    data_services,
    grant_access,
    public_keys,
    record_agency,
    record_agency_key,
    register_data_service,
    revoke_access,
    revoke_agency_key,
    signing_key,
)
from services.exchange.use_cases.transactions import take_request
from shared.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from shared.events.exchange import AccessGranted, AccessRevoked, DataServiceRegistered
from shared.events.identity import AgencyKeyPublished, AgencyKeyRevoked
from shared.messages import MESSAGES
from shared.signing import generate_key, public_jwk
from tests.unit.exchange.world import (
    CONSUMER,
    LEGAL_BASIS,
    NOW,
    PROVIDER,
    PURPOSE,
    RIGHT,
    SERVICE_ID,
    ended,
    recorded,
    world,
)

OPERATOR = "platform-operator.5f0c2a9e71d4b386"


def code_of(error: pytest.ExceptionInfo[DomainError]) -> str:
    assert error.value.code in MESSAGES
    return error.value.code


def terms(**changes: Any) -> DataServiceTerms:
    fields: dict[str, Any] = {
        "data_service": f"{PROVIDER}.birth-record",
        "version": 1,
        "name_fa": "گواهی ولادت",
        "name_en": "Birth record",
        "request_schema": {"type": "object"},
        "response_schema": {"type": "object"},
        "timeout_ms": 2000,
        "purposes": [PURPOSE],
        "personal_data": True,
    } | changes
    return DataServiceTerms(**fields)


def right_terms(**changes: Any) -> AccessTerms:
    fields: dict[str, Any] = {
        "consumer": CONSUMER,
        "data_service": SERVICE_ID,
        "purposes": [PURPOSE],
        "legal_basis": LEGAL_BASIS,
        "valid_from": NOW - timedelta(days=1),
    } | changes
    return AccessTerms(**fields)


# Data services.


async def test_a_provider_registers_its_own_data_service_and_it_is_announced() -> None:
    w = world()

    registered = await register_data_service(w.work, PROVIDER, terms())

    assert registered.provider == PROVIDER
    service = w.work.services[f"{PROVIDER}.birth-record"]
    assert (service.provider, service.timeout_ms, service.purposes) == (PROVIDER, 2000, (PURPOSE,))
    (envelope,) = w.work.published
    assert envelope.payload == registered
    assert isinstance(envelope.payload, DataServiceRegistered)
    assert envelope.subject == registered.data_service


@pytest.mark.parametrize("agency", [CONSUMER, None])
async def test_no_one_registers_another_agencys_data_service(agency: str | None) -> None:
    w = world()

    with pytest.raises(Forbidden) as error:
        await register_data_service(w.work, agency, terms())

    assert code_of(error) == "exchange_not_your_data_service"
    assert error.value.detail == f"{PROVIDER}.birth-record is not {agency}'s"
    assert f"{PROVIDER}.birth-record" not in w.work.services
    assert not w.work.published


async def test_a_data_service_with_an_invalid_json_schema_is_refused() -> None:
    w = world()

    with pytest.raises(Invalid) as error:
        await register_data_service(w.work, PROVIDER, terms(response_schema={"type": 12}))

    assert code_of(error) == "exchange_invalid_schema"
    assert error.value.detail is not None
    assert error.value.detail.startswith("response_schema: ")


async def test_an_agency_the_exchange_does_not_know_cannot_register() -> None:
    w = world()
    del w.work.agencies[PROVIDER]

    with pytest.raises(Invalid) as error:
        await register_data_service(w.work, PROVIDER, terms())

    assert code_of(error) == "exchange_unknown_agency"
    assert not w.work.published


async def test_the_data_services_offered_are_listed_by_id_and_by_provider() -> None:
    w = world()
    w.work.agencies["education"] = recorded("education")
    await register_data_service(w.work, "education", terms(data_service="education.diploma"))

    everyone = await data_services(w.work)
    providers = await data_services(w.work, PROVIDER)

    assert [s.data_service for s in everyone] == [
        "civil-registration.vital-status",
        "education.diploma",
    ]
    assert [s.data_service for s in providers] == [SERVICE_ID]


# Access rights.


async def test_a_granted_right_is_kept_and_announced_and_lets_requests_through() -> None:
    w = world()
    w.work.rights.clear()

    granted = await grant_access(w.work, right_terms(), OPERATOR)

    assert w.work.rights[granted.right_id].legal_basis == LEGAL_BASIS
    (envelope,) = w.work.published
    assert isinstance(envelope.payload, AccessGranted)
    assert envelope.subject == str(granted.right_id)
    transaction = await take_request(w.work, w.consumer.request(), now=NOW)
    assert transaction is not None
    assert transaction.status == "pending"


@pytest.mark.parametrize(
    ("changes", "refusal", "code", "detail"),
    [
        pytest.param(
            {"valid_until": NOW - timedelta(days=2)},
            Invalid,
            "exchange_invalid_period",
            None,
            id="a right that ends before it begins is refused",
        ),
        pytest.param(
            {"data_service": "nowhere.nothing"},
            NotFound,
            "exchange_unknown_data_service",
            "nowhere.nothing",
            id="a right to an unknown data service is not found",
        ),
        pytest.param(
            {"purposes": [PURPOSE, "tax-audit", "curiosity"]},
            Invalid,
            "exchange_purpose_not_served",
            "curiosity, tax-audit",
            id="a right for purposes the data service does not serve names them",
        ),
        pytest.param(
            {"consumer": "nobody"},
            Invalid,
            "exchange_unknown_agency",
            "nobody",
            id="a right for an unknown agency is refused",
        ),
    ],
)
async def test_a_right_on_terms_the_register_cannot_honour_is_refused_and_not_granted(
    changes: dict[str, Any], refusal: type[DomainError], code: str, detail: str | None
) -> None:
    w = world()

    with pytest.raises(refusal) as error:
        await grant_access(w.work, right_terms(**changes), OPERATOR)

    assert code_of(error) == code
    if detail is not None:
        assert error.value.detail == detail
    assert list(w.work.rights) == [RIGHT.right_id]


async def test_a_revoked_right_is_announced_and_denies_later_requests() -> None:
    w = world()

    revoked = await revoke_access(w.work, RIGHT.right_id, "agreement ended", OPERATOR, now=NOW)

    assert revoked == AccessRevoked(
        right_id=RIGHT.right_id, reason="agreement ended", revoked_by=OPERATOR
    )
    assert w.work.rights[RIGHT.right_id].revoked_at == NOW
    (envelope,) = w.work.published
    assert envelope.subject == str(RIGHT.right_id)
    ended(await take_request(w.work, w.consumer.request(), now=NOW), "denied", "no_access_right")


async def test_revoking_a_right_that_does_not_exist_is_not_found() -> None:
    w = world()

    with pytest.raises(NotFound) as error:
        await revoke_access(w.work, uuid.uuid4(), "why not", OPERATOR)

    assert code_of(error) == "exchange_unknown_right"


async def test_a_right_is_revoked_only_once() -> None:
    w = world()
    await revoke_access(w.work, RIGHT.right_id, "agreement ended", OPERATOR, now=NOW)

    with pytest.raises(Conflict) as error:
        await revoke_access(
            w.work, RIGHT.right_id, "again", "someone-else", now=NOW + timedelta(hours=1)
        )

    assert code_of(error) == "exchange_right_already_revoked"
    assert w.work.rights[RIGHT.right_id].revoked_at == NOW
    assert w.work.rights[RIGHT.right_id].revoked_by == OPERATOR
    assert len(w.work.published) == 1


async def test_a_grant_records_and_announces_who_made_it() -> None:
    w = world()

    granted = await grant_access(w.work, right_terms(), OPERATOR)

    assert granted.granted_by == OPERATOR
    assert (await access_right(w.work, granted.right_id)).granted_by == OPERATOR
    (envelope,) = w.work.published
    assert isinstance(envelope.payload, AccessGranted)
    assert envelope.payload.granted_by == OPERATOR
    assert envelope.schema_version == 2


async def test_a_revocation_records_and_announces_who_made_it_and_why() -> None:
    w = world()

    await revoke_access(w.work, RIGHT.right_id, "agreement ended", OPERATOR, now=NOW)

    right = await access_right(w.work, RIGHT.right_id)
    assert (right.revoked_at, right.revoked_by, right.revoked_reason) == (
        NOW,
        OPERATOR,
        "agreement ended",
    )
    (envelope,) = w.work.published
    assert isinstance(envelope.payload, AccessRevoked)
    assert envelope.payload.revoked_by == OPERATOR


async def test_a_right_the_register_does_not_hold_is_not_found() -> None:
    with pytest.raises(NotFound) as error:
        await access_right(world().work, uuid.uuid4())

    assert code_of(error) == "exchange_unknown_right"


# The exchange's own keys.


async def test_the_public_keys_are_the_signing_keys_made_on_first_use_without_private_parts() -> (
    None
):
    w = world()

    keys = await public_keys(w.work)

    signer = await w.work.signer()
    assert keys == [(signer.kid, public_jwk(signer.key))]
    assert all("d" not in jwk for _, jwk in keys)
    assert await public_keys(w.work) == keys


async def test_the_signing_key_is_the_one_signed_with_and_listed() -> None:
    w = world()

    kid = await signing_key(w.work)

    assert kid == (await w.work.signer()).kid
    assert [listed for listed, _ in await public_keys(w.work)] == [kid]
    assert await signing_key(w.work) == kid


# Agencies and their keys, projected.


async def test_an_agency_is_kept_at_its_latest_revision() -> None:
    w = world()
    await record_agency(w.work, recorded("education", revision=2))

    await record_agency(w.work, recorded("education", active=False, revision=1))

    agency = await w.work.agency("education")
    assert agency is not None
    assert agency.active is True


def key_record(agency: str, kid: str, key: Any = None) -> AgencyKeyPublished:
    return AgencyKeyPublished(
        agency=agency,
        kid=kid,
        algorithm="ES256",
        jwk=public_jwk(key or generate_key()),
        not_before=NOW,
        expires_at=None,
    )


async def test_a_published_key_is_kept() -> None:
    w = world()
    published = key_record("education", "education-1")

    await record_agency_key(w.work, published)

    assert w.work.keys["education-1"].jwk == published.jwk


async def test_a_key_record_cannot_move_a_known_kid_to_another_agency_or_key() -> None:
    w = world()
    kid = w.provider.kid

    with pytest.raises(Conflict) as elsewhere:
        await record_agency_key(w.work, key_record("education", kid))
    with pytest.raises(Conflict) as swapped:
        await record_agency_key(w.work, key_record(PROVIDER, kid))

    assert str(elsewhere.value) == (
        f"kid_taken: key {kid} is already another agency's or another key; "
        "a record for education cannot move it"
    )
    assert code_of(swapped) == "kid_taken"
    assert w.work.keys[kid] == w.provider.published()


async def test_a_revoked_key_stays_revoked_from_its_first_revocation() -> None:
    w = world()
    revocation = AgencyKeyRevoked(agency=PROVIDER, kid=w.provider.kid, reason="leaked")

    await revoke_agency_key(w.work, revocation, NOW)
    await revoke_agency_key(w.work, revocation, NOW + timedelta(hours=1))

    assert w.work.keys[w.provider.kid].revoked_at == NOW


async def test_only_its_own_agency_revokes_a_key() -> None:
    w = world()
    revocation = AgencyKeyRevoked(agency="education", kid=w.provider.kid, reason="spite")

    with pytest.raises(Conflict) as error:
        await revoke_agency_key(w.work, revocation, NOW)

    assert str(error.value) == f"kid_taken: key {w.provider.kid} is not education's to revoke"
    assert w.work.keys[w.provider.kid].revoked_at is None
