"""Tokens from identity are verified locally, with its published keys alone.

No `from __future__ import annotations` here: FastAPI must see the route annotations,
which name dependencies local to the test, as objects.
"""

import asyncio
import time
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Annotated, Any, cast

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey

from shared.auth import (
    CLOCK_SKEW_SECONDS,
    InvalidToken,
    IssuerKeys,
    Principal,
    RevokedSessions,
    require,
)
from shared.events.identity import IssuerKeyPublished, SessionRevoked
from shared.http import ProblemError, install_problem_handlers
from shared.kafka_access import KafkaAccess
from tests.tokens import access_claims, new_issuer_key, signed

ISSUER = "https://identity.test"


def new_key(kid: str) -> tuple[ECKey, IssuerKeyPublished]:
    return new_issuer_key(ISSUER, kid)


def token(key: ECKey, **overrides: Any) -> str:
    claims = access_claims(ISSUER, "client-1", "catalog:write catalog:deliveries", seconds=300)
    claims |= {"agency": "education", "jti": "t1"} | overrides
    return signed(key, {k: v for k, v in claims.items() if v is not None})


@pytest.fixture
def keys() -> tuple[ECKey, IssuerKeys]:
    key, record = new_key("k1")
    projection = IssuerKeys(None, issuer=ISSUER)
    projection.apply(record)
    return key, projection


def test_a_valid_token_yields_its_principal(keys: tuple[ECKey, IssuerKeys]) -> None:
    key, projection = keys
    principal = projection.verify(token(key))
    assert principal.agency == "education"
    assert principal.has("catalog:write")
    assert not principal.has("exchange:request")


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": int(time.time()) - 120}, "expired"),
        ({"aud": "elsewhere"}, "not meant for Panjereh"),
        ({"iss": "https://impostor"}, "another issuer"),
        ({"nbf": int(time.time()) + 3600}, "not valid yet"),
    ],
)
def test_tokens_failing_their_claims_are_refused(
    keys: tuple[ECKey, IssuerKeys], overrides: dict[str, Any], reason: str
) -> None:
    key, projection = keys
    with pytest.raises(InvalidToken, match=reason):
        projection.verify(token(key, **overrides))


def test_a_token_signed_by_an_unpublished_key_is_refused(
    keys: tuple[ECKey, IssuerKeys],
) -> None:
    _, projection = keys
    stranger, _ = new_key("k1")  # same kid, different key: a forgery
    with pytest.raises(InvalidToken, match="bad signature"):
        projection.verify(token(stranger))
    unknown, _ = new_key("k9")
    with pytest.raises(InvalidToken, match="not signed by a key identity published"):
        projection.verify(token(unknown))


def test_a_retired_key_no_longer_verifies(keys: tuple[ECKey, IssuerKeys]) -> None:
    key, projection = keys
    _, record = new_key("k1")
    retired = record.model_copy(
        update={"jwk": key.as_dict(private=False), "retired_at": datetime.now(UTC)}
    )
    projection.apply(retired)
    with pytest.raises(InvalidToken, match="retired"):
        projection.verify(token(key))


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "!!!.???.***"])
def test_garbage_is_refused_not_crashed_on(keys: tuple[ECKey, IssuerKeys], garbage: str) -> None:
    _, projection = keys
    with pytest.raises(InvalidToken):
        projection.verify(garbage)


def test_the_dependency_answers_401_and_403_as_problems(keys: tuple[ECKey, IssuerKeys]) -> None:
    key, projection = keys
    app = FastAPI()
    install_problem_handlers(app)

    def projection_of(_: Request) -> IssuerKeys:
        return projection

    can_write = require(projection_of, "catalog:write")
    can_administer = require(projection_of, "exchange:admin")

    @app.post("/services")
    async def write(principal: Annotated[Principal, Depends(can_write)]) -> str:
        return principal.subject

    @app.post("/rights")
    async def admin(principal: Annotated[Principal, Depends(can_administer)]) -> str:
        return principal.subject

    client = TestClient(app)
    assert client.post("/services").status_code == 401
    assert client.post("/services", headers={"authorization": "Bearer nonsense"}).status_code == 401
    good = {"authorization": f"Bearer {token(key)}"}
    assert client.post("/services", headers=good).json() == "client-1"
    refused = client.post("/rights", headers=good)
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"


def test_a_key_published_for_another_issuer_is_ignored_and_its_tokens_refused() -> None:
    key, record = new_key("intruder")
    projection = IssuerKeys(None, issuer=ISSUER)
    forged = record.model_copy(update={"issuer": "https://attacker.example"})
    assert projection.apply(forged) is False
    with pytest.raises(InvalidToken, match="not signed by a key identity published"):
        projection.verify(token(key, iss="https://attacker.example"))
    with pytest.raises(InvalidToken, match="not signed by a key identity published"):
        projection.verify(token(key))


def revocation(session: uuid.UUID, expire_by: float) -> SessionRevoked:
    return SessionRevoked(
        session=session,
        reason="signed_out",
        tokens_expire_by=datetime.fromtimestamp(expire_by, UTC),
    )


