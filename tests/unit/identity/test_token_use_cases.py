"""Token use cases on a fake unit of work: refresh, revocation, client credentials."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.identity.domain.tokens import hash_secret
from services.identity.use_cases import agencies, tokens
from services.identity.use_cases.ports import Dependencies
from shared.errors import NotAuthenticated
from shared.events.identity import AuthenticationFailed, SessionRevoked
from tests.unit.identity.conftest import NOW, agency, project
from tests.unit.identity.fakes import FakeHasher, FakeIdentity, FakeSigner, Family


async def session(storage: FakeIdentity, deps: Dependencies) -> tokens.TokenResponse:
    """A citizen's session as a sign-in leaves it, with its first tokens."""
    new, response = tokens.new_session(
        deps, citizen="citizen-1", channel="app", level_of_assurance=2, now=NOW
    )
    storage.state.families[new.family_id] = Family(
        new.citizen, new.channel, new.level_of_assurance, NOW
    )
    await storage.insert_refresh_token(new.first_token_hash, new.family_id, NOW, new.expires_at)
    return response


async def test_a_refresh_token_is_spent_for_new_tokens_of_the_same_session(
    storage: FakeIdentity, deps: Dependencies, signer: FakeSigner
) -> None:
    first = await session(storage, deps)
    assert first.refresh_token is not None
    later = NOW + timedelta(minutes=5)
    second = await tokens.refresh(storage, deps, first.refresh_token, later)
    assert second.refresh_token is not None
    assert second.refresh_token != first.refresh_token
    assert storage.state.tokens[hash_secret(first.refresh_token)].rotated_at == later
    old, new = signer.signed[first.access_token], signer.signed[second.access_token]
    assert (new["sub"], new["sid"], new["channel"]) == ("citizen-1", old["sid"], "app")
    assert second.expires_in == deps.settings.access_token_seconds


