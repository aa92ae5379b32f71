"""Access tokens, refresh tokens and the schedule of the keys that sign them.

Access tokens follow the platform's token contract (`shared.auth`): ES256 JWTs with
`iss`, `aud` = "panjereh", `sub`, `exp`, `iat`, `nbf`, `jti`; citizens' carry `loa` and
`acr`, agency systems' carry `agency` and `scope`. Refresh tokens are opaque random
strings, kept only as a hash, and rotate on every use.

Signing keys rotate without downtime: a new key is published (JWKS and
`identity.issuer-keys`) some time before it starts signing, so every verifier knows it
by then; the old key keeps verifying until the last token it signed has expired.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from joserfc.jwk import ECKey

from shared.auth import AUDIENCE, CLOCK_SKEW_SECONDS
from shared.events.identity import IssuerKeyPublished, SessionRevoked
from shared.reference.provinces import DIRECTORATES

AGENCY_KEYS_SCOPE = "identity:agency-keys"
"""Registering and revoking the keys of the token's own agency."""

OPERATOR_SCOPES: frozenset[str] = frozenset({"exchange:admin", "programme:admin"})
"""What only the platform operator's systems may do: granting and revoking access rights
between every agency (`exchange:admin`), and keeping the programme's register of
indicators, targets and reported figures (`programme:admin`)."""

REPORT_SCOPE = "programme:report"
DIRECTORATE_SCOPES: frozenset[str] = frozenset({REPORT_SCOPE})
"""What only a provincial ICT directorate general's systems may do: submit its province's
weekly report to the programme (`programme:report`; the metrics service also checks that
the report is for the directorate's own province)."""

AGENCY_SCOPES: frozenset[str] = frozenset(
    {
        "catalog:write",
        "catalog:deliveries",
        "exchange:request",
        "exchange:provide",
        "metrics:read",
        AGENCY_KEYS_SCOPE,
        *OPERATOR_SCOPES,
        *DIRECTORATE_SCOPES,
    }
)
"""What an agency system may be allowed to do; each client holds a subset."""


def scopes_beyond_agency(
    scopes: frozenset[str], agency: str, operator_agencies: frozenset[str]
) -> frozenset[str]:
    """The scopes among `scopes` a client of `agency` may not hold: the operator's, unless
    it is one of the platform operator's agencies; a directorate's, unless it is one of the
    provincial ICT directorates general."""
    beyond = frozenset() if agency in operator_agencies else scopes & OPERATOR_SCOPES
    if agency not in DIRECTORATES:
        beyond |= scopes & DIRECTORATE_SCOPES
    return beyond


def _registered_claims(
    issuer: str, subject: str, now: datetime, lifetime: timedelta
) -> dict[str, Any]:
    """The JWT registered claims every access token carries (RFC 7519, section 4.1)."""
    issued = int(now.timestamp())
    return {
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": subject,
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(lifetime.total_seconds()),
        "jti": str(uuid.uuid4()),
    }


def citizen_claims(
    *,
    issuer: str,
    citizen: str,
    level_of_assurance: int,
    channel: str,
    session: str,
    now: datetime,
    lifetime: timedelta,
) -> dict[str, Any]:
    """The claims of a citizen's access token; `sid` names the refresh-token family."""
    return {
        **_registered_claims(issuer, citizen, now, lifetime),
        "loa": level_of_assurance,
        "acr": f"loa{level_of_assurance}",
        "amr": ["otp", "sms"],
        "channel": channel,
        "sid": session,
    }


def agency_claims(
    *,
    issuer: str,
    client_id: str,
    agency: str,
    scopes: frozenset[str],
    now: datetime,
    lifetime: timedelta,
) -> dict[str, Any]:
    """The claims of an agency system's access token."""
    return {
        **_registered_claims(issuer, client_id, now, lifetime),
        "agency": agency,
        "scope": " ".join(sorted(scopes)),
        "client_id": client_id,
    }


def new_refresh_token() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def hash_secret(token: str) -> bytes:
    """How high-entropy secrets (refresh tokens) are stored: a plain SHA-256 suffices for them."""
    return hashlib.sha256(token.encode()).digest()


def granted_scopes(allowed: frozenset[str], requested: str | None) -> frozenset[str] | None:
    """The scopes to grant: all allowed when none requested, else the requested ones if allowed.

    None when the request names a scope the client does not hold.
    """
    if requested is None or not requested.strip():
        return allowed
    wanted = frozenset(requested.split())
    return wanted if wanted <= allowed else None


@dataclass(frozen=True)
class SigningKey:
    """One of the issuer's keys: signs from `not_before`, verifies until `retired_at`."""

    kid: str
    private_jwk: dict[str, Any]
    public_jwk: dict[str, Any]
    not_before: datetime
    retired_at: datetime | None

    def verifies_at(self, now: datetime) -> bool:
        return self.retired_at is None or self.retired_at > now


