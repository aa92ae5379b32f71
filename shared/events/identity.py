"""Events of identity: citizens, authentications, sessions, agencies' keys, text messages.

Events that leave identity never carry a plain national ID or mobile number: on
`identity.sms` they are sealed to the SMS gateway's public key. A citizen is their
pseudonymous id.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from shared.envelope import Event
from shared.reference.provinces import ProvinceCode
from shared.registry import event
from shared.sealed_box import OpenError, OpeningKey, SealedBox, SealingKey
from shared.topics import Topic
from shared.vocabulary import AgencyCode, AuthenticationChannel, LevelOfAssurance, PseudonymousId

_CITIZEN = "3b7e" + "a" * 60

FailureReason = Literal[
    "unknown_citizen",
    "wrong_code",
    "expired_code",
    "too_many_attempts",
    "locked_out",
    "invalid_client_credentials",
]


@event
class CitizenRegistered(Event):
    """A citizen registered in the window, their mobile proven to be theirs."""

    event_type = "CitizenRegistered"
    schema_version = 1
    topic = Topic.IDENTITY_CITIZENS
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"citizen": _CITIZEN, "province": "IR-23", "birth_year": 1985}]
        }
    )

    citizen: PseudonymousId
    province: ProvinceCode = Field(description="The province the citizen lives in.")
    birth_year: int = Field(ge=1900, le=2100, description="Gregorian year of birth.")


@event
class CitizenAuthenticated(Event):
    """A citizen signed in."""

    event_type = "CitizenAuthenticated"
    schema_version = 1
    topic = Topic.IDENTITY_AUTHENTICATIONS
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "citizen": _CITIZEN,
                    "channel": "web",
                    "level_of_assurance": 2,
                    "province": "IR-23",
                    "birth_year": 1985,
                }
            ]
        }
    )

    citizen: PseudonymousId
    channel: AuthenticationChannel
    level_of_assurance: LevelOfAssurance
    province: ProvinceCode
    birth_year: int = Field(ge=1900, le=2100)


@event
class AuthenticationFailed(Event):
    """A sign-in attempt failed, and why."""

    event_type = "AuthenticationFailed"
    schema_version = 1
    topic = Topic.IDENTITY_AUTHENTICATIONS
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "citizen": _CITIZEN,
                    "channel": "mobile_app",
                    "reason": "wrong_code",
                    "agency": None,
                }
            ]
        }
    )

    citizen: PseudonymousId | None = Field(description="None when nobody matched.")
    channel: AuthenticationChannel
    reason: FailureReason
    agency: AgencyCode | None = Field(
        default=None, description="For an agency system's failed client authentication."
    )


@event
class CitizenLockedOut(Event):
    """Sign-in is refused for a citizen (or a client address) until a time."""

    event_type = "CitizenLockedOut"
    schema_version = 1
    topic = Topic.IDENTITY_AUTHENTICATIONS
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "citizen": _CITIZEN,
                    "until": "2024-03-20T09:00:00Z",
                    "failed_attempts": 5,
                    "scope": "citizen",
                }
            ]
        }
    )

    citizen: PseudonymousId | None
    until: AwareDatetime
    failed_attempts: int = Field(ge=1)
    scope: Literal["citizen", "client_address"]


_JWK_EXAMPLE: dict[str, Any] = {
    "kty": "OKP",
    "crv": "Ed25519",
    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
}


@event
class AgencyKeyPublished(Event):
    """An agency's system may sign with this key from `not_before` (compacted by kid)."""

    event_type = "AgencyKeyPublished"
    schema_version = 1
    topic = Topic.IDENTITY_AGENCY_KEYS
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "agency": "education",
                    "kid": "education-2024-1",
                    "algorithm": "ES256",
                    "jwk": _JWK_EXAMPLE,
                    "not_before": "2024-03-20T00:00:00Z",
                    "expires_at": "2025-03-20T00:00:00Z",
                }
            ]
        }
    )

    agency: AgencyCode
    kid: str = Field(min_length=1, max_length=200)
    algorithm: Literal["ES256", "EdDSA", "RS256"]
    jwk: dict[str, Any] = Field(description="The public key as a JWK (RFC 7517); no private part.")
    not_before: AwareDatetime
    expires_at: AwareDatetime | None


@event
class AgencyKeyRevoked(Event):
    """A key may no longer be used; signatures made with it are refused."""

    event_type = "AgencyKeyRevoked"
    schema_version = 1
    topic = Topic.IDENTITY_AGENCY_KEYS
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"agency": "education", "kid": "education-2024-1", "reason": "rotated"}]
        }
    )

    agency: AgencyCode
    kid: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1)


