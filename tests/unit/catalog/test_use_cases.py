"""Every catalog use case on a fake unit of work: what it leaves in the register, what it
announces, what it returns, and what it refuses with which code."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from opentelemetry.context import Context

from services.catalog import use_cases
from services.catalog.domain import (
    AgencyEntry,
    DeliveryClaim,
    Editor,
    ListedService,
    SearchQuery,
    ServiceContent,
)
from shared.envelope import Envelope
from shared.errors import Conflict, Forbidden, Invalid, NotFound
from shared.events.catalog import (
    AgencyRecorded,
    AgencyRegistered,
    AgencyUpdated,
    DeliveryRecorded,
    DeliveryReported,
    ServiceDrafted,
    ServicePublished,
    ServiceRetired,
    ServiceUpdated,
    delivery_event_id,
)
from tests.unit.catalog.builders import NOW, content, delivery, service
from tests.unit.catalog.fakes import FakeCatalog

OPERATOR = Editor.of_operator("ito", "console", operators={"ito"})
EDUCATION = Editor.of_agency("education", "school-system")
TAX = Editor.of_agency("tax", "tax-system")


def agency(code: str = "education", **overrides: Any) -> AgencyEntry:
    values: dict[str, Any] = {"code": code, "name_fa": "وزارت آموزش و پرورش", "name_en": code}
    values.update(overrides)
    return AgencyEntry.model_validate(values)


async def register(work: FakeCatalog, *codes: str, **overrides: Any) -> None:
    for code in codes or ("education",):
        await use_cases.register_agency(work, agency(code, **overrides), OPERATOR)


async def published(work: FakeCatalog, service_id: str = "education.report-card") -> None:
    await use_cases.draft_service(work, service(service_id), OPERATOR)
    await use_cases.publish_service(work, service_id, OPERATOR)


async def with_education_registered() -> FakeCatalog:
    """A catalog with the education agency registered and no service yet."""
    work = FakeCatalog()
    await register(work)
    return work


async def with_the_report_card_published() -> FakeCatalog:
    """A catalog with the education agency and its report card published."""
    work = await with_education_registered()
    await published(work)
    return work


# -- agencies ---------------------------------------------------------------------------


async def test_registering_an_agency_records_revision_one_and_announces_state_and_change() -> None:
    work = FakeCatalog()
    record = await use_cases.register_agency(work, agency(), OPERATOR)
    assert (record.code, record.revision) == ("education", 1)
    assert work.agencies["education"] == record
    assert [r.changed_by for r in work.agency_revisions["education"]] == ["operator:ito:console"]
    state, change = work.payloads()
    assert state == record
    assert isinstance(change, AgencyRegistered)
    assert (change.agency, change.revision, change.changed_by) == (
        "education",
        1,
        "operator:ito:console",
    )
    assert "name_fa" in change.changed_fields
    assert "revision" not in change.changed_fields
    assert {e.subject for e in work.published} == {"education"}
    assert {e.source for e in work.published} == {"catalog"}


async def test_registering_an_agency_twice_is_a_conflict() -> None:
    work = await with_education_registered()
    with pytest.raises(Conflict) as refused:
        await use_cases.register_agency(work, agency(), OPERATOR)
    assert refused.value.code == "agency_exists"
    assert len(work.published) == 2


async def test_only_an_operator_registers_an_agency() -> None:
    work = FakeCatalog()
    outsider = Editor.of_operator("education", "school-system", operators={"ito"})
    with pytest.raises(Forbidden) as refused:
        await use_cases.register_agency(work, agency(), outsider)
    assert refused.value.code == "not_operator"
    assert refused.value.detail == "'education' is not an operator"
    assert work.agencies == {}
    assert work.published == []


async def test_updating_an_agency_makes_a_revision_naming_the_changed_fields() -> None:
    work = await with_education_registered()
    connected = agency(window_connected_since=NOW.date())
    record, changed = await use_cases.update_agency(work, "education", connected, OPERATOR)
    assert changed
    assert record.revision == 2
    assert record.window_connected_since == NOW.date()
    assert work.agencies["education"] == record
    state, change = work.payloads()[2:]
    assert state == record
    assert isinstance(change, AgencyUpdated)
    assert change.changed_fields == ["window_connected_since"]


async def test_updating_an_agency_to_what_it_is_changes_and_announces_nothing() -> None:
    work = await with_education_registered()
    record, changed = await use_cases.update_agency(work, "education", agency(), OPERATOR)
    assert not changed
    assert record.revision == 1
    assert len(work.agency_revisions["education"]) == 1
    assert len(work.published) == 2


async def test_an_agency_entry_for_another_address_is_invalid() -> None:
    work = FakeCatalog()
    await register(work, "education", "tax")
    with pytest.raises(Invalid) as refused:
        await use_cases.update_agency(work, "education", agency("tax"), OPERATOR)
    assert refused.value.code == "invalid_change"


async def test_updating_an_unknown_agency_is_not_found() -> None:
    with pytest.raises(NotFound) as refused:
        await use_cases.update_agency(FakeCatalog(), "education", agency(), OPERATOR)
    assert refused.value.code == "not_found"


async def test_only_an_operator_updates_an_agency_before_anything_else_is_checked() -> None:
    with pytest.raises(Forbidden) as refused:
        await use_cases.update_agency(FakeCatalog(), "education", agency("tax"), EDUCATION)
    assert refused.value.code == "not_operator"


async def test_putting_an_agency_creates_it_then_leaves_it_then_brings_it_to_the_entry() -> None:
    work = FakeCatalog()
    created = await use_cases.put_agency(work, agency(), OPERATOR)
    same = await use_cases.put_agency(work, agency(), OPERATOR)
    moved = await use_cases.put_agency(work, agency(province="IR-15"), OPERATOR)
    assert [(w.outcome, w.revision) for w in (created, same, moved)] == [
        ("created", 1),
        ("unchanged", 1),
        ("updated", 2),
    ]
    assert work.agencies["education"].province == "IR-15"


# -- services ---------------------------------------------------------------------------


async def test_an_agency_drafts_its_own_service_at_revision_one() -> None:
    work = await with_education_registered()
    record = await use_cases.draft_service(work, service(), EDUCATION)
    assert (record.status, record.revision, record.agency) == ("draft", 1, "education")
    assert work.services["education.report-card"] == record
    state, change = work.payloads()[2:]
    assert state == record
    assert isinstance(change, ServiceDrafted)
    assert change.changed_by == "agency:education:school-system"
    assert {e.subject for e in work.published[2:]} == {"education.report-card"}


async def test_an_agency_may_not_draft_another_agencys_service() -> None:
    work = FakeCatalog()
    await register(work, "education", "tax")
    with pytest.raises(Forbidden) as refused:
        await use_cases.draft_service(work, service(), TAX)
    assert refused.value.code == "not_your_service"
    assert refused.value.detail == "'education.report-card' does not belong to 'tax'"
    assert work.services == {}


async def test_an_editor_without_an_agency_changes_no_service() -> None:
    work = await with_education_registered()
    with pytest.raises(Forbidden) as refused:
        await use_cases.draft_service(work, service(), Editor.of_agency(None, "anyone"))
    assert refused.value.code == "not_your_service"


async def test_drafting_an_existing_service_is_a_conflict() -> None:
    work = await with_education_registered()
    await use_cases.draft_service(work, service(), EDUCATION)
    with pytest.raises(Conflict) as refused:
        await use_cases.draft_service(work, service(title_en="Another"), EDUCATION)
    assert refused.value.code == "service_exists"
    assert work.services["education.report-card"].title_en == "View a pupil's report card"


async def test_a_service_of_an_agency_not_in_the_register_is_invalid() -> None:
    with pytest.raises(Invalid) as refused:
        await use_cases.draft_service(FakeCatalog(), service(), EDUCATION)
    assert refused.value.code == "unknown_agency"


async def test_an_inactive_agency_drafts_no_service() -> None:
    work = FakeCatalog()
    await register(work, active=False)
    with pytest.raises(Conflict) as refused:
        await use_cases.draft_service(work, service(), EDUCATION)
    assert refused.value.code == "agency_inactive"


async def test_updating_a_service_names_the_fields_it_changed() -> None:
    work = await with_education_registered()
    await use_cases.draft_service(work, service(), EDUCATION)
    new = ServiceContent.model_validate(content(maturity=4, channels=["online", "pishkhan"]))
    record = await use_cases.update_service(work, "education.report-card", new, EDUCATION)
    assert (record.revision, record.maturity) == (2, 4)
    change = work.payloads()[-1]
    assert isinstance(change, ServiceUpdated)
    assert sorted(change.changed_fields) == ["channels", "maturity"]


async def test_updating_a_service_to_what_it_is_changes_nothing() -> None:
    work = await with_education_registered()
    await use_cases.draft_service(work, service(), EDUCATION)
    same = ServiceContent.model_validate(content())
    record = await use_cases.update_service(work, "education.report-card", same, EDUCATION)
    assert record.revision == 1
    assert len(work.published) == 4


async def test_updating_an_unknown_service_is_not_found() -> None:
    same = ServiceContent.model_validate(content())
    with pytest.raises(NotFound) as refused:
        await use_cases.update_service(FakeCatalog(), "education.none", same, EDUCATION)
    assert refused.value.code == "not_found"


async def test_an_agency_may_not_update_another_agencys_service() -> None:
    work = await with_education_registered()
    await use_cases.draft_service(work, service(), EDUCATION)
    with pytest.raises(Forbidden) as refused:
        await use_cases.update_service(
            work, "education.report-card", ServiceContent.model_validate(content()), TAX
        )
    assert refused.value.code == "not_your_service"


async def test_a_retired_service_cannot_be_updated() -> None:
    work = await with_education_registered()
    await use_cases.draft_service(work, service(), EDUCATION)
    await use_cases.retire_service(work, "education.report-card", EDUCATION)
    new = ServiceContent.model_validate(content(maturity=3))
    with pytest.raises(Conflict) as refused:
        await use_cases.update_service(work, "education.report-card", new, EDUCATION)
    assert refused.value.code == "service_retired"


async def test_publishing_a_draft_puts_it_in_the_window_and_names_only_its_status() -> None:
    work = await with_education_registered()
    await use_cases.draft_service(work, service(), EDUCATION)
    record = await use_cases.publish_service(work, "education.report-card", EDUCATION)
    assert (record.status, record.revision) == ("published", 2)
    state, change = work.payloads()[-2:]
    assert state == record
    assert isinstance(change, ServicePublished)
    assert change.changed_fields == ["status"]


async def test_publishing_a_published_service_again_changes_nothing() -> None:
    work = await with_the_report_card_published()
    before = len(work.published)
    record = await use_cases.publish_service(work, "education.report-card", EDUCATION)
    assert record.revision == 2
    assert len(work.published) == before


async def test_a_retired_service_is_final() -> None:
    work = await with_the_report_card_published()
    record = await use_cases.retire_service(work, "education.report-card", EDUCATION)
    assert (record.status, record.revision) == ("retired", 3)
    assert isinstance(work.payloads()[-1], ServiceRetired)
    with pytest.raises(Conflict) as refused:
        await use_cases.publish_service(work, "education.report-card", EDUCATION)
    assert refused.value.code == "status_transition_refused"


async def test_moving_an_unknown_service_is_not_found_and_another_agencys_forbidden() -> None:
    work = await with_the_report_card_published()
    with pytest.raises(NotFound):
        await use_cases.retire_service(work, "education.none", EDUCATION)
    with pytest.raises(Forbidden) as refused:
        await use_cases.retire_service(work, "education.report-card", TAX)
    assert refused.value.code == "not_your_service"
    assert work.services["education.report-card"].status == "published"


async def test_loading_a_list_creates_what_is_missing_and_leaves_the_rest() -> None:
    work = FakeCatalog()
    listed = [
        ListedService.model_validate({"service_id": "education.report-card", **content()}),
        ListedService.model_validate(
            {"service_id": "education.enrolment", **content(), "status": "draft"}
        ),
    ]
    first = await use_cases.load_register(work, [agency()], listed, OPERATOR)
    assert first.lines() == ["agencies: 1 created", "services: 2 created"]
    assert work.services["education.report-card"].status == "published"
    assert work.services["education.enrolment"].status == "draft"
    await use_cases.retire_service(work, "education.report-card", EDUCATION)
    again = await use_cases.load_register(work, [agency()], listed, OPERATOR)
    assert again.lines() == ["agencies: 1 unchanged", "services: 2 unchanged"]
    # The agency keeps its services: the list does not bring them back.
    kept = work.services["education.report-card"]
    assert kept.status == "retired"


# -- the window's reads -------------------------------------------------------------------


async def test_search_finds_published_services_only() -> None:
    work = await with_the_report_card_published()
    await use_cases.draft_service(work, service("education.enrolment"), EDUCATION)
    found = await use_cases.search_services(work, SearchQuery(text="کارنامه"))
    assert found.total == 1
    assert [hit.service.service_id for hit in found.hits] == ["education.report-card"]


async def test_a_service_page_shows_a_published_service_with_its_agency() -> None:
    work = await with_the_report_card_published()
    page = await use_cases.read_service(work, "education.report-card")
    assert page.service.status == "published"
    assert page.agency.code == "education"


async def test_a_draft_or_unknown_service_is_not_in_the_window() -> None:
    work = await with_education_registered()
    await use_cases.draft_service(work, service(), EDUCATION)
    for service_id in ("education.report-card", "education.none"):
        with pytest.raises(NotFound) as refused:
            await use_cases.read_service(work, service_id)
        assert refused.value.detail == f"service {service_id!r} is not in the window"
        with pytest.raises(NotFound):
            await use_cases.read_service_history(work, service_id)


async def test_a_service_history_lists_every_revision_in_order() -> None:
    work = await with_the_report_card_published()
    revisions = await use_cases.read_service_history(work, "education.report-card")
    assert [(r.revision, r.change) for r in revisions] == [
        (1, "ServiceDrafted"),
        (2, "ServicePublished"),
    ]


async def test_an_agency_page_lists_its_published_services() -> None:
    work = await with_the_report_card_published()
    await use_cases.draft_service(work, service("education.enrolment"), EDUCATION)
    page = await use_cases.read_agency(work, "education")
    assert page.agency.code == "education"
    assert [hit.service.service_id for hit in page.services.hits] == ["education.report-card"]


async def test_an_unknown_agency_has_no_page_and_no_history() -> None:
    work = FakeCatalog()
    with pytest.raises(NotFound) as page:
        await use_cases.read_agency(work, "nobody")
    assert page.value.detail == "agency 'nobody' is not registered"
    with pytest.raises(NotFound):
        await use_cases.read_agency_history(work, "nobody")


async def test_an_agency_history_lists_every_revision() -> None:
    work = await with_education_registered()
    await use_cases.update_agency(work, "education", agency(active=False), OPERATOR)
    revisions = await use_cases.read_agency_history(work, "education")
    assert [(r.revision, r.change) for r in revisions] == [
        (1, "AgencyRegistered"),
        (2, "AgencyUpdated"),
    ]


async def test_a_province_lists_national_agencies_and_its_own() -> None:
    work = FakeCatalog()
    await register(work, "education")
    await register(work, "ict-ir-15", province="IR-15")
    await register(work, "ict-ir-23", province="IR-23")
    found = await use_cases.list_agencies(work, "IR-15")
    assert [a.code for a in found] == ["education", "ict-ir-15"]


# -- deliveries -------------------------------------------------------------------------


def claim(service_id: str = "education.report-card", **overrides: Any) -> DeliveryClaim:
    return DeliveryClaim.model_validate(delivery(service_id, **overrides))


async def test_a_valid_report_is_queued_for_recording_on_the_agencys_channel() -> None:
    work = await with_the_report_card_published()
    before = len(work.published)
    made = claim()
    report = await use_cases.report_delivery(work, made, "education", now=NOW)
    assert report.report_id == made.report_id
    [queued] = work.published[before:]
    assert queued.payload == report
    assert queued.subject == "education.report-card"
    assert queued.destination == "agency.education.deliveries"


async def test_a_report_for_another_agency_is_forbidden() -> None:
    work = await with_the_report_card_published()
    before = len(work.published)
    with pytest.raises(Forbidden) as refused:
        await use_cases.report_delivery(work, claim(), "tax", now=NOW)
    assert refused.value.code == "not_your_service"
    assert refused.value.detail == "the token speaks for 'tax', not 'education'"
    assert len(work.published) == before


async def test_a_report_finished_before_it_started_is_invalid_for_its_times() -> None:
    work = await with_the_report_card_published()
    backwards = claim(finished_at=NOW - timedelta(hours=2))
    with pytest.raises(Invalid) as refused:
        await use_cases.report_delivery(work, backwards, "education", now=NOW)
    assert refused.value.code == "impossible_times"


async def test_a_report_the_register_refuses_is_invalid_with_the_problem_code() -> None:
    work = await with_education_registered()
    await use_cases.draft_service(work, service(), EDUCATION)
    with pytest.raises(Invalid) as unknown:
        await use_cases.report_delivery(work, claim("education.none"), "education", now=NOW)
    assert unknown.value.code == "unknown_service"
    with pytest.raises(Invalid) as draft:
        await use_cases.report_delivery(work, claim(), "education", now=NOW)
    assert draft.value.code == "service_not_published"


async def test_a_batch_queues_the_valid_reports_and_lists_the_refused_by_index() -> None:
    work = await with_the_report_card_published()
    before = len(work.published)
    good, bad, other = claim(), claim("education.none"), claim(agency="tax")
    taken = await use_cases.report_deliveries(work, [good, bad, other], "education", now=NOW)
    assert taken.accepted == [good.report_id]
    assert [(r.index, r.report_id, r.problem.code) for r in taken.refused] == [
        (1, bad.report_id, "unknown_service"),
        (2, other.report_id, "not_your_service"),
    ]
    assert [e.payload.report_id for e in work.published[before:]] == [good.report_id]


async def test_a_batch_with_nothing_valid_is_invalid_and_lists_every_refusal() -> None:
    work = await with_the_report_card_published()
    before = len(work.published)
    unknown, foreign = claim("education.none"), claim(agency="tax")
    with pytest.raises(Invalid) as refused:
        await use_cases.report_deliveries(work, [unknown, foreign], "education", now=NOW)
    assert refused.value.code == "invalid_delivery"
    assert refused.value.detail == "no report was accepted"
    assert refused.value.errors is not None
    assert [(e["index"], e["report_id"], e["code"]) for e in refused.value.errors] == [
        (0, str(unknown.report_id), "unknown_service"),
        (1, str(foreign.report_id), "not_your_service"),
    ]
    assert len(work.published) == before


def reported(service_id: str = "education.report-card", **overrides: Any) -> Envelope[Any]:
    report = DeliveryReported.model_validate(claim(service_id, **overrides).model_dump())
    return Envelope.wrap(report, source="education", subject=service_id)


async def test_recorded_deliveries_carry_the_maturity_and_an_id_derived_from_the_report() -> None:
    work = await with_the_report_card_published()
    before = len(work.published)
    envelope = reported()
    refused = await use_cases.record_deliveries(work, [envelope], now=NOW)
    assert refused == []
    [recorded] = work.published[before:]
    assert isinstance(recorded.payload, DeliveryRecorded)
    assert recorded.payload.maturity == 5
    assert recorded.id == delivery_event_id(envelope.payload.report_id)
    assert recorded.correlation_id == envelope.correlation_id
    assert recorded.destination == "catalog.deliveries"
    assert set(work.deliveries) == {envelope.payload.report_id}


async def test_refused_deliveries_come_back_with_their_problem_and_are_not_recorded() -> None:
    work = await with_the_report_card_published()
    before = len(work.published)
    wrong_channel = reported(channel="pishkhan")
    future = reported(finished_at=NOW + timedelta(days=1))
    refused = await use_cases.record_deliveries(work, [wrong_channel, future], now=NOW)
    assert [(e.id, p.code) for e, p in refused] == [
        (wrong_channel.id, "channel_not_offered"),
        (future.id, "impossible_times"),
    ]
    assert work.deliveries == {}
    assert len(work.published) == before


async def test_a_report_is_recorded_once_however_often_it_arrives() -> None:
    work = await with_the_report_card_published()
    before = len(work.published)
    envelope = reported()
    resent = Envelope.wrap(envelope.payload, source="education", subject=envelope.subject)
    await use_cases.record_deliveries(work, [envelope, resent], now=NOW)
    await use_cases.record_deliveries(work, [envelope], now=NOW)
    assert len(work.published) == before + 1
    assert len(work.deliveries) == 1


async def test_each_recorded_delivery_continues_its_reports_trace() -> None:
    work = await with_the_report_card_published()
    before = len(work.parents)
    first, second = reported(), reported()
    trace = Context({"trace": "first"})
    await use_cases.record_deliveries(work, [first, second], parents={first.id: trace}, now=NOW)
    assert work.parents[before:] == [trace, None]


async def test_events_other_than_delivery_reports_are_ignored() -> None:
    work = await with_education_registered()
    record = AgencyRecorded(**agency().model_dump(), revision=1)
    stray = Envelope.wrap(record, source="catalog", subject="education")
    assert await use_cases.record_deliveries(work, [stray], now=NOW) == []
    assert work.deliveries == {}
