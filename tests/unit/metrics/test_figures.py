"""What each domain counts from its events, and the figures derived from the counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.catalog.reference import reference_agencies
from services.metrics.domain import adoption, deliveries, exchange, identity
from services.metrics.domain.figures import Cell, CountsSnapshot, Figure, dims
from services.metrics.domain.reference import load_reference
from services.metrics.domain.windows import ALL_TIME, Window, window_of
from tests.integration.metrics import events
from tests.unit.metrics.fakes import FakeCounts

REFERENCE = load_reference()
DAY = window_of("day", events.AT)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _by_key(figures: list[Figure]) -> dict[str, float]:
    return {f.cell.record_key(): f.value for f in figures}


def test_a_transaction_counts_in_every_window_and_by_each_party() -> None:
    counts = FakeCounts()
    changed = counts.add_all(
        exchange.increments(events.transaction("social-security", outcome="refused").payload)
    )
    figures = _by_key(exchange.figures(changed, counts, {}))
    assert figures["exchange.transactions||day:1403-01-01"] == 1
    assert figures["exchange.transactions||minute:1403-01-01T12:00"] == 1
    assert figures["exchange.transactions|consumer=social-security|all_time:all"] == 1
    assert figures["exchange.transactions|provider=civil-registration|day:1403-01-01"] == 1
    assert figures["exchange.refusals|provider=civil-registration|day:1403-01-01"] == 1
    assert "exchange.denials|consumer=social-security|day:1403-01-01" not in figures


def test_latency_percentiles_come_from_exchange_and_provider_time() -> None:
    counts = FakeCounts()
    changed: set[Cell] = set()
    for provider_ms in [40.0] * 98 + [4000.0] * 2:
        tx = events.transaction("tax", exchange_ms=10.0, provider_ms=provider_ms)
        changed |= counts.add_all(exchange.increments(tx.payload))
    figures = _by_key(exchange.figures(changed, counts, {}))
    assert 30 < figures["exchange.latency_p50||day:1403-01-01"] <= 50
    assert 3000 < figures["exchange.latency_p99||day:1403-01-01"] <= 5000


def test_failure_and_lockout_rates_are_shares_of_sign_in_attempts() -> None:
    counts = FakeCounts()
    who = events.citizen("rates")
    changed: set[Cell] = set()
    for envelope in [events.authenticated(who)] * 3 + [events.failed(who), events.locked_out(who)]:
        changed |= counts.add_all(identity.increments(envelope))
    figures = _by_key(identity.figures(changed, counts, REFERENCE, NOW))
    assert figures["identity.failure_rate||day:1403-01-01"] == 0.25
    assert figures["identity.lockout_rate||day:1403-01-01"] == 0.25
    assert figures["identity.signins|channel=web|day:1403-01-01"] == 3


def test_adults_are_counted_against_the_adult_population_by_province_and_nationally() -> None:
    counts = FakeCounts()
    changed: set[Cell] = set()
    for name, year in (("adult", 1980), ("child", NOW.year - 10)):
        first = events.authenticated(events.citizen(name), province="IR-15", birth_year=year)
        changed |= counts.add_all(identity.first_authentication(first))
    figures = _by_key(identity.figures(changed, counts, REFERENCE, NOW))
    assert figures["identity.people_authenticated|province=IR-15|all_time:all"] == 2
    assert figures["identity.adults_authenticated|province=IR-15|all_time:all"] == 1
    assert figures["identity.adult_population_share|province=IR-15|all_time:all"] == (
        1 / REFERENCE.adults_by_province["IR-15"]
    )
    assert figures["identity.adult_population_share||all_time:all"] == 1 / REFERENCE.adults
    assert figures["identity.people_first_authenticated||day:1403-01-01"] == 2


def test_digital_take_up_and_completion_by_scope_and_visits_against_the_baseline() -> None:
    counts = FakeCounts()
    changed: set[Cell] = set()
    for channel, outcome in (
        ("online", "completed"),
        ("online", "rejected"),
        ("in_person", "completed"),
        ("pishkhan", "completed"),
    ):
        delivery = events.delivery("registry", channel=channel, outcome=outcome)  # type: ignore[arg-type]
        changed |= counts.add_all(deliveries.increments(delivery.payload))
    figures = _by_key(deliveries.figures(changed, counts, REFERENCE))
    assert figures["deliveries.digital_share||day:1403-01-01"] == 0.5
    assert figures["deliveries.completion_rate||day:1403-01-01"] == 0.75
    assert figures["deliveries.digital_share|agency=registry|all_time:all"] == 0.5
    assert figures["deliveries.digital_share|province=IR-15|day:1403-01-01"] == 0.5
    assert figures["deliveries.in_person_vs_baseline||day:1403-01-01"] == (
        1 / REFERENCE.in_person_visits_per_day
    )
    assert figures["deliveries.count|service=registry.service|day:1403-01-01"] == 4


def test_adoption_counts_published_services_by_maturity_and_connected_agencies() -> None:
    services = [
        adoption.ServiceState("a", 5, True, 1),
        adoption.ServiceState("a", 3, True, 1),
        adoption.ServiceState("b", 1, True, 1),
        adoption.ServiceState("b", 2, True, 1),
        adoption.ServiceState("b", 5, False, 1),  # a draft does not count
    ]
    agencies = [
        adoption.AgencyState("a", True, True, True, 1),
        adoption.AgencyState("b", True, True, False, 1),
        adoption.AgencyState("c", False, True, True, 1),  # inactive: not counted
    ]
    figures = _by_key(adoption.figures(services, agencies, {"a", "b", "c"}, NOW))
    assert figures["adoption.services||all_time:all"] == 4
    assert figures["adoption.services|maturity=5|all_time:all"] == 1
    assert figures["adoption.electronic_share||all_time:all"] == 0.5
    assert figures["adoption.smart_share||all_time:all"] == 0.25
    assert figures["adoption.smart_share|agency=a|all_time:all"] == 0.5
    assert figures["adoption.agencies_window_share||all_time:all"] == 0.5
    assert figures["adoption.agencies_exchange_connected||all_time:all"] == 2
    assert f"adoption.services||quarter:{window_of('quarter', NOW).label}" in figures


def test_provincial_directorates_are_not_counted_among_the_agencies_to_connect() -> None:
    national = [adoption.AgencyState(f"n{i}", True, True, i != 0, 1) for i in range(10)]
    provincial = [adoption.AgencyState(f"ict-{i}", True, False, False, 1) for i in range(31)]
    figures = _by_key(adoption.figures([], national + provincial, set(), NOW))
    assert figures["adoption.agencies||all_time:all"] == 10
    assert figures["adoption.agencies_window_share||all_time:all"] == 0.9


def test_the_seeds_99_percent_connected_comes_from_the_reference_register_by_the_rule() -> None:
    # The catalog's reference register, as its agency records reach the worker: 100
    # national agencies, all but Foreign Affairs connected, and 31 provincial directorates.
    agencies = [adoption.AgencyState.of(entry.recorded(1)) for entry in reference_agencies()]
    figures = _by_key(adoption.figures([], agencies, set(), NOW))
    assert figures["adoption.agencies||all_time:all"] == 100
    assert figures["adoption.agencies_window_connected||all_time:all"] == 99
    assert figures["adoption.agencies_window_share||all_time:all"] == 0.99


def test_exchange_connection_is_use_in_the_quarter_not_a_typed_date() -> None:
    agencies = [adoption.AgencyState(code, True, True, True, 1) for code in ("a", "b", "c", "d")]
    figures = _by_key(adoption.figures([], agencies, {"a", "elsewhere"}, NOW))
    assert figures["adoption.agencies_exchange_connected||all_time:all"] == 1
    assert figures["adoption.agencies_exchange_share||all_time:all"] == 0.25


def test_agencies_using_the_exchange_are_counted_once_per_window_as_consumer_or_provider() -> None:
    counts = FakeCounts()
    users: dict[Window, set[str]] = {}
    first = counts.add_all(exchange.increments(events.transaction("tax").payload))
    figures = _by_key(exchange.figures(first, counts, users))
    quarter = window_of("quarter", events.AT).label
    assert figures[f"exchange.agencies_using||quarter:{quarter}"] == 2  # tax and its provider
    assert figures[f"exchange.agency_transactions|agency=tax|quarter:{quarter}"] == 1
    again = counts.add_all(exchange.increments(events.transaction("tax").payload))
    figures = _by_key(exchange.figures(again, counts, users))
    assert figures[f"exchange.agencies_using||quarter:{quarter}"] == 2
    assert figures["exchange.agency_transactions|agency=tax|all_time:all"] == 2
    assert figures[f"exchange.transactions||year:{quarter[:4]}"] == 2


def test_a_cell_survives_its_text_form_whatever_its_dimension_values() -> None:
    cell = Cell("exchange.transactions", dims(purpose="a|b,c=d «فارسی»"), DAY)
    assert Cell.decode(cell.encode()) == cell
    assert Cell.decode(Cell("x", (), ALL_TIME).encode()).window == ALL_TIME


def test_a_late_event_updates_the_earlier_window_it_belongs_to() -> None:
    counts = FakeCounts()
    today = events.AT
    yesterday = today - timedelta(days=1)
    counts.add_all(exchange.increments(events.transaction("tax", at=today).payload))
    late = counts.add_all(exchange.increments(events.transaction("tax", at=yesterday).payload))
    figures = _by_key(exchange.figures(late, counts, {}))
    assert figures["exchange.transactions||day:1402-12-29"] == 1
    assert "exchange.transactions||day:1403-01-01" not in figures
    assert figures["exchange.transactions||all_time:all"] == 2
    assert counts.value(Cell("exchange.transactions", (), DAY)) == 1


def test_a_snapshot_of_two_counter_tables_answers_as_both_would_together() -> None:
    window = window_of("day", datetime(2026, 11, 1, 10, tzinfo=UTC))
    requests = Cell("exchange.requests", dims(consumer="tax"), window)
    deliveries = Cell("deliveries.count", dims(agency="tax"), window)
    both = CountsSnapshot({requests: 3.0, deliveries: 2.0}) + CountsSnapshot({deliveries: 5.0})

    assert both.value(requests) == 3.0
    assert both.value(deliveries) == 7.0
    assert both.value(Cell("deliveries.count", dims(agency="post"), window)) == 0.0
    assert list(both.cells("deliveries.count")) == [deliveries]
    assert list(both.cells("identity.signins")) == []