def test_a_token_of_a_revoked_session_is_refused_and_other_sessions_are_not(
    keys: tuple[ECKey, IssuerKeys],
) -> None:
    key, projection = keys
    revoked, other = uuid.uuid4(), uuid.uuid4()
    projection.verify(token(key, sid=str(revoked)))
    projection.apply_revocation(revocation(revoked, time.time() + 300))
    with pytest.raises(InvalidToken, match="session was revoked"):
        projection.verify(token(key, sid=str(revoked)))
    assert projection.verify(token(key, sid=str(other))).subject == "client-1"


# A token presented again is remembered: its signature is not checked again, all else is.


def test_a_token_presented_again_is_not_verified_again(
    keys: tuple[ECKey, IssuerKeys], monkeypatch: pytest.MonkeyPatch
) -> None:
    key, projection = keys
    decoded: list[str] = []
    real_decode = jwt.decode

    def counting_decode(value: str, *args: Any, **kwargs: Any) -> Any:
        decoded.append(value)
        return real_decode(value, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting_decode)
    presented = token(key)
    for _ in range(3):
        assert projection.verify(presented).agency == "education"
    assert decoded == [presented]


def test_a_remembered_token_is_still_refused_once_expired(
    keys: tuple[ECKey, IssuerKeys],
) -> None:
    key, projection = keys
    now = time.time()
    presented = token(key, exp=int(now) + 60)
    projection.verify(presented, now=now)
    with pytest.raises(InvalidToken, match="expired"):
        projection.verify(presented, now=now + 60 + CLOCK_SKEW_SECONDS + 1)


def test_a_remembered_token_is_refused_once_its_session_is_revoked(
    keys: tuple[ECKey, IssuerKeys],
) -> None:
    key, projection = keys
    session = uuid.uuid4()
    presented = token(key, sid=str(session))
    projection.verify(presented)
    projection.apply_revocation(revocation(session, time.time() + 300))
    with pytest.raises(InvalidToken, match="session was revoked"):
        projection.verify(presented)


def test_a_remembered_token_is_refused_once_its_key_is_retired_or_replaced(
    keys: tuple[ECKey, IssuerKeys],
) -> None:
    key, projection = keys
    presented = token(key)
    projection.verify(presented)
    _, record = new_key("k1")
    public = key.as_dict(private=False)
    soon = datetime.fromtimestamp(time.time() + 60, UTC)
    projection.apply(record.model_copy(update={"jwk": public, "retired_at": soon}))
    projection.verify(presented)  # retired in a minute: still good now
    with pytest.raises(InvalidToken, match="retired"):
        projection.verify(presented, now=time.time() + 61)
    # The kid now names another key: what the old one signed proves nothing any more.
    projection.apply(record)
    with pytest.raises(InvalidToken, match="bad signature"):
        projection.verify(presented)


def test_remembered_tokens_are_bounded_oldest_forgotten_first(
    keys: tuple[ECKey, IssuerKeys],
) -> None:
    key, projection = keys
    projection.verified_kept = 2
    first, second, third = token(key), token(key), token(key)
    for presented in (first, second, third):
        projection.verify(presented)
    assert list(projection._verified) == [second, third]


def test_revoked_sessions_are_forgotten_once_their_last_tokens_expired() -> None:
    sessions = RevokedSessions()
    # Whole seconds: a datetime keeps microseconds, and the edge below is exact.
    now = float(int(time.time()))
    old, recent = uuid.uuid4(), uuid.uuid4()
    sessions.apply(revocation(old, now - CLOCK_SKEW_SECONDS - 1))
    sessions.apply(revocation(recent, now + 300))
    assert not sessions.revoked(str(old), now)
    sessions.forget_expired(now)
    assert len(sessions) == 1
    assert sessions.revoked(str(recent), now)
    # Kept while a token of it could still pass the clock skew, and not a moment longer.
    assert sessions.revoked(str(recent), now + 300 + CLOCK_SKEW_SECONDS)
    sessions.forget_expired(now + 300 + CLOCK_SKEW_SECONDS + 61)
    assert len(sessions) == 0


async def test_the_dependency_waits_for_a_following_projection_to_catch_up() -> None:
    key, record = new_key("k1")
    projection = IssuerKeys(cast(KafkaAccess, object()), issuer=ISSUER)
    projection.apply(record)
    revoked = uuid.uuid4()
    dependency = require(lambda _: projection)
    request = cast(
        Request,
        SimpleNamespace(headers={"authorization": f"Bearer {token(key, sid=str(revoked))}"}),
    )

    async def catch_up() -> None:
        await asyncio.sleep(0.05)
        projection.apply_revocation(revocation(revoked, time.time() + 300))
        projection.ready.set()

    catching_up = asyncio.create_task(catch_up())
    with pytest.raises(ProblemError) as refusal:
        await dependency(request)
    await catching_up
    assert (refusal.value.status, refusal.value.detail) == (401, "the token's session was revoked")
