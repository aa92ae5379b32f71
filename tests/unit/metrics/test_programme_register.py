"""The programme register's use cases on an in-memory unit of work: revisions, refusals,
corrections, where targets stand, and the reference register."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

import services.metrics.messages  # noqa: F401  (registers the codes refusals carry)
from services.metrics.domain.programme_register import (
    IndicatorDefinition,
    ObservationReport,
    TargetEntry,
    day_in_tehran,
)
from services.metrics.programme_reference import reference_register
from services.metrics.use_cases import programme
from shared.errors import Invalid, NotFound
from shared.events.metrics import ProgressPoint, TargetProgressUpdated
from shared.events.programme import IndicatorRecorded, ObservationRecorded, TargetRecorded
from shared.jalali import parse_jalali_day
from shared.messages import MESSAGES
from tests.unit.metrics.fakes import FakeProgrammeWork

TODAY = parse_jalali_day("1405-09-08")
OPERATOR = "operator:ito:console"


def indicator(**changes: Any) -> IndicatorDefinition:
    fields: dict[str, Any] = {
        "name_fa": "پیشرفت شبکه ملی اطلاعات",
        "name_en": "National Information Network progress",
        "definition_fa": "درصد پیشرفت پروژه شبکه ملی اطلاعات",
        "definition_en": "Completion of the network, in percent",
        "unit": "percent",
        "direction": "increase",
        "source": "reported",
    }
    return IndicatorDefinition.model_validate(fields | changes)


def target(**changes: Any) -> TargetEntry:
    fields: dict[str, Any] = {
        "indicator": "network_progress",
        "scope": "national",
        "baseline_value": 32,
        "baseline_date": "1400-05-12",
        "target_value": 100,
        "deadline": "1407-12-29",
        "basis_fa": "برنامه هفتم توسعه",
        "basis_en": "7th development plan",
        "citation": "A2",
    }
    return TargetEntry.model_validate(fields | changes)


def figure(value: float = 65, **changes: Any) -> ObservationReport:
    fields: dict[str, Any] = {
        "indicator": "network_progress",
        "scope": "national",
        "observed_on": "1403-04-03",
        "value": value,
        "source_fa": "گزارش وزیر به مجلس",
        "source_en": "The minister's report to parliament",
        "citation": "A2",
    }
    return ObservationReport.model_validate(fields | changes)


async def with_indicator(work: FakeProgrammeWork, code: str = "network_progress") -> None:
    await programme.record_indicator(work, code, indicator(), OPERATOR)


async def refused(work: FakeProgrammeWork, write: Any) -> Invalid:
    """The refusal `write` ends in, having recorded and published nothing."""
    before = (
        len(work.published),
        {k: len(v) for k, v in work.target_revisions.items()},
        {k: len(v) for k, v in work.observation_revisions.items()},
        {k: len(v) for k, v in work.indicator_revisions.items()},
    )
    with pytest.raises(Invalid) as refusal:
        await write
    after = (
        len(work.published),
        {k: len(v) for k, v in work.target_revisions.items()},
        {k: len(v) for k, v in work.observation_revisions.items()},
        {k: len(v) for k, v in work.indicator_revisions.items()},
    )
    assert after == before
    assert refusal.value.status == 422
    assert set(MESSAGES[refusal.value.code]) == {"fa", "en"}
    return refusal.value


# -- indicators ----------------------------------------------------------------------------


async def test_a_new_indicator_is_revision_one_published_under_its_code() -> None:
    work = FakeProgrammeWork()
    written = await programme.record_indicator(work, "network_progress", indicator(), OPERATOR)
    assert (written.outcome, written.record.revision) == ("created", 1)
    (envelope,) = work.published
    assert envelope.subject == "network_progress"
    assert envelope.source == "metrics"
    assert envelope.payload == written.record
    assert envelope.payload.changed_by == OPERATOR


async def test_changing_an_indicator_records_and_publishes_its_next_revision() -> None:
    work = FakeProgrammeWork()
    await with_indicator(work)
    written = await programme.record_indicator(
        work, "network_progress", indicator(evaluation_weight=0.25), "operator:ito:other"
    )
    assert (written.outcome, written.record.revision) == ("revised", 2)
    assert [e.payload.revision for e in work.published] == [1, 2]
    assert [r.evaluation_weight for r in work.indicator_revisions["network_progress"]] == [0, 0.25]


async def test_writing_an_indicator_as_it_already_is_records_and_publishes_nothing() -> None:
    work = FakeProgrammeWork()
    await with_indicator(work)
    again = await programme.record_indicator(
        work, "network_progress", indicator(), "operator:ito:someone-else"
    )
    assert (again.outcome, again.record.revision) == ("unchanged", 1)
    assert len(work.published) == 1
    assert len(work.indicator_revisions["network_progress"]) == 1


async def test_a_live_indicator_that_names_no_metric_is_refused() -> None:
    work = FakeProgrammeWork()
    refusal = await refused(
        work,
        programme.record_indicator(
            work, "people", indicator(source="live", live_window="all_time"), OPERATOR
        ),
    )
    assert refusal.code == "live_indicator_unnamed"


async def test_a_reported_indicator_that_names_a_metric_is_refused() -> None:
    work = FakeProgrammeWork()
    refusal = await refused(
        work,
        programme.record_indicator(
            work, "people", indicator(live_metric="identity.people_authenticated"), OPERATOR
        ),
    )
    assert refusal.code == "reported_indicator_named_live"


# -- targets -------------------------------------------------------------------------------


async def test_a_target_of_an_indicator_not_in_the_register_is_refused() -> None:
    work = FakeProgrammeWork()
    refusal = await refused(
        work, programme.record_target(work, "plan7.network", target(), OPERATOR)
    )
    assert refusal.code == "unknown_indicator"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"deadline": "1400-05-12"}, "deadline_not_after_baseline"),
        ({"deadline": "1399-01-01"}, "deadline_not_after_baseline"),
        ({"target_value": 32}, "target_is_baseline"),
        ({"scope": "province"}, "invalid_figure_scope"),
        ({"scope": "province", "scope_code": "IR-99"}, "invalid_figure_scope"),
        ({"scope_code": "IR-15"}, "invalid_figure_scope"),
        ({"scope": "agency", "scope_code": "Not An Agency"}, "invalid_figure_scope"),
    ],
)
async def test_a_target_that_breaks_a_rule_is_refused_with_the_rules_code(
    changes: dict[str, Any], code: str
) -> None:
    work = FakeProgrammeWork()
    await with_indicator(work)
    refusal = await refused(
        work, programme.record_target(work, "plan7.network", target(**changes), OPERATOR)
    )
    assert refusal.code == code


async def test_a_target_is_published_under_its_id_and_withdrawing_it_is_a_revision() -> None:
    work = FakeProgrammeWork()
    await with_indicator(work)
    created = await programme.record_target(work, "plan7.network", target(), OPERATOR)
    assert (created.outcome, created.record.revision, created.record.active) == ("created", 1, True)
    withdrawn = await programme.record_target(work, "plan7.network", target(active=False), OPERATOR)
    assert (withdrawn.outcome, withdrawn.record.revision) == ("revised", 2)
    targets = [e for e in work.published if isinstance(e.payload, TargetRecorded)]
    assert [(e.subject, e.payload.active) for e in targets] == [
        ("plan7.network", True),
        ("plan7.network", False),
    ]
    page = await programme.target_page(work, "plan7.network", TODAY)
    assert [kept.record.active for kept in page.history] == [True, False]
    assert page.standing.active is False


# -- reported figures ----------------------------------------------------------------------


async def test_a_correction_supersedes_the_figure_and_the_earlier_revision_is_kept() -> None:
    work = FakeProgrammeWork()
    await with_indicator(work)
    first = await programme.record_observation(work, figure(65), OPERATOR, TODAY)
    corrected = await programme.record_observation(work, figure(66.5), OPERATOR, TODAY)
    assert (first.outcome, first.record.revision) == ("created", 1)
    assert (corrected.outcome, corrected.record.revision) == ("revised", 2)
    (current,) = await programme.list_observations(work, "network_progress", None, None)
    assert (current.observation.value, current.revisions) == (66.5, 2)
    key = "network_progress|national:|1403-04-03"
    assert [o.value for o in work.observation_revisions[key]] == [65, 66.5]
    published = [e for e in work.published if isinstance(e.payload, ObservationRecorded)]
    assert [(e.subject, e.payload.revision) for e in published] == [(key, 1), (key, 2)]


async def test_the_same_figure_reported_again_records_and_publishes_nothing() -> None:
    work = FakeProgrammeWork()
    await with_indicator(work)
    await programme.record_observation(work, figure(65), OPERATOR, TODAY)
    again = await programme.record_observation(work, figure(65), "operator:ito:another", TODAY)
    assert (again.outcome, again.record.revision) == ("unchanged", 1)
    assert len(work.events(ObservationRecorded)) == 1


async def test_figures_of_other_days_or_scopes_are_figures_of_their_own() -> None:
    work = FakeProgrammeWork()
    await with_indicator(work)
    await programme.record_observation(work, figure(65), OPERATOR, TODAY)
    await programme.record_observation(
        work, figure(70, scope="province", scope_code="IR-15"), OPERATOR, TODAY
    )
    await programme.record_observation(work, figure(80, observed_on="1404-01-01"), OPERATOR, TODAY)
    everything = await programme.list_observations(work, None, None, None)
    assert [(f.observation.value, f.revisions) for f in everything] == [(65, 1), (80, 1), (70, 1)]
    lorestan = await programme.list_observations(work, "network_progress", "province", "IR-15")
    assert [f.observation.value for f in lorestan] == [70]


async def test_a_figure_for_a_day_that_has_not_come_is_refused() -> None:
    work = FakeProgrammeWork()
    await with_indicator(work)
    refusal = await refused(
        work, programme.record_observation(work, figure(observed_on="1405-09-09"), OPERATOR, TODAY)
    )
    assert refusal.code == "observed_in_future"
    today = await programme.record_observation(
        work, figure(observed_on="1405-09-08"), OPERATOR, TODAY
    )
    assert today.outcome == "created"


async def test_a_figure_of_an_indicator_not_in_the_register_is_refused() -> None:
    work = FakeProgrammeWork()
    refusal = await refused(work, programme.record_observation(work, figure(), OPERATOR, TODAY))
    assert refusal.code == "unknown_indicator"


def test_the_day_is_tehrans() -> None:
    # 21:00 UTC on 20 March 2024 is already 1403-01-02 in Tehran (UTC+03:30).
    assert day_in_tehran(datetime(2024, 3, 20, 21, tzinfo=UTC)) == date(2024, 3, 21)
    assert day_in_tehran(datetime(2024, 3, 20, 20, tzinfo=UTC)) == date(2024, 3, 20)


# -- where targets stand -------------------------------------------------------------------


def progress(target_id: str = "plan7.network", value: float = 65) -> TargetProgressUpdated:
    return TargetProgressUpdated(
        target_id=target_id,
        indicator="network_progress",
        indicator_name_fa="پیشرفت شبکه ملی اطلاعات",
        indicator_name_en="National Information Network progress",
        unit="percent",
        direction="increase",
        scope="national",
        scope_code=None,
        baseline_value=32,
        baseline_date="1400-05-12",
        target_value=100,
        deadline="1407-12-29",
        current_value=value,
        current_as_of="1403-04-03",
        progress=(value - 32) / 68,
        expected_progress=0.5,
        trend_per_year=11.0,
        projected_value=99.0,
        status="at_risk",
        series=[ProgressPoint(day="1403-04-03", value=value)],
        basis_fa="برنامه هفتم توسعه",
        basis_en="7th development plan",
        citation="A2",
        evaluated_on="1405-09-08",
    )


async def test_a_target_the_worker_has_not_evaluated_stands_at_no_data_on_its_own_terms() -> None:
    work = FakeProgrammeWork()
    await with_indicator(work)
    await programme.record_target(work, "plan7.network", target(), OPERATOR)
    (standing,) = await programme.target_standings(work, TODAY)
    assert standing.progress.status == "no_data"
    assert standing.published_at is None
    listed = standing.as_json()
    assert listed["target_id"] == "plan7.network"
    assert listed["indicator_name_en"] == "National Information Network progress"
    assert (listed["baseline_value"], listed["target_value"]) == (32, 100)
    assert listed["current_value"] is None
    assert listed["active"] is True


async def test_the_workers_latest_progress_is_where_a_target_stands() -> None:
    work = FakeProgrammeWork()
    await with_indicator(work)
    await programme.record_target(work, "plan7.network", target(), OPERATOR)
    at = datetime(2026, 11, 29, 12, tzinfo=UTC)
    await programme.project_progress(work, progress(value=60), at)
    await programme.project_progress(work, progress(value=65), at + timedelta(seconds=1))
    # An older publication arriving late never replaces a newer one.
    await programme.project_progress(work, progress(value=50), at - timedelta(seconds=1))
    (standing,) = await programme.target_standings(work, TODAY)
    assert (standing.progress.status, standing.progress.current_value) == ("at_risk", 65)
    assert standing.published_at == at + timedelta(seconds=1)


async def test_progress_of_a_target_the_register_lacks_is_listed_too() -> None:
    work = FakeProgrammeWork()
    await programme.project_progress(work, progress("elsewhere"), datetime.now(UTC))
    (standing,) = await programme.target_standings(work, TODAY)
    assert standing.progress.target_id == "elsewhere"
    page = await programme.target_page(work, "elsewhere", TODAY)
    assert page.history == []


async def test_a_target_nobody_knows_is_not_found() -> None:
    work = FakeProgrammeWork()
    with pytest.raises(NotFound):
        await programme.target_page(work, "plan9.nothing", TODAY)


# -- the reference register ----------------------------------------------------------------


def test_the_reference_register_holds_the_indicators_targets_and_figures_of_its_sources() -> None:
    register = reference_register()
    assert (len(register.indicators), len(register.targets), len(register.observations)) == (
        29,
        6,
        12,
    )
    codes = {code for code, _ in register.indicators}
    assert {entry.indicator for _, entry in register.targets} <= codes
    assert {report.indicator for report in register.observations} <= codes


async def test_loading_the_reference_twice_records_it_once() -> None:
    work = FakeProgrammeWork()
    register = reference_register()
    args = (register.indicators, register.targets, register.observations)
    first = await programme.load_register(work, *args, "operator:reference-data", TODAY)
    published = len(work.published)
    assert published == 29 + 6 + 12
    second = await programme.load_register(work, *args, "operator:reference-data", TODAY)
    assert len(work.published) == published
    assert first.created == {"indicators": 29, "targets": 6, "observations": 12}
    assert second.created == {}
    assert second.kept == {"indicators": 29, "targets": 6, "observations": 12}
    assert {e.payload.revision for e in work.published} == {1}
    (standing,) = [
        s
        for s in await programme.target_standings(work, TODAY)
        if s.progress.target_id == "lorestan.villages-connected"
    ]
    assert (standing.progress.scope_code, standing.progress.status) == ("IR-15", "no_data")


async def test_loading_the_reference_leaves_what_the_operator_changed_alone() -> None:
    work = FakeProgrammeWork()
    register = reference_register()
    args = (register.indicators, register.targets, register.observations)
    await programme.load_register(work, *args, "operator:reference-data", TODAY)
    code, definition = register.indicators[0]
    changed = definition.model_copy(update={"evaluation_weight": 0.5})
    await programme.record_indicator(work, code, changed, OPERATOR)
    published = len(work.published)
    await programme.load_register(work, *args, "operator:reference-data", TODAY)
    assert len(work.published) == published
    current = await work.indicator(code)
    assert current is not None
    assert (current.revision, current.evaluation_weight) == (2, 0.5)


# -- the entries are the events' fields ----------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "event", "written_by_the_register"),
    [
        (IndicatorDefinition, IndicatorRecorded, {"code", "revision", "changed_by"}),
        (TargetEntry, TargetRecorded, {"target_id", "revision", "changed_by"}),
        (ObservationReport, ObservationRecorded, {"revision", "reported_by"}),
    ],
)
def test_an_entry_carries_every_field_of_its_event_but_those_the_register_writes(
    entry: type[Any], event: type[Any], written_by_the_register: set[str]
) -> None:
    assert set(entry.model_fields) == set(event.model_fields) - written_by_the_register
