"""The exchange's rules: signatures, authorisation and the audit chain, without I/O."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.exchange.domain.audit import GENESIS_HASH, chain_hash, first_break
from services.exchange.domain.authorisation import (
    AgencyKey,
    Authorised,
    Denied,
    authorise,
    schema_problem,
)
from services.exchange.domain.registers import AccessRight, Agency, DataService
from shared.events.exchange import DataRequested
from shared.signing import (
    SignatureInvalid,
    generate_key,
    key_id_of,
    public_jwk,
    sign,
    sign_event,
    signed_content,
    verify,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CITIZEN = "ab" * 32
KEY = generate_key()
KID = "social-security-1"


def agency_key(**changes: Any) -> AgencyKey:
    record = AgencyKey(
        kid=KID,
        agency="social-security",
        algorithm="ES256",
        jwk=public_jwk(KEY),
        not_before=NOW - timedelta(days=1),
        expires_at=None,
        revoked_at=None,
    )
    return replace(record, **changes)


SERVICE = DataService(
    data_service="civil-registration.vital-status",
    version=1,
    provider="civil-registration",
    request_schema={"type": "object", "required": ["citizen"]},
    response_schema={"type": "object", "required": ["alive"]},
    timeout_ms=5000,
    purposes=("benefit-eligibility",),
    personal_data=True,
    active=True,
)

RIGHT = AccessRight(
    right_id=uuid.uuid4(),
    consumer="social-security",
    data_service=SERVICE.data_service,
    purposes=("benefit-eligibility",),
    legal_basis="National Data and Information Law, art. 5",
    valid_from=NOW - timedelta(days=30),
    valid_until=NOW + timedelta(days=30),
    revoked_at=None,
)


def signed_request(key: Any = KEY, kid: str = KID, **changes: Any) -> DataRequested:
    fields: dict[str, Any] = {
        "transaction_id": uuid.uuid4(),
        "consumer": "social-security",
        "data_service": SERVICE.data_service,
        "purpose": "benefit-eligibility",
        "payload": {"citizen": CITIZEN},
        "citizen": CITIZEN,
        "signature": "-",
    } | changes
    request = DataRequested(**fields)
    return request.model_copy(update={"signature": sign_event(request, key, kid)})


def decide(request: DataRequested, **overrides: Any) -> Authorised | Denied:
    context: dict[str, Any] = {
        "consumer": Agency("social-security", active=True),
        "key": agency_key(),
        "kid": KID,
        "service": SERVICE,
        "rights": [RIGHT],
        "now": NOW,
    } | overrides
    return authorise(request, **context)


def reason_of(decision: Authorised | Denied) -> str:
    assert isinstance(decision, Denied), decision
    return decision.reason


def test_a_signature_is_a_detached_compact_jws_naming_its_key() -> None:
    signature = sign(b'{"a":1}', KEY, "k-1")
    _header, payload, _ = signature.split(".")
    assert payload == ""
    assert key_id_of(signature) == "k-1"
    verify(signature, b'{"a":1}', public_jwk(KEY), "ES256")


def test_a_signature_does_not_cover_other_content() -> None:
    signature = sign(b'{"a":1}', KEY, "k-1")
    with pytest.raises(SignatureInvalid):
        verify(signature, b'{"a":2}', public_jwk(KEY), "ES256")


def test_signed_content_is_canonical_and_leaves_out_the_signature() -> None:
    request = signed_request()
    content = signed_content(request)
    assert b'"signature"' not in content
    reordered = dict(reversed(list(request.model_dump(mode="json").items())))
    assert signed_content(reordered) == content


def test_a_well_signed_request_under_a_valid_right_is_authorised_with_a_deadline() -> None:
    decision = decide(signed_request())
    assert isinstance(decision, Authorised)
    assert decision.right == RIGHT
    assert decision.deadline == NOW + timedelta(milliseconds=5000)


def test_a_request_signed_with_another_key_is_denied_for_its_signature() -> None:
    assert reason_of(decide(signed_request(key=generate_key()))).startswith("bad_signature")


def test_a_changed_payload_breaks_the_signature() -> None:
    tampered = signed_request().model_copy(update={"payload": {"citizen": "cd" * 32}})
    assert reason_of(decide(tampered)).startswith("bad_signature")


def test_an_unknown_revoked_expired_or_foreign_key_is_denied_with_its_reason() -> None:
    request = signed_request()
    assert reason_of(decide(request, key=None)).startswith("unknown_key")
    revoked = agency_key(revoked_at=NOW - timedelta(seconds=1))
    assert reason_of(decide(request, key=revoked)).startswith("key_revoked")
    expired = agency_key(expires_at=NOW - timedelta(seconds=1))
    assert reason_of(decide(request, key=expired)).startswith("key_expired")
    foreign = agency_key(agency="education")
    assert reason_of(decide(request, key=foreign)).startswith("wrong_key")


def test_without_a_right_for_the_purpose_and_moment_the_request_is_denied() -> None:
    request = signed_request()
    assert reason_of(decide(request, rights=[])).startswith("no_access_right")
    lapsed = replace(RIGHT, valid_until=NOW - timedelta(seconds=1))
    assert reason_of(decide(request, rights=[lapsed])).startswith("no_access_right")
    revoked = replace(RIGHT, revoked_at=NOW - timedelta(seconds=1))
    assert reason_of(decide(request, rights=[revoked])).startswith("no_access_right")
    other_purpose = replace(RIGHT, purposes=("tax-audit",))
    assert reason_of(decide(request, rights=[other_purpose])).startswith("no_access_right")


def test_unknown_agencies_services_purposes_and_bad_payloads_are_denied() -> None:
    assert reason_of(decide(signed_request(), consumer=None)).startswith("unknown_agency")
    assert reason_of(decide(signed_request(), service=None)).startswith("unknown_data_service")
    wrong_purpose = signed_request(purpose="curiosity")
    assert reason_of(decide(wrong_purpose)).startswith("purpose_not_served")
    no_citizen = signed_request(citizen=None)
    assert reason_of(decide(no_citizen)).startswith("citizen_required")
    bad_payload = signed_request(payload={"name": "x"})
    assert reason_of(decide(bad_payload)).startswith("invalid_request")


def test_schema_problems_name_where_the_document_breaks() -> None:
    schema = {"type": "object", "properties": {"alive": {"type": "boolean"}}}
    assert schema_problem({"alive": True}, schema) is None
    problem = schema_problem({"alive": "yes"}, schema)
    assert problem is not None
    assert problem.startswith("alive:")


def chain(count: int) -> list[dict[str, Any]]:
    records, previous = [], GENESIS_HASH
    for seq in range(1, count + 1):
        record: dict[str, Any] = {
            "seq": seq,
            "recorded_at": NOW + timedelta(seconds=seq),
            "transaction_id": uuid.uuid4(),
            "kind": "request",
            "outcome": "forwarded",
            "consumer": "social-security",
            "provider": "civil-registration",
            "data_service": SERVICE.data_service,
            "purpose": "benefit-eligibility",
            "legal_basis": None,
            "citizen": CITIZEN,
            "reason": None,
            "content_digest": "0" * 64,
            "signature": "x",
            "previous_hash": previous,
        }
        record["hash"] = previous = chain_hash(previous, record)
        records.append(record)
    return records


def test_an_untouched_chain_holds() -> None:
    records = chain(5)
    assert first_break(records, 5, records[-1]["hash"]) is None


def test_a_changed_record_is_named_as_the_first_break() -> None:
    records = chain(5)
    records[2]["purpose"] = "curiosity"
    broken = first_break(records, 5, records[-1]["hash"])
    assert broken is not None
    assert broken.seq == 3


def test_a_rehashed_record_breaks_the_link_of_the_next() -> None:
    records = chain(5)
    records[2]["purpose"] = "curiosity"
    records[2]["hash"] = chain_hash(records[2]["previous_hash"], records[2])
    broken = first_break(records, 5, records[-1]["hash"])
    assert broken is not None
    assert broken.seq == 4


def test_a_removed_record_or_tail_is_detected() -> None:
    records = chain(5)
    broken = first_break(records[:2] + records[3:], 5, records[-1]["hash"])
    assert broken is not None
    assert broken.seq == 3
    tail_cut = first_break(records[:4], 5, records[-1]["hash"])
    assert tail_cut is not None
    assert tail_cut.seq == 5
