"""The programme register's use cases: operators record indicators, targets and reported
figures; readers see them, and where each target stands.

A write judges the entry (`domain.programme_register`), writes the entry's next revision
and publishes it, in the same transaction, as its latest state on its compacted topic
(`programme.indicators` by code, `programme.targets` by target id,
`programme.observations` by indicator, scope and day); the metrics worker follows the
three and publishes each target's progress on `metrics.programme`, which
`project_progress` keeps. A write that changes nothing records and publishes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Generic, Literal, Protocol, TypeVar

from services.metrics.domain import programme_register as rules
from services.metrics.domain.programme import target_progress
from services.metrics.domain.programme_register import (
    CurrentFigure,
    IndicatorDefinition,
    Kept,
    ObservationReport,
    Outcome,
    Standing,
    TargetEntry,
)
from shared.envelope import Envelope
from shared.errors import Invalid, NotFound
from shared.events.metrics import TargetProgressUpdated
from shared.events.programme import (
    IndicatorRecorded,
    ObservationRecorded,
    Scope,
    TargetRecorded,
)
from shared.unit_of_work import Publisher

SOURCE = "metrics"

R = TypeVar("R", IndicatorRecorded, TargetRecorded, ObservationRecorded)


class ProgrammeWork(Publisher, Protocol):
    """The storage the register's use cases need (`storage.ProgrammeStorage`).

    `for_update` locks the entry, even one not written yet, to the end of the transaction.
    """

    async def indicator(
        self, code: str, *, for_update: bool = False
    ) -> IndicatorRecorded | None: ...

    async def indicators(self) -> list[IndicatorRecorded]: ...

    async def count_indicators(self) -> int: ...

    async def write_indicator(self, record: IndicatorRecorded) -> None: ...

    async def target(
        self, target_id: str, *, for_update: bool = False
    ) -> TargetRecorded | None: ...

    async def targets(self) -> list[TargetRecorded]: ...

    async def target_history(self, target_id: str) -> list[Kept[TargetRecorded]]: ...

    async def write_target(self, record: TargetRecorded) -> None: ...

    async def observation(
        self, key: str, *, for_update: bool = False
    ) -> ObservationRecorded | None: ...

    async def observations(
        self, indicator: str | None, scope: Scope | None, scope_code: str | None
    ) -> list[CurrentFigure]: ...

    async def write_observation(self, record: ObservationRecorded) -> None: ...

    async def keep_progress(
        self, progress: TargetProgressUpdated, occurred_at: datetime
    ) -> None: ...

    async def progress(self) -> list[tuple[TargetProgressUpdated, datetime]]: ...

    async def progress_of(
        self, target_id: str
    ) -> tuple[TargetProgressUpdated, datetime] | None: ...


@dataclass(frozen=True)
class Recorded(Generic[R]):
    """What a write left in the register: the entry's current revision, and whether the
    write created it, revised it, or found it saying that already."""

    outcome: Outcome
    record: R


# -- operators write ---------------------------------------------------------------------


async def record_indicator(
    work: ProgrammeWork, code: str, definition: IndicatorDefinition, by: str
) -> Recorded[IndicatorRecorded]:
    """Define indicator `code`, or change it (its next revision)."""
    current = await work.indicator(code, for_update=True)
    record = rules.indicator_revision(code, definition, current, by)
    if record is None:
        assert current is not None  # a first revision always changes something
        return Recorded("unchanged", current)
    await work.write_indicator(record)
    await _announce(work, record.code, record)
    return Recorded("created" if current is None else "revised", record)


async def record_target(
    work: ProgrammeWork, target_id: str, entry: TargetEntry, by: str
) -> Recorded[TargetRecorded]:
    """Set target `target_id`, or change it (its next revision); its indicator must be
    in the register (Invalid `unknown_indicator`)."""
    # A malformed target is refused for what it is, before its indicator is looked up.
    rules.check_target(entry)
    await _known_indicator(work, entry.indicator)
    current = await work.target(target_id, for_update=True)
    record = rules.target_revision(target_id, entry, current, by)
    if record is None:
        assert current is not None
        return Recorded("unchanged", current)
    await work.write_target(record)
    await _announce(work, record.target_id, record)
    return Recorded("created" if current is None else "revised", record)


async def record_observation(
    work: ProgrammeWork, report: ObservationReport, by: str, today: date
) -> Recorded[ObservationRecorded]:
    """Report a figure; a different figure for the same indicator, scope and day is a
    correction that supersedes it (the next revision, the earlier kept in history)."""
    proposed = rules.reported_figure(report, by, today)
    await _known_indicator(work, report.indicator)
    return await write_figure(work, proposed)


async def write_figure(
    work: ProgrammeWork, proposed: ObservationRecorded
) -> Recorded[ObservationRecorded]:
    """Write a judged figure as the next revision of its key (the current one if it says
    the same), with its event; also how a provincial weekly report records its figures."""
    key = proposed.record_key()
    current = await work.observation(key, for_update=True)
    record = rules.observation_revision(proposed, current)
    if record is None:
        assert current is not None
        return Recorded("unchanged", current)
    await work.write_observation(record)
    await _announce(work, key, record)
    return Recorded("created" if current is None else "revised", record)


async def _known_indicator(work: ProgrammeWork, code: str) -> IndicatorRecorded:
    indicator = await work.indicator(code)
    if indicator is None:
        raise Invalid("unknown_indicator", f"indicator {code!r} is not in the register")
    return indicator


async def _announce(
    work: ProgrammeWork,
    subject: str,
    record: IndicatorRecorded | TargetRecorded | ObservationRecorded,
) -> None:
    # The subject is the record key of the compacted topic: its latest record per key is
    # the entry's current revision.
    await work.publish([Envelope.wrap(record, source=SOURCE, subject=subject)])


# -- the worker's publications -----------------------------------------------------------


async def project_progress(
    work: ProgrammeWork, progress: TargetProgressUpdated, occurred_at: datetime
) -> None:
    """Keep a target's latest progress; an older publication never replaces a newer one."""
    await work.keep_progress(progress, occurred_at)


