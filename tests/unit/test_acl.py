"""The ACLs derived from the registers: each principal may do its work and nothing else."""

from __future__ import annotations

import pytest

from shared.acl import agency_bindings, allowed, declared_bindings
from shared.principals import PRINCIPALS, Principal, agency_principal, outbox_relay_id
from shared.topics import TOPICS, Topic, channel, dead_letter_of

BINDINGS = declared_bindings()
USERS = [p for p in Principal if p is not Principal.AGENCY]
# Two agencies' channels, as the access manager makes them.
WITH_AGENCIES = BINDINGS | agency_bindings("tax") | agency_bindings("education")


def _user(principal: Principal, agency: str) -> str:
    return agency_principal(agency) if principal is Principal.AGENCY else principal.value


@pytest.mark.parametrize("principal", list(Principal), ids=str)
def test_a_principal_may_write_only_what_it_produces_and_read_only_what_it_consumes(
    principal: Principal,
) -> None:
    for spec in TOPICS:
        name = channel(spec.name, "tax") if spec.per_agency else spec.name
        user = _user(principal, "tax")
        writes, reads = principal in spec.producers, principal in spec.consumers
        assert allowed(WITH_AGENCIES, user, name, "write") == writes, name
        assert allowed(WITH_AGENCIES, user, name, "read") == reads, name
        assert allowed(WITH_AGENCIES, user, name, "describe") == (writes or reads), name


def test_an_agency_may_do_nothing_on_another_agencys_channel() -> None:
    for spec in TOPICS:
        if spec.per_agency:
            for operation in ("read", "write", "describe"):
                education_topic = channel(spec.name, "education")
                assert not allowed(WITH_AGENCIES, "agency-tax", education_topic, operation)


def test_an_agency_may_touch_no_topic_of_the_platforms_own() -> None:
    for spec in TOPICS:
        if not spec.per_agency:
            for operation in ("read", "write", "describe"):
                assert not allowed(WITH_AGENCIES, "agency-tax", spec.name, operation)


def test_a_revoked_agency_loses_its_own_access_and_the_platform_keeps_its_side() -> None:
    active, revoked = agency_bindings("tax"), agency_bindings("tax", active=False)
    assert {b.principal for b in active - revoked} == {"agency-tax"}
    assert "agency-tax" not in {b.principal for b in revoked}
    assert allowed(revoked, Principal.EXCHANGE, "agency.tax.outcomes", "write")


def test_only_the_sms_gateway_reads_one_time_codes_in_every_environment() -> None:
    production = declared_bindings(development=False)
    for bindings in (BINDINGS, production):
        readers = {p for p in Principal if allowed(bindings, p, Topic.IDENTITY_SMS, "read")}
        assert readers == {Principal.SMS_GATEWAY}


def test_the_development_phones_read_what_the_gateway_delivers_in_development_only() -> None:
    phones = Topic.DEVELOPMENT_PHONES
    assert {p for p in Principal if allowed(BINDINGS, p, phones, "read")} == {Principal.SIMULATOR}
    writers = {p for p in Principal if allowed(BINDINGS, p, phones, "write")}
    assert writers == {Principal.SMS_GATEWAY}
    production = declared_bindings(development=False)
    development_only = {spec.name for spec in TOPICS if spec.development_only}
    assert development_only == {phones.value, dead_letter_of(phones)}
    assert not [b for b in production if b.resource_name in development_only]


def test_only_identity_writes_the_keys_every_service_trusts() -> None:
    for topic in (Topic.IDENTITY_ISSUER_KEYS, Topic.IDENTITY_AGENCY_KEYS):
        writers = {p for p in Principal if allowed(BINDINGS, p, topic, "write")}
        assert writers == {Principal.IDENTITY}


def test_development_only_principals_and_topics_get_nothing_outside_development() -> None:
    production = declared_bindings(development=False)
    development_only = {spec.name for spec in PRINCIPALS if spec.development_only}
    assert development_only == {Principal.SIMULATOR}
    topics = {spec.name for spec in TOPICS if spec.development_only}
    assert not [b for b in production if b.principal in development_only]
    assert {
        b
        for b in BINDINGS
        if b.principal not in development_only
        and not (b.resource_type == "topic" and b.resource_name in topics)
    } == production


def test_each_outbox_relay_may_use_its_own_transactional_id_only() -> None:
    for service in (Principal.IDENTITY, Principal.CATALOG, Principal.EXCHANGE, Principal.METRICS):
        ids = {
            b.resource_name
            for b in BINDINGS
            if b.principal == service and b.resource_type == "transactional_id"
        }
        assert ids == {outbox_relay_id(service)}


def test_only_the_worker_owns_topics_beyond_the_register_and_no_one_may_create_others() -> None:
    owners = {
        b.principal for b in BINDINGS if b.resource_type == "topic" and b.pattern_type == "prefixed"
    }
    assert owners == {Principal.METRICS_WORKER}
    assert not [b for b in BINDINGS if b.operation == "create"]


def test_no_binding_names_the_super_user() -> None:
    assert not [b for b in BINDINGS if b.principal == "admin"]