async def test_a_spent_refresh_token_presented_again_revokes_its_session(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    first = await session(storage, deps)
    assert first.refresh_token is not None
    second = await tokens.refresh(storage, deps, first.refresh_token, NOW)
    with pytest.raises(tokens.InvalidGrant) as refusal:
        await tokens.refresh(storage, deps, first.refresh_token, NOW)
    assert (refusal.value.code, refusal.value.status) == ("invalid_grant", 400)
    [family] = storage.state.families.values()
    assert family.revoked_because == "refresh token reused"
    assert second.refresh_token is not None
    with pytest.raises(tokens.InvalidGrant):
        await tokens.refresh(storage, deps, second.refresh_token, NOW)


async def test_an_unknown_or_expired_refresh_token_is_an_invalid_grant(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    with pytest.raises(tokens.InvalidGrant, match="not valid"):
        await tokens.refresh(storage, deps, "never-issued", NOW)
    first = await session(storage, deps)
    assert first.refresh_token is not None
    with pytest.raises(tokens.InvalidGrant, match="not valid"):
        await tokens.refresh(storage, deps, first.refresh_token, NOW + deps.refresh_lifetime)


async def test_revoking_a_refresh_token_ends_its_session(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    first = await session(storage, deps)
    assert first.refresh_token is not None
    sid = str(next(iter(storage.state.families)))
    assert await tokens.session_active(storage, sid)
    await tokens.revoke(storage, deps, first.refresh_token, NOW)
    assert not await tokens.session_active(storage, sid)
    [family] = storage.state.families.values()
    assert family.revoked_because == "revoked by the holder"


async def test_revoking_an_access_token_ends_the_session_it_names(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    first = await session(storage, deps)
    await tokens.revoke(storage, deps, first.access_token, NOW)
    [family] = storage.state.families.values()
    assert family.revoked_at == NOW


async def test_revoking_a_token_nobody_issued_is_not_an_error(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    await tokens.revoke(storage, deps, "never-issued", NOW)
    assert storage.published == []


async def test_a_malformed_session_id_is_not_an_active_session(storage: FakeIdentity) -> None:
    assert not await tokens.session_active(storage, "not-a-uuid")


# Client credentials -----------------------------------------------------------------


async def agency_with_client(
    storage: FakeIdentity, deps: Dependencies, *, active: bool = True
) -> agencies.NewClient:
    await project(storage, agency(1))
    created = await agencies.create_client(
        storage,
        deps,
        agency="education",
        name="records",
        scopes=["exchange:request", "catalog:write"],
        now=NOW,
    )
    storage.state.agencies["education"]["active"] = active
    return created


async def token_for(
    storage: FakeIdentity,
    deps: Dependencies,
    client: agencies.NewClient,
    *,
    secret: str | None = None,
    scope: str | None = None,
) -> tokens.TokenResponse:
    """The client-credentials grant for a client, with its own secret unless told otherwise."""
    return await tokens.client_credentials(
        storage,
        deps,
        client_id=client.client_id,
        client_secret=client.client_secret if secret is None else secret,
        scope=scope,
        now=NOW,
    )


async def test_a_client_that_proves_its_secret_gets_a_token_with_its_scopes(
    storage: FakeIdentity, deps: Dependencies, signer: FakeSigner
) -> None:
    client = await agency_with_client(storage, deps)
    response = await token_for(storage, deps, client)
    assert response.scope == "catalog:write exchange:request"
    assert response.refresh_token is None
    claims = signer.signed[response.access_token]
    assert (claims["sub"], claims["agency"]) == (client.client_id, "education")


async def test_a_client_may_ask_for_fewer_scopes_but_not_more(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    client = await agency_with_client(storage, deps)
    fewer = await token_for(storage, deps, client, scope="exchange:request")
    assert fewer.scope == "exchange:request"
    with pytest.raises(tokens.InvalidGrant) as refusal:
        await token_for(storage, deps, client, scope="exchange:admin")
    assert (refusal.value.code, refusal.value.status) == ("invalid_scope", 400)


async def test_a_wrong_secret_is_refused_and_announced(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    client = await agency_with_client(storage, deps)
    with pytest.raises(NotAuthenticated) as refusal:
        await token_for(storage, deps, client, secret="guess")
    assert (refusal.value.code, refusal.value.status) == ("invalid_client", 401)
    assert refusal.value.headers == {"www-authenticate": 'Basic realm="panjereh"'}
    [failed] = storage.payloads(AuthenticationFailed)
    assert (failed.agency, failed.reason, failed.channel) == (
        "education",
        "invalid_client_credentials",
        "agency_system",
    )


async def test_an_unknown_client_is_refused_like_a_wrong_secret(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    with pytest.raises(NotAuthenticated, match="invalid_client"):
        await tokens.client_credentials(
            storage, deps, client_id="nobody", client_secret="guess", scope=None, now=NOW
        )
    [envelope] = storage.published
    assert envelope.payload.agency is None
    assert envelope.subject == "unknown-client"


async def test_a_revoked_client_or_inactive_agency_is_refused(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    client = await agency_with_client(storage, deps, active=False)
    with pytest.raises(NotAuthenticated):
        await token_for(storage, deps, client)
    storage.state.agencies["education"]["active"] = True
    async with storage.transaction() as work:
        await agencies.revoke_client(work, "education", client.client_id, NOW)
    with pytest.raises(NotAuthenticated):
        await token_for(storage, deps, client)


async def test_a_secret_hashed_with_old_parameters_is_hashed_again(
    storage: FakeIdentity, deps: Dependencies, hasher: FakeHasher
) -> None:
    client = await agency_with_client(storage, deps)
    stored = storage.state.clients[client.client_id]
    assert stored["secret_hash"] == f"v1:{client.client_secret}"
    hasher.version = 2
    await token_for(storage, deps, client)
    assert stored["secret_hash"] == f"v2:{client.client_secret}"


# Sessions: absolute lifetime and revocation ------------------------------------------


async def test_refreshing_never_extends_a_session_past_its_absolute_lifetime(
    storage: FakeIdentity, deps: Dependencies, signer: FakeSigner
) -> None:
    absolute = timedelta(hours=deps.settings.session_lifetime_hours)
    response = await session(storage, deps)
    # Refreshed every day, as an app in daily use would: each refresh keeps it alive...
    moment = NOW
    while moment + timedelta(days=1) < NOW + absolute:
        moment += timedelta(days=1)
        assert response.refresh_token is not None
        response = await tokens.refresh(storage, deps, response.refresh_token, moment)
        new_token = storage.state.tokens[hash_secret(response.refresh_token or "")]
        assert new_token.expires_at <= NOW + absolute
        assert signer.signed[response.access_token]["exp"] <= (NOW + absolute).timestamp()
    # ...until the session is as old as its absolute lifetime: then it ends.
    assert response.refresh_token is not None
    with pytest.raises(tokens.InvalidGrant) as refusal:
        await tokens.refresh(storage, deps, response.refresh_token, NOW + absolute)
    assert refusal.value.code == "invalid_grant"


async def test_the_last_access_token_of_a_session_expires_with_the_session(
    storage: FakeIdentity, deps: Dependencies, signer: FakeSigner
) -> None:
    ends = NOW + timedelta(hours=deps.settings.session_lifetime_hours)
    first = await session(storage, deps)
    assert first.refresh_token is not None
    shortly_before = ends - timedelta(seconds=60)
    # A refresh token issued before this release may outlive the session: still refused.
    storage.state.tokens[hash_secret(first.refresh_token)].expires_at = ends + timedelta(days=9)
    last = await tokens.refresh(storage, deps, first.refresh_token, shortly_before)
    assert last.expires_in == 60
    assert signer.signed[last.access_token]["exp"] == int(ends.timestamp())
    assert storage.state.tokens[hash_secret(last.refresh_token or "")].expires_at == ends


async def test_a_session_whose_absolute_lifetime_passed_is_refused_even_with_a_long_lived_token(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    ends = NOW + timedelta(hours=deps.settings.session_lifetime_hours)
    first = await session(storage, deps)
    assert first.refresh_token is not None
    storage.state.tokens[hash_secret(first.refresh_token)].expires_at = ends + timedelta(days=9)
    with pytest.raises(tokens.InvalidGrant, match="absolute lifetime"):
        await tokens.refresh(storage, deps, first.refresh_token, ends)


async def test_revoking_a_session_publishes_it_once_for_every_verifier(
    storage: FakeIdentity, deps: Dependencies, signer: FakeSigner
) -> None:
    first = await session(storage, deps)
    assert first.refresh_token is not None
    sid = signer.signed[first.access_token]["sid"]
    await tokens.revoke(storage, deps, first.refresh_token, NOW)
    await tokens.revoke(storage, deps, first.access_token, NOW)
    [envelope] = [e for e in storage.published if isinstance(e.payload, SessionRevoked)]
    assert envelope.subject == sid
    assert (str(envelope.payload.session), envelope.payload.reason) == (sid, "signed_out")
    assert envelope.payload.tokens_expire_by == NOW + deps.access_lifetime


async def test_a_replayed_refresh_token_publishes_its_sessions_revocation(
    storage: FakeIdentity, deps: Dependencies
) -> None:
    first = await session(storage, deps)
    assert first.refresh_token is not None
    await tokens.refresh(storage, deps, first.refresh_token, NOW)
    with pytest.raises(tokens.InvalidGrant):
        await tokens.refresh(storage, deps, first.refresh_token, NOW)
    [revoked] = storage.payloads(SessionRevoked)
    assert revoked.reason == "refresh_token_reused"
