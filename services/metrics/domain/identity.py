"""Figures of identity: sign-ins, failures, lockouts, and the people ever authenticated."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from services.metrics.domain.figures import Cell, Counts, Figure, cells_in, dims, ratio
from services.metrics.domain.reference import Reference
from services.metrics.domain.windows import ALL_TIME, Window, windows_of
from shared.envelope import Envelope
from shared.events.identity import (
    AuthenticationFailed,
    CitizenAuthenticated,
    CitizenLockedOut,
    CitizenRegistered,
)
from shared.events.metrics import Granularity

TOTAL_WINDOWS: tuple[Granularity, ...] = ("hour", "day", "week", "quarter", "year", "all_time")
BREAKDOWN_WINDOWS: tuple[Granularity, ...] = ("day", "all_time")

REGISTRATIONS = "identity.registrations"
SIGNINS = "identity.signins"
FAILURES = "identity.failures"
LOCKOUTS = "identity.lockouts"
FAILURE_RATE = "identity.failure_rate"
LOCKOUT_RATE = "identity.lockout_rate"
# People by province and year of birth, counted at their first sign-in: who is an adult
# changes with the calendar, so the adult figures are derived from these when published.
COHORT = "identity.people_cohort"
NEW_PEOPLE = "identity.people_first_authenticated"
PEOPLE = "identity.people_authenticated"
ADULTS = "identity.adults_authenticated"
ADULT_SHARE = "identity.adult_population_share"
ADULT_AGE = 18

IdentityEvent = CitizenRegistered | CitizenAuthenticated | AuthenticationFailed | CitizenLockedOut


def increments(envelope: Envelope[IdentityEvent]) -> list[Cell]:
    """The cells one identity event adds one to (event time: the envelope's `occurred_at`)."""
    event = envelope.payload
    at = envelope.occurred_at
    totals = windows_of(TOTAL_WINDOWS, at)
    breakdown = windows_of(BREAKDOWN_WINDOWS, at)
    if isinstance(event, CitizenRegistered):
        return [*cells_in(REGISTRATIONS, breakdown, (), dims(province=event.province))]
    if isinstance(event, CitizenAuthenticated):
        return [
            *cells_in(SIGNINS, totals, ()),
            *cells_in(
                SIGNINS, breakdown, dims(channel=event.channel), dims(province=event.province)
            ),
        ]
    if isinstance(event, AuthenticationFailed):
        return [
            *cells_in(FAILURES, totals, ()),
            *cells_in(FAILURES, breakdown, dims(reason=event.reason)),
        ]
    return [*cells_in(LOCKOUTS, totals, ())]


def first_authentication(envelope: Envelope[CitizenAuthenticated]) -> list[Cell]:
    """The cells a citizen's first sign-in ever adds one to (people new that day, etc.)."""
    event = envelope.payload
    return [
        Cell(COHORT, dims(birth_year=str(event.birth_year), province=event.province), ALL_TIME),
        *cells_in(NEW_PEOPLE, windows_of(BREAKDOWN_WINDOWS, envelope.occurred_at), ()),
    ]


def figures(
    changed: Iterable[Cell], counts: Counts, reference: Reference, now: datetime
) -> list[Figure]:
    """What to publish after these cells changed: counts, rates and people figures."""
    out: list[Figure] = []
    rate_windows: set[Window] = set()
    people_changed = False
    for cell in changed:
        if cell.metric == COHORT:
            people_changed = True
            continue
        out.append(Figure(cell, counts.value(cell), "count"))
        if cell.metric in (SIGNINS, FAILURES, LOCKOUTS) and not cell.dimensions:
            rate_windows.add(cell.window)
    for window in sorted(rate_windows):
        attempts = counts.value(Cell(SIGNINS, (), window)) + counts.value(
            Cell(FAILURES, (), window)
        )
        failures = counts.value(Cell(FAILURES, (), window))
        lockouts = counts.value(Cell(LOCKOUTS, (), window))
        out.append(Figure(Cell(FAILURE_RATE, (), window), ratio(failures, attempts), "ratio"))
        out.append(Figure(Cell(LOCKOUT_RATE, (), window), ratio(lockouts, attempts), "ratio"))
    if people_changed:
        out.extend(people_figures(counts, reference, now))
    return out


def people_figures(counts: Counts, reference: Reference, now: datetime) -> list[Figure]:
    """People ever authenticated and adults among them, nationally and by province."""
    adult_born_by = now.year - ADULT_AGE
    people: dict[str, float] = {}
    adults: dict[str, float] = {}
    for cell in counts.cells(COHORT):
        values = dict(cell.dimensions)
        province = values["province"]
        count = counts.value(cell)
        people[province] = people.get(province, 0.0) + count
        if int(values["birth_year"]) <= adult_born_by:
            adults[province] = adults.get(province, 0.0) + count
    out: list[Figure] = []
    for province in sorted(people):
        scope = dims(province=province)
        adult_count = adults.get(province, 0.0)
        population = reference.adults_by_province.get(province, 0)
        out.append(Figure(Cell(PEOPLE, scope, ALL_TIME), people[province], "people"))
        out.append(Figure(Cell(ADULTS, scope, ALL_TIME), adult_count, "people"))
        out.append(
            Figure(Cell(ADULT_SHARE, scope, ALL_TIME), ratio(adult_count, population), "ratio")
        )
    total_adults = sum(adults.values())
    out.append(Figure(Cell(PEOPLE, (), ALL_TIME), sum(people.values()), "people"))
    out.append(Figure(Cell(ADULTS, (), ALL_TIME), total_adults, "people"))
    out.append(
        Figure(Cell(ADULT_SHARE, (), ALL_TIME), ratio(total_adults, reference.adults), "ratio")
    )
    return out
