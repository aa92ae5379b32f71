"""Signing keys and access tokens shaped as identity's, for tests that stand in for it."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey

from shared.auth import AUDIENCE
from shared.envelope import Envelope
from shared.events.identity import IssuerKeyPublished
from shared.kafka import new_producer, publish
from shared.kafka_access import KafkaAccess


def new_issuer_key(issuer: str, kid: str) -> tuple[ECKey, IssuerKeyPublished]:
    """A fresh P-256 key named `kid`, and the record `issuer` would publish for it."""
    key = ECKey.generate_key("P-256", parameters={"kid": kid})
    record = IssuerKeyPublished(
        issuer=issuer,
        kid=kid,
        algorithm="ES256",
        jwk=key.as_dict(private=False),
        not_before=datetime.now(UTC) - timedelta(minutes=1),
        retired_at=None,
    )
    return key, record


async def publish_issuer_key(
    kafka: KafkaAccess, record: IssuerKeyPublished, client_id: str
) -> None:
    """Publish `record` on `identity.issuer-keys`, as identity would."""
    producer = new_producer(kafka, client_id=client_id)
    await producer.start()
    try:
        await publish(producer, Envelope.wrap(record, source="identity", subject=record.kid))
    finally:
        await producer.stop()


def access_claims(issuer: str, subject: str, scope: str, *, seconds: int) -> dict[str, Any]:
    """The claims every access token carries, valid from now for `seconds`, with a new id."""
    now = int(time.time())
    return {
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": subject,
        "scope": scope,
        "iat": now,
        "exp": now + seconds,
        "jti": uuid.uuid4().hex,
    }


def signed(key: ECKey, claims: dict[str, Any]) -> str:
    """`claims` as a compact ES256 token, its header naming `key`'s kid."""
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key)


def agency_bearer(
    key: ECKey, issuer: str, agency: str, scope: str, *, subject: str = "", seconds: int = 600
) -> dict[str, str]:
    """The authorization header of an agency's access token for `scope` (its subject,
    `<agency>-system` unless given), signed with `key`."""
    claims = access_claims(issuer, subject or f"{agency}-system", scope, seconds=seconds)
    return {"authorization": f"Bearer {signed(key, claims | {'agency': agency})}"}