# -- readers -----------------------------------------------------------------------------


async def list_indicators(work: ProgrammeWork) -> list[IndicatorRecorded]:
    """Every indicator's current definition, by code."""
    return await work.indicators()


async def list_observations(
    work: ProgrammeWork, indicator: str | None, scope: Scope | None, scope_code: str | None
) -> list[CurrentFigure]:
    """The current figures matching the filters, each with its number of revisions."""
    return await work.observations(indicator, scope, scope_code)


async def target_standings(work: ProgrammeWork, today: date) -> list[Standing]:
    """Where every target stands, by target id: the worker's latest progress, or the
    target itself with status `no_data` until the worker has published one."""
    targets = {target.target_id: target for target in await work.targets()}
    published = {progress.target_id: (progress, at) for progress, at in await work.progress()}
    indicators = {indicator.code: indicator for indicator in await work.indicators()}
    return [
        _standing(targets.get(target_id), published.get(target_id), indicators, today)
        for target_id in sorted(targets.keys() | published.keys())
    ]


@dataclass(frozen=True)
class TargetPage:
    """One target: where it stands, and every revision of it the register keeps."""

    standing: Standing
    history: list[Kept[TargetRecorded]] = field(default_factory=list)


async def target_page(work: ProgrammeWork, target_id: str, today: date) -> TargetPage:
    """Where a target stands, with its history; NotFound if neither the register nor the
    worker knows it."""
    target = await work.target(target_id)
    published = await work.progress_of(target_id)
    if target is None and published is None:
        raise NotFound("not_found", f"target {target_id!r} is not in the register")
    indicators: dict[str, IndicatorRecorded] = {}
    if target is not None and (indicator := await work.indicator(target.indicator)) is not None:
        indicators[indicator.code] = indicator
    standing = _standing(target, published, indicators, today)
    return TargetPage(standing, await work.target_history(target_id))


def _standing(
    target: TargetRecorded | None,
    published: tuple[TargetProgressUpdated, datetime] | None,
    indicators: dict[str, IndicatorRecorded],
    today: date,
) -> Standing:
    active = target.active if target is not None else True
    if published is not None:
        progress, at = published
        return Standing(progress, active, at)
    assert target is not None  # listed for being in the register or having progress
    indicator = indicators.get(target.indicator)
    if indicator is None:
        # Targets are written only for indicators in the register, which never loses one.
        raise RuntimeError(f"target {target.target_id!r} names no indicator in the register")
    # No figure given: the progress rule answers `no_data`, with the target's own terms.
    return Standing(target_progress(target, indicator, [], today), active, None)


# -- the reference register --------------------------------------------------------------

Kind = Literal["indicators", "targets", "observations"]


@dataclass
class LoadReport:
    """What a load of the reference register did, per kind of entry."""

    created: dict[Kind, int] = field(default_factory=dict)
    kept: dict[Kind, int] = field(default_factory=dict)

    def count(self, kind: Kind, created: bool) -> None:
        tally = self.created if created else self.kept
        tally[kind] = tally.get(kind, 0) + 1

    def lines(self) -> list[str]:
        kinds: tuple[Kind, ...] = ("indicators", "targets", "observations")
        return [
            f"{kind}: {self.created.get(kind, 0)} created,"
            f" {self.kept.get(kind, 0)} already in the register"
            for kind in kinds
        ]


async def load_register(
    work: ProgrammeWork,
    indicators: Sequence[tuple[str, IndicatorDefinition]],
    targets: Sequence[tuple[str, TargetEntry]],
    observations: Sequence[ObservationReport],
    by: str,
    today: date,
) -> LoadReport:
    """Record every entry the register does not have yet; an entry it has (whatever its
    revision says now: the operator may have changed it) is left alone. Safe to repeat."""
    report = LoadReport()
    for code, definition in indicators:
        missing = await work.indicator(code, for_update=True) is None
        if missing:
            await record_indicator(work, code, definition, by)
        report.count("indicators", missing)
    for target_id, entry in targets:
        missing = await work.target(target_id, for_update=True) is None
        if missing:
            await record_target(work, target_id, entry, by)
        report.count("targets", missing)
    for observation in observations:
        key = rules.reported_figure(observation, by, today).record_key()
        missing = await work.observation(key, for_update=True) is None
        if missing:
            await record_observation(work, observation, by, today)
        report.count("observations", missing)
    return report