@event
class IssuerKeyPublished(Event):
    """Identity signs access tokens with this key from `not_before` (compacted by kid)."""

    event_type = "IssuerKeyPublished"
    schema_version = 1
    topic = Topic.IDENTITY_ISSUER_KEYS
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "issuer": "https://identity.panjereh.ir",
                    "kid": "issuer-2024-03",
                    "algorithm": "ES256",
                    "jwk": _JWK_EXAMPLE,
                    "not_before": "2024-03-20T00:00:00Z",
                    "retired_at": None,
                }
            ]
        }
    )

    issuer: str = Field(min_length=1)
    kid: str = Field(min_length=1, max_length=200)
    algorithm: Literal["ES256", "EdDSA", "RS256"]
    jwk: dict[str, Any] = Field(description="The public key as a JWK (RFC 7517); no private part.")
    not_before: AwareDatetime
    retired_at: AwareDatetime | None = Field(
        description="After this, tokens signed with the key are refused; None while in use."
    )


@event
class SessionRevoked(Event):
    """A citizen's sign-in session ended before its time (signed out, or its refresh token
    was replayed): every service refuses the session's access tokens (`sid`) from now on."""

    event_type = "SessionRevoked"
    schema_version = 1
    topic = Topic.IDENTITY_SESSIONS
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "session": "6f1c2a3b-9d4e-4f5a-8b7c-0d1e2f3a4b5c",
                    "reason": "signed_out",
                    "tokens_expire_by": "2024-03-20T08:35:00Z",
                }
            ]
        }
    )

    session: uuid.UUID = Field(description="The session: the `sid` of its access tokens.")
    reason: Literal["signed_out", "refresh_token_reused"]
    tokens_expire_by: AwareDatetime = Field(
        description="No access token of the session is valid after this (plus the verifiers' "
        "clock skew): from then on a verifier need not remember the session."
    )


class SmsContent(BaseModel):
    """What only the SMS gateway reads of a text message: to whom, and what it says."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    mobile: str = Field(pattern=r"^\+989[0-9]{9}$", description="E.164, Iranian mobile.")
    text: str = Field(min_length=1, max_length=480)


def sms_binding(message_id: uuid.UUID) -> str:
    """What a message's sealed content is bound to: it opens in this message alone."""
    return f"{Topic.IDENTITY_SMS.value}:{message_id}"


@event
class SmsRequested(Event):
    """A text message for the SMS gateway to send (a one-time code, for now); the mobile
    and the text are sealed to the gateway's public key (shared/sealed_box.py)."""

    event_type = "SmsRequested"
    schema_version = 2
    topic = Topic.IDENTITY_SMS
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "message_id": "0d3c1a6e-4b7f-4c55-8f0e-2a9b6c1d3e4f",
                    "purpose": "one_time_code",
                    "expires_at": "2024-03-20T08:35:00Z",
                    # Sealed to the development key pair: the development gateway opens it.
                    "sealed": {
                        "suite": "HPKE-Base-X25519-SHA256-AES256GCM",
                        "recipient": "272857a8e073a2de",
                        "ciphertext": (
                            "NK+QRXxzxRUb0ZgbUllDukj1a1T1DOhZlhPEZC2nYhKZzzwF4eGWO8dWG6LJ3MDv"
                            "EF7FaHk0QNsyV4rpN8+Xzec3QmyKq25JFzi+/tmfNFcHir92SCnai8cOSURO/1n7"
                            "WX077sYGXsD2xnvupAoqPFZBKsBofZZdAbf6jh/wxUsK80inK4FHiLdyq2h3pXnD"
                            "G/tukB3FIQs+wN7Gx2s3FXBC+cqKnOTQYkVMLYSk"
                        ),
                    },
                }
            ]
        }
    )

    message_id: uuid.UUID
    purpose: Literal["one_time_code"]
    expires_at: AwareDatetime = Field(description="After this, the gateway need not send it.")
    sealed: SealedBox = Field(
        description="An `SmsContent` (mobile and text) as JSON, sealed to the SMS gateway's "
        "public key and bound to `identity.sms:<message_id>`."
    )

    @classmethod
    def sealed_to(
        cls,
        gateway: SealingKey,
        content: SmsContent,
        *,
        message_id: uuid.UUID,
        purpose: Literal["one_time_code"],
        expires_at: datetime,
    ) -> SmsRequested:
        """The message with `content` sealed to the gateway's key; only it can open it."""
        plain = content.model_dump_json().encode()
        return cls(
            message_id=message_id,
            purpose=purpose,
            expires_at=expires_at,
            sealed=gateway.seal(plain, binding=sms_binding(message_id)),
        )

    def open(self, gateway: OpeningKey) -> SmsContent:
        """The sealed content; OpenError if this key cannot open it or it is not valid."""
        plain = gateway.open(self.sealed, binding=sms_binding(self.message_id))
        try:
            return SmsContent.model_validate_json(plain)
        except ValidationError as error:
            raise OpenError(f"the sealed content of {self.message_id} is invalid") from error
