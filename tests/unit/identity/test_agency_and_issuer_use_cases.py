"""Agencies' and the issuer's use cases on a fake unit of work: the projection of the
register, client credentials, agencies' keys, the issuer's own keys."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from joserfc.jwk import ECKey

from services.identity.domain.agency_keys import thumbprint
from services.identity.domain.tokens import OPERATOR_SCOPES, SigningKey, new_signing_key
from services.identity.settings import IdentitySettings
from services.identity.use_cases import agencies, issuer, tokens
from services.identity.use_cases.ports import Dependencies
from shared.auth import Principal
from shared.errors import Conflict, Forbidden, Invalid, NotFound
from shared.events.identity import AgencyKeyPublished, AgencyKeyRevoked, IssuerKeyPublished
from tests.unit.identity.conftest import NOW, agency, project
from tests.unit.identity.fakes import FakeIdentity, FakeSigner


async def new_client(
    storage: FakeIdentity,
    deps: Dependencies,
    *,
    name: str = "x",
    scopes: list[str] | None = None,
) -> agencies.NewClient:
    """A client the education agency asks for, allowed to write to the catalog by default."""
    return await agencies.create_client(
        storage,
        deps,
        agency="education",
        name=name,
        scopes=["catalog:write"] if scopes is None else scopes,
        now=NOW,
    )


def public_jwk() -> dict[str, Any]:
    return dict(ECKey.generate_key("P-256", private=True).as_dict(private=False))


# The projection ---------------------------------------------------------------------


async def test_the_projection_keeps_an_agencys_newest_revision(storage: FakeIdentity) -> None:
    await project(storage, agency(2, name="Second"))
    await project(storage, agency(1, name="First"))
    assert storage.state.agencies["education"]["name_en"] == "Second"
    await project(storage, agency(3, name="Third"))
    assert storage.state.agencies["education"]["name_en"] == "Third"


# Client credentials -----------------------------------------------------------------


async def test_a_new_client_of_an_active_agency_gets_a_secret_stored_only_hashed(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    await project(storage, agency(1))
    created = await new_client(storage, deps, name="records")
    assert created.client_id.startswith("education.")
    assert created.scopes == ["catalog:write"]
    stored = storage.state.clients[created.client_id]
    assert stored["secret_hash"] == deps.hasher.hash(created.client_secret)
    [listed] = await agencies.clients(storage, "education")
    assert "secret_hash" not in listed
    assert listed["client_id"] == created.client_id


async def test_a_client_with_unknown_or_no_scopes_is_invalid(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    await project(storage, agency(1))
    for scopes, detail in ((["catalog:write", "root"], "unknown scopes: root"), ([], "at least")):
        with pytest.raises(Invalid, match=detail) as refusal:
            await new_client(storage, deps, scopes=scopes)
        assert refusal.value.code == "invalid_scope"
    assert storage.state.clients == {}


async def test_no_client_for_an_unknown_or_inactive_agency(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    with pytest.raises(NotFound, match="unknown_agency"):
        await new_client(storage, deps)
    await project(storage, agency(1, active=False))
    with pytest.raises(NotFound, match="unknown_agency"):
        await new_client(storage, deps)


async def test_revoking_a_client_another_agency_owns_is_not_found(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    await project(storage, agency(1))
    created = await new_client(storage, deps)
    with pytest.raises(NotFound, match="unknown_client"):
        async with storage.transaction() as work:
            await agencies.revoke_client(work, "health", created.client_id, NOW)
    async with storage.transaction() as work:
        await agencies.revoke_client(work, "education", created.client_id, NOW)
    assert storage.state.clients[created.client_id]["revoked_at"] == NOW


# Agencies' keys ---------------------------------------------------------------------


def system_of(agency: str, *scopes: str) -> Principal:
    """A verified token of one of the agency's systems, holding `scopes`."""
    return Principal(
        subject=f"{agency}.client",
        agency=agency,
        scopes=frozenset(scopes),
        level_of_assurance=None,
        token_id="t1",
        claims={},
    )


KEEPER = system_of("education", "identity:agency-keys")


async def register(
    storage: FakeIdentity, jwk: dict[str, Any], keeper: Principal = KEEPER, **given: Any
) -> AgencyKeyPublished:
    return await agencies.register_key(
        storage, agencies.KeyRequest(jwk, **given), keeper=keeper, now=NOW
    )


async def test_an_agency_key_is_registered_and_published_under_its_thumbprint(
    storage: FakeIdentity,
) -> None:
    jwk = public_jwk()
    published = await register(storage, jwk)
    assert published.kid == f"education-{thumbprint(jwk)}"
    assert (published.algorithm, published.not_before) == ("ES256", NOW)
    assert storage.payloads() == [published]
    [listed] = await agencies.keys_of(storage, "education")
    assert listed["registered_by"] == "education.client"


