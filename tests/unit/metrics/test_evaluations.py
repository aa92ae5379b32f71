"""The quarterly evaluation of agencies: measures, normalisation, score, rank and change
(`services/metrics/domain/evaluations.py`), on counters in memory."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from services.metrics.domain import evaluations as ev
from services.metrics.domain.figures import Cell
from services.metrics.domain.windows import Window, window_from_label
from shared.envelope import Envelope
from shared.events.catalog import AgencyRecorded, DeliveryRecorded, ServiceRecorded
from shared.events.exchange import FinalOutcome, TransactionRecorded
from shared.events.metrics import AgencyEvaluated
from tests.unit.metrics.fakes import FakeCounts

Q1 = window_from_label("quarter", "1404-Q1")
Q2 = window_from_label("quarter", "1404-Q2")


def _start(window: Window) -> datetime:
    assert window.start is not None
    return window.start


Q1_START, Q2_START = _start(Q1), _start(Q2)
IN_Q1 = Q1_START + timedelta(days=10)
IN_Q2 = Q2_START + timedelta(days=10)
NOW = Q2_START + timedelta(days=30)
ALL_WEIGHTS = {
    m.indicator: ev.Weighting(0.1, m.name_fa, m.name_en) for m in ev.MEASURES
}  # ten measures of 0.1: the score is the plain mean of the applicable ones


def transaction(
    consumer: str,
    provider: str | None,
    outcome: FinalOutcome = "answered",
    provider_ms: float | None = 100.0,
    at: datetime = IN_Q1,
) -> TransactionRecorded:
    return TransactionRecorded(
        transaction_id=uuid.uuid4(),
        consumer=consumer,
        provider=provider,
        data_service="civil-registration.vital-status",
        purpose="benefit-eligibility",
        outcome=outcome,
        request_bytes=1,
        response_bytes=1,
        requested_at=at - timedelta(seconds=1),
        completed_at=at,
        exchange_ms=5.0,
        provider_ms=provider_ms,
        personal_data=False,
    )


def delivery(
    agency: str, channel: str = "online", outcome: str = "completed", at: datetime = IN_Q1
) -> DeliveryRecorded:
    return DeliveryRecorded.model_validate(
        {
            "report_id": uuid.uuid4(),
            "agency": agency,
            "service_id": f"{agency}.service",
            "channel": channel,
            "province": "IR-15",
            "started_at": at - timedelta(minutes=1),
            "finished_at": at,
            "outcome": outcome,
            "maturity": 4,
        }
    )


def agency_record(
    code: str,
    *,
    window: date | None = date(2020, 1, 1),
    province: str | None = None,
    active: bool = True,
    revision: int = 1,
) -> AgencyRecorded:
    return AgencyRecorded(
        code=code,
        name_fa="سازمان آزمایشی",
        name_en="A test agency",
        ministry_fa=None,
        ministry_en=None,
        province=province,
        window_connected_since=window,
        exchange_connected_since=None,
        active=active,
        revision=revision,
    )


def entry(code: str, **fields: object) -> ev.AgencyEntry:
    made = ev.next_entry(None, agency_record(code, **fields), Q1_START - timedelta(days=400))  # type: ignore[arg-type]
    assert made is not None
    return made


def service(agency: str, number: int, maturity: int, *, published: bool = True) -> ServiceRecorded:
    return ServiceRecorded.model_validate(
        {
            "service_id": f"{agency}.service-{number}",
            "agency": agency,
            "title_fa": "خدمت",
            "title_en": "A service",
            "description_fa": "خدمت",
            "description_en": "A service",
            "category": "test",
            "audiences": ["citizens"],
            "channels": ["online"],
            "maturity": maturity,
            "data_needs": [],
            "status": "published" if published else "draft",
            "revision": 1,
        }
    )


def count(counts: FakeCounts, cells: list[Cell]) -> None:
    counts.add_all(cells)


# -- the measures ---------------------------------------------------------------------------


def test_a_transaction_counts_for_its_consumer_and_provider_in_its_quarter() -> None:
    cells = ev.transaction_increments(transaction("tax", "civil-registration", "refused", 250.0))
    assert {(c.metric, dict(c.dimensions)["agency"]) for c in cells} == {
        (ev.CONSUMER_REQUESTS, "tax"),
        (ev.PROVIDER_REQUESTS, "civil-registration"),
        (ev.REFUSED_AS_PROVIDER, "civil-registration"),
        (ev.PROVIDER_LATENCY, "civil-registration"),
    }
    assert {c.window.label for c in cells} == {"1404-Q1"}
    latency = next(c for c in cells if c.metric == ev.PROVIDER_LATENCY)
    assert dict(latency.dimensions)["le"] == "300"


def test_a_denied_request_counts_against_its_consumer_and_a_timeout_as_slowest() -> None:
    denied = ev.transaction_increments(transaction("tax", "civil-registration", "denied", None))
    timed_out = ev.transaction_increments(
        transaction("tax", "civil-registration", "timed_out", None)
    )
    assert (ev.DENIED_AS_CONSUMER, (("agency", "tax"),)) in {
        (c.metric, c.dimensions) for c in denied
    }
    assert ev.PROVIDER_LATENCY not in {c.metric for c in denied}
    (slowest,) = [c for c in timed_out if c.metric == ev.PROVIDER_LATENCY]
    assert dict(slowest.dimensions)["le"] == "inf"


def test_a_delivery_reported_after_a_day_is_not_timely() -> None:
    record = delivery("tax", channel="in_person", outcome="rejected")
    on_time = ev.delivery_increments(record, record.finished_at + timedelta(hours=23))
    late = ev.delivery_increments(record, record.finished_at + timedelta(hours=25))
    assert {c.metric for c in on_time} == {ev.DELIVERIES, ev.DELIVERIES_TIMELY}
    assert {c.metric for c in late} == {ev.DELIVERIES}


@pytest.mark.parametrize(
    ("indicator", "value", "expected"),
    [
        (ev.ELECTRONIC, 62.5, 62.5),
        (ev.AS_CONSUMER, 0.0, 0.0),
        (ev.AS_CONSUMER, 1.0, 100.0),
        (ev.WINDOW, 1.0, 100.0),
        (ev.REFUSALS, 0.0, 100.0),
        (ev.REFUSALS, 4.0, 80.0),
        (ev.REFUSALS, 25.0, 0.0),
        (ev.PROVIDER_P95, 300.0, 100.0),
        (ev.PROVIDER_P95, 2_750.0, 50.0),
        (ev.PROVIDER_P95, 120_000.0, 0.0),
        (ev.TIMELINESS, None, 0.0),
    ],
)
def test_each_measure_is_normalised_to_0_100(
    indicator: str, value: float | None, expected: float
) -> None:
    assert ev.normalised(indicator, ev.Reading(value)) == expected


def test_a_measure_that_does_not_apply_has_no_score() -> None:
    assert ev.normalised(ev.PROVIDER_P95, ev.Reading(None, applicable=False)) is None


# -- the scorecard --------------------------------------------------------------------------


def test_an_agencys_figures_come_from_its_counts_and_its_services_at_the_quarters_end() -> None:
    counts = FakeCounts()
    for record in (
        transaction("tax", "civil-registration"),
        transaction("tax", "civil-registration", "denied", None),
        transaction("civil-registration", "tax", "answered", 400.0),
        transaction("civil-registration", "tax", "refused", 900.0),
    ):
        count(counts, ev.transaction_increments(record))
    for channel, outcome, late in (
        ("online", "completed", False),
        ("online", "completed", True),
        ("in_person", "completed", False),
        ("pishkhan", "rejected", False),
    ):
        reported = delivery("tax", channel, outcome)
        lag = timedelta(days=2 if late else 0)
        count(counts, ev.delivery_increments(reported, reported.finished_at + lag))
    services = [
        ev.ServiceVersion.of(service("tax", n, m), Q1_START) for n, m in enumerate((5, 3, 1, 5))
    ]

    figures = ev.figures_of(entry("tax"), Q1, counts, services)

    values = {code: figure.value for code, figure in figures.items()}
    assert values == {
        ev.ELECTRONIC: 75.0,
        ev.SMART: 50.0,
        ev.WINDOW: 1.0,
        ev.AS_CONSUMER: 2.0,
        ev.AS_PROVIDER: 2.0,
        ev.ONLINE: 50.0,
        ev.COMPLETION: 75.0,
        ev.REFUSALS: 50.0,  # one refused as provider, one denied as consumer, of four
        ev.PROVIDER_P95: pytest.approx(975.0),  # in the 750-1000 ms bucket, interpolated
        ev.TIMELINESS: 75.0,
    }
    assert (figures[ev.REFUSALS].numerator, figures[ev.REFUSALS].denominator) == (2.0, 4.0)


def test_an_agency_without_data_scores_0_where_it_did_nothing_and_is_spared_what_cannot_apply() -> (
    None
):
    figures = ev.figures_of(entry("idle", window=None), Q1, FakeCounts(), [])
    card = ev.scorecard(entry("idle", window=None), Q1, figures, ALL_WEIGHTS)

    by_code = {m.indicator: m for m in card.measures}
    assert by_code[ev.ELECTRONIC].value is None
    assert by_code[ev.ELECTRONIC].score == 0.0
    assert by_code[ev.ONLINE].score == 0.0
    assert by_code[ev.REFUSALS].applicable is False
    assert by_code[ev.REFUSALS].score is None
    assert by_code[ev.PROVIDER_P95].score is None
    # Eight applicable measures, all 0.
    assert card.score == 0.0
    assert by_code[ev.ELECTRONIC].points_lost == pytest.approx(100 / 8, abs=0.01)


def test_the_score_is_the_mean_weighted_by_the_register() -> None:
    figures = {m.indicator: ev.Reading(None, applicable=False) for m in ev.MEASURES}
    figures[ev.ELECTRONIC] = ev.Reading(80.0)
    figures[ev.SMART] = ev.Reading(20.0)
    figures[ev.WINDOW] = ev.Reading(1.0)
    weights = {
        ev.ELECTRONIC: ev.Weighting(0.3, "الکترونیکی", "Electronic"),
        ev.SMART: ev.Weighting(0.1, "هوشمند", "Smart"),
        ev.WINDOW: ev.Weighting(0.0, "پنجره", "Window"),
    }

    card = ev.scorecard(entry("tax"), Q1, figures, weights)

    # (0.3 x 80 + 0.1 x 20) / 0.4; the window weighs nothing.
    assert card.score == 65.0
    lost = {m.indicator: m.points_lost for m in card.measures}
    assert lost[ev.ELECTRONIC] == 15.0
    assert lost[ev.SMART] == 20.0
    assert lost[ev.WINDOW] == 0.0
    assert ev.weakest(card.measures) == [ev.SMART, ev.ELECTRONIC]
    assert {m.indicator: m.name_en for m in card.measures}[ev.ELECTRONIC] == "Electronic"


def test_without_any_weight_there_is_no_score() -> None:
    figures = ev.figures_of(entry("tax"), Q1, FakeCounts(), [])
    assert ev.scorecard(entry("tax"), Q1, figures, {}).score is None


def test_equal_scores_share_a_rank_and_the_next_rank_skips() -> None:
    ranks = ev.ranks({"a": 70.0, "b": 90.0, "c": 70.0, "d": 10.0, "e": None})
    assert ranks == {"b": 1, "a": 2, "c": 2, "d": 4}


# -- who is evaluated, and the quarters -------------------------------------------------------


def test_only_national_agencies_in_the_register_during_the_quarter_are_evaluated() -> None:
    before = Q1_START - timedelta(days=1)
    national = entry("tax")
    provincial = entry("ict-ir-15", province="IR-15")
    later = ev.next_entry(None, agency_record("new", window=None), Q2_START + timedelta(days=1))
    left = ev.next_entry(national, agency_record("tax", active=False, revision=2), before)

    assert national.evaluated_in(Q1)
    assert not provincial.evaluated_in(Q1)
    assert later is not None
    assert later.evaluated_in(Q2)
    assert not later.evaluated_in(Q1)
    assert left is not None
    assert not left.evaluated_in(Q1)


def test_an_agency_record_applied_once_changes_nothing_again() -> None:
    first = entry("tax")
    assert ev.next_entry(first, agency_record("tax"), IN_Q2) is None


def test_a_service_counts_as_the_register_held_it_at_the_quarters_end() -> None:
    history = ev.with_version([], ev.ServiceVersion.of(service("tax", 1, 1), IN_Q1))
    upgraded = service("tax", 1, 5).model_copy(update={"revision": 2})
    history = ev.with_version(history, ev.ServiceVersion.of(upgraded, IN_Q2))
    assert ev.with_version(history, ev.ServiceVersion.of(upgraded, IN_Q2)) is history

    at_q1_end = ev.version_at(history, Q2_START)
    assert at_q1_end is not None
    assert at_q1_end.maturity == 1
    now = ev.version_at(history, NOW)
    assert now is not None
    assert now.maturity == 5


def _evaluate(counts: FakeCounts, agencies: list[ev.AgencyEntry]) -> list[AgencyEvaluated]:
    cells = list(counts.counts)
    return ev.evaluate(cells, counts, agencies, [], ALL_WEIGHTS, NOW)


def test_the_quarters_are_ranked_and_the_change_since_the_previous_quarter_is_given() -> None:
    counts = FakeCounts()
    agencies = [entry("busy"), entry("idle"), entry("late")]
    # Q1: busy uses the exchange both ways; late only as consumer; idle nothing.
    count(counts, ev.transaction_increments(transaction("busy", "late")))
    count(counts, ev.transaction_increments(transaction("late", "busy")))
    # Q2: idle catches up as a consumer of busy.
    count(counts, ev.transaction_increments(transaction("idle", "busy", at=IN_Q2)))

    records = {(r.quarter, r.agency): r for r in _evaluate(counts, agencies)}

    q1 = {a: records[("1404-Q1", a)] for a in ("busy", "idle", "late")}
    q2 = {a: records[("1404-Q2", a)] for a in ("busy", "idle", "late")}
    assert {a: (r.rank, r.agencies_ranked) for a, r in q1.items()} == {
        "busy": (1, 3),
        "late": (1, 3),
        "idle": (3, 3),
    }
    assert q1["idle"].score_change is None
    assert q1["idle"].previous_quarter == "1403-Q4"
    assert q1["busy"].closed is True
    assert q2["busy"].closed is False
    # In Q2 busy answered idle: busy leads, idle rose; late did nothing.
    assert [q2[a].rank for a in ("busy", "idle", "late")] == [1, 2, 3]
    assert q2["idle"].previous_score == q1["idle"].score
    assert q2["idle"].score_change == pytest.approx(q2["idle"].score - q1["idle"].score)  # type: ignore[operator]
    assert q2["idle"].rank_change == 1
    assert q2["late"].rank_change == -2
    assert ev.AS_CONSUMER in q2["late"].weakest


def test_the_running_quarter_is_evaluated_even_without_activity() -> None:
    records = _evaluate(FakeCounts(), [entry("tax")])
    assert [(r.quarter, r.agency) for r in records] == [("1404-Q2", "tax")]
    assert records[0].first_day == "1404-04-01"
    assert records[0].last_day == "1404-06-31"


def test_an_evaluation_is_plain_json_keyed_by_agency_and_quarter() -> None:
    (record,) = _evaluate(FakeCounts(), [entry("tax")])
    envelope = Envelope.wrap(record, source="metrics-worker", subject=record.record_key())
    decoded = AgencyEvaluated.model_validate_json(record.model_dump_json())
    assert envelope.key() == b"tax|1404-Q2"
    assert decoded == record
    assert record.quarter_start.tzinfo is not None
    assert record.quarter_start == Q2_START.astimezone(UTC)