def signing_key(keys: list[SigningKey], now: datetime) -> SigningKey | None:
    """The key that signs now: the newest whose `not_before` has passed.

    A key being retired keeps signing until its successor starts: its retirement time is
    set far enough after that for its last tokens to expire first.
    """
    usable = [k for k in keys if k.not_before <= now and k.verifies_at(now)]
    return max(usable, key=lambda k: k.not_before, default=None)


@dataclass(frozen=True)
class Rotation:
    """When a new key starts signing, and until when the keys it replaces keep verifying."""

    new_not_before: datetime
    old_retired_at: datetime


def plan_rotation(now: datetime, publish_ahead: timedelta, token_lifetime: timedelta) -> Rotation:
    """Publish now, sign from `now + publish_ahead`; old keys verify until their tokens expire."""
    starts = now + publish_ahead
    return Rotation(
        new_not_before=starts,
        old_retired_at=starts + token_lifetime + timedelta(seconds=CLOCK_SKEW_SECONDS),
    )


def rotation_due(keys: list[SigningKey], now: datetime, key_lifetime: timedelta) -> bool:
    """Whether the newest key is old enough that its successor should be published now."""
    if not keys:
        return True
    newest = max(keys, key=lambda k: k.not_before)
    return newest.not_before + key_lifetime <= now


ALGORITHM: Literal["ES256"] = "ES256"


def new_signing_key(now: datetime, not_before: datetime) -> SigningKey:
    kid = f"identity-{now:%Y%m%d%H%M%S}-{secrets.token_hex(3)}"
    key = ECKey.generate_key(
        "P-256", parameters={"kid": kid, "use": "sig", "alg": ALGORITHM}, private=True
    )
    return SigningKey(
        kid=kid,
        private_jwk=dict(key.as_dict(private=True)),
        public_jwk=dict(key.as_dict(private=False)),
        not_before=not_before,
        retired_at=None,
    )


def published(key: SigningKey, issuer: str) -> IssuerKeyPublished:
    """The event that tells every verifier of a key (new, or its retirement set)."""
    return IssuerKeyPublished(
        issuer=issuer,
        kid=key.kid,
        algorithm=ALGORITHM,
        jwk=key.public_jwk,
        not_before=key.not_before,
        retired_at=key.retired_at,
    )


@dataclass(frozen=True)
class SessionLifetimes:
    """How long a citizen's session and its tokens live.

    `idle`: a refresh token expires this long after it was issued, so an unused session
    ends. `absolute`: the session ends this long after its sign-in, however often it was
    refreshed; no token of it, refresh or access, outlives that.
    """

    access: timedelta
    idle: timedelta
    absolute: timedelta

    def ends_at(self, started_at: datetime) -> datetime:
        return started_at + self.absolute

    def refresh_token_expiry(self, started_at: datetime, now: datetime) -> datetime:
        return min(now + self.idle, self.ends_at(started_at))

    def access_token_lifetime(self, started_at: datetime, now: datetime) -> timedelta:
        return min(self.access, self.ends_at(started_at) - now)


SessionEnd = Literal["signed_out", "refresh_token_reused"]


def session_revoked(
    session: uuid.UUID, reason: SessionEnd, now: datetime, access_lifetime: timedelta
) -> SessionRevoked:
    """The event that tells every verifier to refuse the session's tokens from now on;
    they may forget it once its last access token (issued at the latest now) expired."""
    return SessionRevoked(session=session, reason=reason, tokens_expire_by=now + access_lifetime)


@dataclass(frozen=True)
class NewSession:
    """A sign-in session (refresh-token family) about to be stored, with its first token."""

    family_id: uuid.UUID
    citizen: str
    channel: str
    level_of_assurance: int
    first_token_hash: bytes
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class RefreshToken:
    """A stored refresh token with its session."""

    token_hash: bytes
    family_id: uuid.UUID
    expires_at: datetime
    rotated_at: datetime | None
    citizen: str
    channel: str
    level_of_assurance: int
    family_revoked_at: datetime | None
    session_started_at: datetime


@dataclass(frozen=True)
class ClientRegistration:
    """New client credentials of an agency's system, as they are stored (the secret only
    as a hash)."""

    client_id: str
    agency: str
    name: str
    secret_hash: str
    scopes: list[str]
    created_at: datetime


@dataclass(frozen=True)
class AgencyClient:
    """An agency system's client credentials, as stored (the secret only as a hash)."""

    client_id: str
    agency: str
    secret_hash: str
    scopes: frozenset[str]
    revoked_at: datetime | None
    agency_active: bool

    @property
    def usable(self) -> bool:
        return self.revoked_at is None and self.agency_active
