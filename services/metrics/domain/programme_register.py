"""The programme register's rules: what an operator may write, and when it is a new revision.

The register keeps three kinds of entry, each published as its latest state on a compacted
`programme.*` topic (`shared/events/programme.py`): indicators (by code), targets (by id)
and reported figures (by indicator, scope and Jalali day). Every change is a new revision
(the previous one plus one) kept in history; a write that changes nothing but who wrote it
is not a change, so repeating a write records and publishes nothing.

Operators write entries (`IndicatorDefinition`, `TargetEntry`, `ObservationReport`); the
rules here turn them into the events, or refuse them with a `shared.errors` kind whose
code says why in Persian and English (`services/metrics/messages.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, ValidationError

from shared.errors import Invalid
from shared.events.metrics import TargetProgressUpdated
from shared.events.programme import (
    INDICATOR_CODE_PATTERN,
    Direction,
    IndicatorRecorded,
    IndicatorSource,
    IndicatorUnit,
    LiveWindow,
    ObservationRecorded,
    Scope,
    TargetRecorded,
    check_scope,
)
from shared.jalali import TEHRAN, JalaliDay, jalali_day
from shared.vocabulary import Localized

Citation = Annotated[str, Field(min_length=1, max_length=500)]
ScopeCode = Annotated[str | None, Field(default=None, max_length=40)]


class _Entry(BaseModel):
    # Cross-field rules are judged by this module's functions, not by the model, so that a
    # refusal names its own problem code rather than a generic validation error.
    model_config = ConfigDict(frozen=True, extra="forbid")


class IndicatorDefinition(_Entry):
    """An indicator as the operator writes it (its code is in the address)."""

    name_fa: Localized
    name_en: Localized
    definition_fa: Localized
    definition_en: Localized
    unit: IndicatorUnit
    direction: Direction
    source: IndicatorSource
    live_metric: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_.]*$", max_length=100)
    live_dimensions: dict[
        Annotated[str, Field(min_length=1, max_length=40)],
        Annotated[str, Field(min_length=1, max_length=100)],
    ] = Field(default_factory=dict, max_length=8)
    live_window: LiveWindow | None = None
    live_scale: FiniteFloat = Field(default=1.0, gt=0)
    evaluation_weight: FiniteFloat = Field(default=0.0, ge=0, le=1)


class TargetEntry(_Entry):
    """A target as the operator writes it (its id is in the address)."""

    indicator: str = Field(pattern=INDICATOR_CODE_PATTERN)
    scope: Scope
    scope_code: ScopeCode
    baseline_value: FiniteFloat
    baseline_date: JalaliDay
    target_value: FiniteFloat
    deadline: JalaliDay
    basis_fa: Localized
    basis_en: Localized
    citation: Citation
    active: bool = True


class ObservationReport(_Entry):
    """A figure reported for an indicator, for the country, a province or an agency, on a
    Jalali day."""

    indicator: str = Field(pattern=INDICATOR_CODE_PATTERN)
    scope: Scope
    scope_code: ScopeCode
    observed_on: JalaliDay
    value: FiniteFloat
    source_fa: Localized
    source_en: Localized
    citation: Citation


Outcome = Literal["created", "revised", "unchanged"]
R = TypeVar("R", IndicatorRecorded, TargetRecorded, ObservationRecorded)
T = TypeVar("T")


@dataclass(frozen=True)
class Kept(Generic[T]):
    """An entry as the register keeps it: one revision, and when it was recorded."""

    record: T
    recorded_at: datetime


@dataclass(frozen=True)
class CurrentFigure:
    """A reported figure's current revision, and how many revisions it has had."""

    observation: ObservationRecorded
    revisions: int


@dataclass(frozen=True)
class Standing:
    """Where a target stands: the worker's latest progress, or, until the worker has
    published one, the target itself with status `no_data`."""

    progress: TargetProgressUpdated
    active: bool
    published_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            **self.progress.model_dump(mode="json"),
            "active": self.active,
            "published_at": self.published_at.isoformat() if self.published_at else None,
        }


# -- the rules ---------------------------------------------------------------------------


def day_in_tehran(now: datetime) -> date:
    """The day it is in Tehran at `now`: what the register's Jalali days are judged by."""
    return now.astimezone(TEHRAN).date()


