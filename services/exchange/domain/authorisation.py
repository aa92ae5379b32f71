"""Who may ask what: whether a signature holds, and whether a request may go to its provider.

Pure: the use case loads what a decision needs (the consumer agency, the key a signature
names, the data service, the consumer's rights) and passes it in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from services.exchange.domain.registers import AccessRight, Agency, DataService
from services.exchange.domain.schemas import document_problem
from shared.events.exchange import DataRequested
from shared.signing import SignatureInvalid, key_id_of, verify_event


@dataclass(frozen=True)
class AgencyKey:
    """A key an agency signs with, as identity published it (jwk None: only its revocation)."""

    kid: str
    agency: str
    algorithm: str | None
    jwk: dict[str, Any] | None
    not_before: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class Authorised:
    """The request may go to its provider, under this right, until the deadline."""

    service: DataService
    right: AccessRight
    deadline: datetime


@dataclass(frozen=True)
class Denied:
    """The request is refused by the exchange itself; `reason` says why (`code: detail`).

    `verified` is False when its signature did not hold: then nothing it says (whose data,
    for what) is known to be its sender's, and none of it is recorded as fact.
    """

    reason: str
    verified: bool = True


# The codes `signature_problem` (and `signing_kid`) give their reasons. A request denied
# for one of them is a claim nobody is known to have made: audit records written before
# such requests were recorded as unverified are told apart by this.
SIGNATURE_PROBLEM_CODES = (
    "bad_signature",
    "unknown_key",
    "wrong_key",
    "key_revoked",
    "key_not_yet_valid",
    "key_expired",
)


def signing_kid(signature: str) -> tuple[str, str | None]:
    """The key id a signature names, or ("", why it cannot be read)."""
    try:
        return key_id_of(signature), None
    except SignatureInvalid as error:
        return "", f"bad_signature: {error.reason}"


def signature_problem(
    event: BaseModel,
    signer: str,
    key: AgencyKey | None,
    kid: str,
    now: datetime,
    *,
    unreadable: str | None = None,
) -> str | None:
    """Why `event`'s signature cannot be trusted as `signer`'s, or None when it holds.

    `kid` is the key id the signature names (`signing_kid`), or `unreadable` why it
    names none.
    """
    if unreadable is not None:
        return unreadable
    if key is None or key.jwk is None or key.algorithm is None:
        if key is not None and key.revoked_at is not None:
            return f"key_revoked: key {kid} was revoked"
        return f"unknown_key: no key {kid} is published"
    if key.agency != signer:
        return f"wrong_key: key {kid} belongs to {key.agency}, not {signer}"
    if key.revoked_at is not None and key.revoked_at <= now:
        return f"key_revoked: key {kid} was revoked"
    if key.not_before is not None and now < key.not_before:
        return f"key_not_yet_valid: key {kid} is valid from {key.not_before.isoformat()}"
    if key.expires_at is not None and key.expires_at <= now:
        return f"key_expired: key {kid} expired at {key.expires_at.isoformat()}"
    try:
        verify_event(event, key.jwk, key.algorithm)
    except SignatureInvalid as error:
        return f"bad_signature: {error.reason}"
    return None


def schema_problem(document: Any, schema: dict[str, Any]) -> str | None:
    """The first way `document` breaks `schema`, or None when it conforms; the schema's
    regular expressions run in RE2 only, at a bounded cost (`schemas`)."""
    return document_problem(document, schema)


def authorise(
    request: DataRequested,
    *,
    consumer: Agency | None,
    key: AgencyKey | None,
    kid: str,
    service: DataService | None,
    rights: Sequence[AccessRight],
    now: datetime,
    unreadable: str | None = None,
) -> Authorised | Denied:
    """Whether the exchange forwards a request: signature, agency, service, right, payload.

    The signature is checked first: nothing else is worth believing before it holds.
    """
    problem = signature_problem(request, request.consumer, key, kid, now, unreadable=unreadable)
    if problem is not None:
        return Denied(problem, verified=False)
    if consumer is None:
        return Denied(f"unknown_agency: {request.consumer} is not in the register")
    if not consumer.active:
        return Denied(f"inactive_agency: {request.consumer} is not active")
    if service is None or not service.active:
        return Denied(f"unknown_data_service: {request.data_service} is not offered")
    if request.purpose not in service.purposes:
        return Denied(f"purpose_not_served: {request.data_service} does not serve this purpose")
    right = next((r for r in rights if r.allows(request.purpose, now)), None)
    if right is None:
        return Denied(
            f"no_access_right: {request.consumer} holds no valid right to "
            f"{request.data_service} for {request.purpose}"
        )
    if service.personal_data and request.citizen is None:
        return Denied("citizen_required: personal data is asked for without naming whose")
    invalid = schema_problem(request.payload, service.request_schema)
    if invalid is not None:
        return Denied(f"invalid_request: {invalid}")
    return Authorised(service, right, now + timedelta(milliseconds=service.timeout_ms))