async def test_a_taken_kid_conflicts_and_publishes_nothing(storage: FakeIdentity) -> None:
    await register(storage, public_jwk(), kid="k1")
    with pytest.raises(Conflict, match="key_exists"):
        await register(storage, public_jwk(), kid="k1")
    assert len(storage.published) == 1


async def test_a_key_that_expires_before_it_is_valid_is_invalid(storage: FakeIdentity) -> None:
    with pytest.raises(Invalid, match="invalid_key"):
        await register(storage, public_jwk(), expires_at=NOW - timedelta(seconds=1))


async def test_a_private_key_is_refused(storage: FakeIdentity) -> None:
    private = dict(ECKey.generate_key("P-256", private=True).as_dict(private=True))
    with pytest.raises(Invalid, match="private_key_sent"):
        await register(storage, private)
    assert storage.published == []


async def test_a_new_key_that_replaces_another_revokes_it_in_the_same_transaction(
    storage: FakeIdentity,
) -> None:
    await register(storage, public_jwk(), kid="old")
    await register(storage, public_jwk(), kid="new", replaces="old")
    revoked = storage.payloads(AgencyKeyRevoked)
    assert [(r.kid, r.reason) for r in revoked] == [("old", "rotated")]
    with pytest.raises(NotFound, match="unknown_key"):
        await register(storage, public_jwk(), kid="newer", replaces="missing")
    assert "newer" not in storage.state.agency_keys, "the refusal rolled the new key back"


async def test_a_key_is_revoked_and_announced_once(storage: FakeIdentity) -> None:
    await register(storage, public_jwk(), kid="k1")
    for _ in range(2):
        async with storage.transaction() as work:
            await agencies.revoke_key(work, "education", "k1", "lost", NOW)
    assert [r.reason for r in storage.payloads(AgencyKeyRevoked)] == ["lost"]
    with pytest.raises(NotFound, match="unknown_key"):
        async with storage.transaction() as work:
            await agencies.revoke_key(work, "health", "k1", "lost", NOW)


async def test_an_agency_system_without_the_keys_scope_registers_and_revokes_no_key(
    storage: FakeIdentity,
) -> None:
    exchanging = system_of("education", "exchange:request", "exchange:provide")
    with pytest.raises(Forbidden, match="identity:agency-keys") as refusal:
        await register(storage, public_jwk(), keeper=exchanging, kid="k1")
    assert refusal.value.status == 403
    await register(storage, public_jwk(), kid="k1")
    with pytest.raises(Forbidden, match="identity:agency-keys"):
        async with storage.transaction() as work:
            await agencies.revoke_own_key(work, exchanging, "k1", "lost", NOW)
    assert storage.state.agency_keys["k1"]["revoked_at"] is None
    assert len(storage.published) == 1


async def test_an_agency_system_revokes_only_its_own_agencys_keys(storage: FakeIdentity) -> None:
    await register(storage, public_jwk(), kid="k1")
    other = system_of("health", "identity:agency-keys")
    with pytest.raises(NotFound, match="unknown_key"):
        async with storage.transaction() as work:
            await agencies.revoke_own_key(work, other, "k1", "lost", NOW)
    async with storage.transaction() as work:
        await agencies.revoke_own_key(work, KEEPER, "k1", "lost", NOW)
    assert [r.kid for r in storage.payloads(AgencyKeyRevoked)] == ["k1"]


# The operator's scopes --------------------------------------------------------------


@pytest.mark.parametrize("scope", ["exchange:admin", "programme:admin"])
async def test_an_operators_scope_is_given_to_the_platform_operators_clients_alone(
    storage: FakeIdentity, deps: Dependencies, scope: str
) -> None:
    assert scope in OPERATOR_SCOPES
    await project(storage, agency(1))
    with pytest.raises(Invalid, match=scope) as refusal:
        await new_client(storage, deps, scopes=["exchange:request", scope])
    assert refusal.value.code == "invalid_scope"
    assert storage.state.clients == {}
    operator = next(iter(deps.settings.operator_agencies))
    await project(storage, agency(1).model_copy(update={"code": operator}))
    created = await agencies.create_client(
        storage, deps, agency=operator, name="console", scopes=[scope], now=NOW
    )
    assert created.scopes == [scope]