def check_indicator(definition: IndicatorDefinition) -> None:
    """Invalid unless a live indicator names what it reads and a reported one does not."""
    if definition.source == "live" and (
        definition.live_metric is None or definition.live_window is None
    ):
        raise Invalid("live_indicator_unnamed", "a live indicator names its metric and window")
    if definition.source != "live" and (
        definition.live_metric is not None
        or definition.live_window is not None
        or definition.live_dimensions
    ):
        raise Invalid(
            "reported_indicator_named_live", f"a {definition.source} indicator reads no metric"
        )


def check_scope_code(scope: Scope, scope_code: str | None) -> None:
    """Invalid `invalid_scope` unless the code names what the scope needs."""
    try:
        check_scope(scope, scope_code)
    except ValueError as error:
        raise Invalid("invalid_figure_scope", str(error)) from None


def check_target(entry: TargetEntry) -> None:
    """Invalid unless the target's scope fits, its deadline follows its baseline and its
    value differs from the baseline."""
    check_scope_code(entry.scope, entry.scope_code)
    # Jalali days written YYYY-MM-DD compare as text.
    if entry.deadline <= entry.baseline_date:
        raise Invalid(
            "deadline_not_after_baseline",
            f"deadline {entry.deadline} is not after baseline date {entry.baseline_date}",
        )
    if entry.target_value == entry.baseline_value:
        raise Invalid("target_is_baseline", "the target's value is its baseline's")


def check_observation(report: ObservationReport, today: date) -> None:
    """Invalid unless the figure's scope fits and its day has come (Tehran's `today`)."""
    check_scope_code(report.scope, report.scope_code)
    if report.observed_on > jalali_day(today):
        raise Invalid(
            "observed_in_future", f"{report.observed_on} is after today, {jalali_day(today)}"
        )


def _event(kind: type[R], fields: dict[str, Any]) -> R:
    # The checks above cover the events' own rules; should one slip through, it is still
    # the writer's input that is refused, never an answer of 500.
    try:
        return kind.model_validate(fields)
    except ValidationError as error:
        problems = [
            {"location": [str(p) for p in e.get("loc", ())], "reason": e.get("msg", "")}
            for e in error.errors()
        ]
        raise Invalid("invalid_programme_entry", "see errors", errors=problems) from None


_WHO = frozenset({"revision", "changed_by", "reported_by"})


def _same(current: R, proposed: R) -> bool:
    """Whether two revisions say the same thing (who wrote them aside)."""
    return current.model_dump(exclude=set(_WHO)) == proposed.model_dump(exclude=set(_WHO))


def _next(current: R | None, proposed: R) -> R | None:
    """`proposed` as the revision after `current`; None if it changes nothing."""
    if current is None:
        return proposed
    if _same(current, proposed):
        return None
    return proposed.model_copy(update={"revision": current.revision + 1})


def indicator_revision(
    code: str, definition: IndicatorDefinition, current: IndicatorRecorded | None, by: str
) -> IndicatorRecorded | None:
    """The indicator's next revision, or None if `definition` is what it already says."""
    check_indicator(definition)
    proposed = _event(
        IndicatorRecorded,
        {**definition.model_dump(), "code": code, "revision": 1, "changed_by": by},
    )
    return _next(current, proposed)


def target_revision(
    target_id: str, entry: TargetEntry, current: TargetRecorded | None, by: str
) -> TargetRecorded | None:
    """The target's next revision, or None if `entry` is what it already says."""
    check_target(entry)
    proposed = _event(
        TargetRecorded,
        {**entry.model_dump(), "target_id": target_id, "revision": 1, "changed_by": by},
    )
    return _next(current, proposed)


def reported_figure(report: ObservationReport, by: str, today: date) -> ObservationRecorded:
    """The figure as a first revision (its key says which earlier revisions it follows)."""
    check_observation(report, today)
    return _event(ObservationRecorded, {**report.model_dump(), "reported_by": by, "revision": 1})


def observation_revision(
    proposed: ObservationRecorded, current: ObservationRecorded | None
) -> ObservationRecorded | None:
    """A correction supersedes the current figure of its key with the next revision; the
    same figure again is None."""
    return _next(current, proposed)
