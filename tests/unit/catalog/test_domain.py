"""The register's rules and the checks on deliveries, without I/O."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from services.catalog.domain import (
    AgencyEntry,
    ServiceContent,
    ServiceView,
    changed_fields,
    check_delivery,
    folded_query,
    move_service,
    new_service,
    revise_agency,
    revise_service,
    search_text,
)
from shared.errors import Conflict, Invalid
from shared.events.catalog import DeliveryReported, ServiceRecorded
from tests.unit.catalog.builders import NOW, delivery, service

AGENCY = AgencyEntry(
    code="education", name_fa="وزارت آموزش و پرورش", name_en="Ministry of Education"
)


def drafted() -> ServiceRecorded:
    return new_service(service(), AGENCY.recorded(1))


def test_a_new_service_is_a_draft_at_revision_one_owned_by_its_id_prefix() -> None:
    service = drafted()
    assert (service.status, service.revision, service.agency) == ("draft", 1, "education")


def test_a_service_of_an_unknown_or_inactive_agency_is_refused() -> None:
    with pytest.raises(Invalid) as unknown:
        new_service(service("tax.return"), AGENCY.recorded(1))
    assert unknown.value.code == "unknown_agency"
    inactive = AGENCY.model_copy(update={"active": False}).recorded(2)
    with pytest.raises(Conflict) as refused:
        new_service(service(), inactive)
    assert refused.value.code == "agency_inactive"


def test_a_service_goes_draft_published_retired_and_never_back() -> None:
    published = move_service(drafted(), "published")
    assert published is not None
    assert published[0].status == "published"
    assert published[0].revision == 2
    assert published[1] == "ServicePublished"
    assert move_service(published[0], "published") is None
    retired = move_service(published[0], "retired")
    assert retired is not None
    assert retired[1] == "ServiceRetired"
    with pytest.raises(Conflict) as refused:
        move_service(retired[0], "published")
    assert refused.value.code == "status_transition_refused"


def test_a_revision_names_exactly_the_fields_it_changed() -> None:
    service = drafted()
    changed = {**service.model_dump(), "maturity": 4, "channels": ["online", "pishkhan"]}
    content = ServiceContent.model_validate(
        {k: v for k, v in changed.items() if k in ServiceContent.model_fields}
    )
    revised = revise_service(service, content)
    assert revised is not None
    record, fields = revised
    assert sorted(fields) == ["channels", "maturity"]
    assert record.revision == 2


def test_an_unchanged_entry_makes_no_revision() -> None:
    service = drafted()
    same = ServiceContent.model_validate(
        {k: v for k, v in service.model_dump().items() if k in ServiceContent.model_fields}
    )
    assert revise_service(service, same) is None
    assert revise_agency(AGENCY.recorded(1), AGENCY) is None


def test_a_retired_service_cannot_change() -> None:
    retired = drafted().model_copy(update={"status": "retired"})
    content = ServiceContent.model_validate(
        {k: v for k, v in retired.model_dump().items() if k in ServiceContent.model_fields}
    )
    with pytest.raises(Conflict) as refused:
        revise_service(retired, content)
    assert refused.value.code == "service_retired"


def test_an_agency_change_names_its_fields_and_never_its_code() -> None:
    connected = AGENCY.model_copy(update={"window_connected_since": NOW.date()})
    revised = revise_agency(AGENCY.recorded(1), connected)
    assert revised is not None
    assert revised[1] == ["window_connected_since"]
    assert revised[0].revision == 2
    assert changed_fields(None, {"a": 1, "revision": 1}) == ["a"]


def test_stored_text_and_query_fold_alike_whatever_letter_forms_and_zwnj() -> None:
    text = search_text(drafted())
    # Typed with Arabic kaf and yeh, and no ZWNJ at all.
    spaced, joined = folded_query("مشاهده كارنامه دانشآموز")
    assert "کارنامه" in spaced
    assert "دانشاموز" in joined.split()
    assert set(joined.split()) <= set(text.title.split())
    # And with the ZWNJ replaced by a space.
    assert set(folded_query("دانش آموز")[0].split()) <= set(text.title.split())


def report(**overrides: Any) -> DeliveryReported:
    return DeliveryReported(**delivery(**overrides))


VIEW = ServiceView(
    service_id="education.report-card",
    agency="education",
    status="published",
    channels=("online",),
    maturity=5,
    agency_province=None,
)


def test_a_delivery_of_a_published_service_by_its_agency_passes() -> None:
    assert check_delivery(report(), VIEW, NOW) is None


@pytest.mark.parametrize(
    ("report_overrides", "view", "code"),
    [
        ({}, None, "unknown_service"),
        ({}, VIEW.__class__(**{**VIEW.__dict__, "status": "retired"}), "service_retired"),
        ({}, VIEW.__class__(**{**VIEW.__dict__, "status": "draft"}), "service_not_published"),
        ({"agency": "tax"}, VIEW, "wrong_agency"),
        ({"finished_at": NOW + timedelta(hours=1)}, VIEW, "impossible_times"),
        ({"channel": "in_person"}, VIEW, "channel_not_offered"),
        (
            {"province": "IR-23"},
            VIEW.__class__(**{**VIEW.__dict__, "agency_province": "IR-15"}),
            "outside_agency_scope",
        ),
    ],
)
def test_each_kind_of_bad_delivery_is_refused_with_its_code(
    report_overrides: dict[str, Any], view: ServiceView | None, code: str
) -> None:
    problem = check_delivery(report(**report_overrides), view, NOW)
    assert problem is not None
    assert problem.code == code
    assert str(problem).startswith(code + ": ")


def test_a_delivery_finished_before_it_started_cannot_even_be_built() -> None:
    with pytest.raises(ValueError, match="finished_at is before started_at"):
        report(finished_at=NOW - timedelta(hours=1))


def test_a_clock_a_little_ahead_is_not_the_future() -> None:
    assert check_delivery(report(finished_at=NOW + timedelta(minutes=1)), VIEW, NOW) is None


@pytest.mark.parametrize("connected", ["0136-02-09", "9999-12-31"])
def test_a_connection_date_the_jalali_calendar_cannot_show_is_refused_at_entry(
    connected: str,
) -> None:
    # The agency's page shows the date in Jalali; outside that calendar it would fail
    # only after the agency was recorded.
    with pytest.raises(ValidationError):
        AgencyEntry.model_validate(
            {**AGENCY.model_dump(mode="json"), "window_connected_since": connected}
        )