@pytest.mark.parametrize("scope", ["exchange:admin", "programme:admin"])
async def test_a_client_given_an_operators_scope_outside_the_operator_is_never_issued_it(
    storage: FakeIdentity, deps: Dependencies, signer: FakeSigner, scope: str
) -> None:
    await project(storage, agency(1))
    client = await new_client(storage, deps, scopes=["catalog:write", "exchange:request"])
    # As a client created before only the operator's could hold it would be stored.
    storage.state.clients[client.client_id]["scopes"] = sorted(
        ["catalog:write", scope, "exchange:request"]
    )

    async def token(scope: str | None = None) -> tokens.TokenResponse:
        return await tokens.client_credentials(
            storage,
            deps,
            client_id=client.client_id,
            client_secret=client.client_secret,
            scope=scope,
            now=NOW,
        )

    response = await token()
    assert response.scope == "catalog:write exchange:request"
    assert scope not in signer.signed[response.access_token]["scope"]
    with pytest.raises(tokens.InvalidGrant, match="invalid_scope"):
        await token(scope)


async def test_programme_report_is_given_to_the_provincial_directorates_clients_alone(
    storage: FakeIdentity, deps: Dependencies, signer: FakeSigner
) -> None:
    await project(storage, agency(1))
    with pytest.raises(Invalid, match="programme:report") as refusal:
        await new_client(storage, deps, scopes=["programme:report"])
    assert refusal.value.code == "invalid_scope"
    operator = next(iter(deps.settings.operator_agencies))
    await project(storage, agency(1).model_copy(update={"code": operator}))
    with pytest.raises(Invalid, match="programme:report"):
        await agencies.create_client(
            storage, deps, agency=operator, name="console", scopes=["programme:report"], now=NOW
        )
    assert storage.state.clients == {}

    lorestan = agency(1).model_copy(update={"code": "ict-ir-15", "province": "IR-15"})
    await project(storage, lorestan)
    created = await agencies.create_client(
        storage,
        deps,
        agency="ict-ir-15",
        name="weekly reports",
        scopes=["programme:report"],
        now=NOW,
    )
    assert created.scopes == ["programme:report"]
    issued = await tokens.client_credentials(
        storage,
        deps,
        client_id=created.client_id,
        client_secret=created.client_secret,
        scope="programme:report",
        now=NOW,
    )
    claims = signer.signed[issued.access_token]
    assert (claims["agency"], claims["scope"]) == ("ict-ir-15", "programme:report")


# The issuer's keys ------------------------------------------------------------------


async def a_stored_signing_key(storage: FakeIdentity) -> SigningKey:
    """An issuer key made and valid from NOW, already in storage."""
    key = new_signing_key(NOW, NOW)
    await storage.insert_issuer_key(key)
    return key


async def test_the_first_key_is_created_and_published(
    storage: FakeIdentity, settings: IdentitySettings
) -> None:
    async with storage.transaction() as work:
        await issuer.ensure_key(work, settings, NOW)
    [key] = storage.state.issuer_keys.values()
    assert key.not_before == NOW
    [event] = storage.payloads(IssuerKeyPublished)
    assert (event.kid, event.issuer) == (key.kid, "http://identity.test")


async def test_existing_keys_are_published_again_under_the_current_issuer(
    storage: FakeIdentity, settings: IdentitySettings
) -> None:
    old = await a_stored_signing_key(storage)
    async with storage.transaction() as work:
        await issuer.ensure_key(work, settings, NOW)
    assert list(storage.state.issuer_keys) == [old.kid]
    [event] = storage.payloads(IssuerKeyPublished)
    assert (event.kid, event.issuer) == (old.kid, "http://identity.test")


async def test_no_rotation_before_the_newest_key_is_old_enough(
    storage: FakeIdentity, settings: IdentitySettings
) -> None:
    await a_stored_signing_key(storage)
    async with storage.transaction() as work:
        assert await issuer.rotate(work, settings, NOW + timedelta(days=1)) is None
    assert storage.published == []


async def test_a_rotation_publishes_a_successor_and_retires_the_old_key_after_its_tokens(
    storage: FakeIdentity, settings: IdentitySettings
) -> None:
    old = await a_stored_signing_key(storage)
    async with storage.transaction() as work:
        new = await issuer.rotate(work, settings, NOW, force=True)
    assert new is not None
    assert new.not_before == NOW + timedelta(seconds=settings.key_publish_ahead_seconds)
    retired = storage.state.issuer_keys[old.kid].retired_at
    assert retired is not None
    assert retired > new.not_before + timedelta(seconds=settings.access_token_seconds) - timedelta(
        seconds=1
    )
    events = storage.payloads(IssuerKeyPublished)
    assert [(e.kid, e.retired_at) for e in events] == [(old.kid, retired), (new.kid, None)]
