"""The programme's targets: where each stands, from the register and the live figures.

The worker follows the programme register the metrics service publishes (indicators,
targets, reported figures) and, for live indicators, the figures as the worker publishes
them (`publisher.on_published`: the worker holding the merged copy publishes every figure,
and holds these one-partition tables too; see `mirror.py`). All of it is state in tables,
so replays change nothing and a restarted worker recovers it. Every `PROGRESS_INTERVAL`
seconds, and as soon as an input changed, it computes each active target's progress
(`domain/programme.py`) and publishes the ones that changed on `metrics.programme`, keyed
by the target id.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import faust

from services.metrics.domain import programme
from services.metrics.worker import mirror
from services.metrics.worker.app import app, decoded, source_topic, table, tables_recovered
from services.metrics.worker.batches import processing, whole_batch_or_none
from services.metrics.worker.publisher import (
    Publication,
    mark_everything_changed,
    on_published,
)
from shared.events.metrics import TargetProgressUpdated, _MetricValue
from shared.events.programme import IndicatorRecorded, ObservationRecorded, TargetRecorded
from shared.logging import get_logger
from shared.topics import Topic

log = get_logger(__name__)

#: Seconds between recomputations when nothing changed (the day, and so the status, moves).
PROGRESS_INTERVAL = 60.0

indicators_topic = source_topic(Topic.PROGRAMME_INDICATORS)
targets_topic = source_topic(Topic.PROGRAMME_TARGETS)
observations_topic = source_topic(Topic.PROGRAMME_OBSERVATIONS)

# The register, as the latest revision of each record (JSON of the event).
indicators = table("programme-indicators", default=None, partitions=1)
targets = table("programme-targets", default=None, partitions=1)
observations = table("programme-observations", default=None, partitions=1)
# The figures the register's live indicators read, by record key, with their history. One
# partition, with the merged copy. (Named anew when the worker stopped reading its figures
# back from the metrics topics, whose three partitions the former table had.)
live = table("programme-live-figures", default=None, partitions=1)


class _State:
    changed = True
    # (metric, window) pairs some indicator reads; None: to be read from the table again.
    read_metrics: set[tuple[str, str]] | None = None


_state = _State()
# Live figures taken from a publication, written to `live` in the merge agent's batch
# (a table is written inside an agent): record key -> stored figure.
_pending_live: dict[str, dict[str, Any]] = {}


class _Decoded:
    """The four tables decoded, kept in step with every write the agents make.

    Progress is computed every second while figures move; decoding every observation and
    live figure from the store each time cost the worker more with every day of history
    (an eighth of its loop with 2,000 observations). Built from the tables once per
    consumer generation: the tables hold what a (re)assignment restored, which no agent
    wrote.
    """

    def __init__(self) -> None:
        self.generation: int | None = None
        self.indicators: dict[str, IndicatorRecorded] = {}
        self.targets: dict[str, TargetRecorded] = {}
        self.observations: dict[str, ObservationRecorded] = {}
        self.live: dict[str, programme.LiveFigure] = {}

    def current(self) -> _Decoded:
        generation = app.consumer_generation_id
        if self.generation != generation:
            self.indicators = {
                str(k): IndicatorRecorded.model_validate(v) for k, v in indicators.items()
            }
            self.targets = {str(k): TargetRecorded.model_validate(v) for k, v in targets.items()}
            self.observations = {
                str(k): ObservationRecorded.model_validate(v) for k, v in observations.items()
            }
            self.live = {str(k): _live_figure(v) for k, v in live.items()}
            # Tables still being restored are read afresh at every look until they are not.
            self.generation = generation if tables_recovered() else None
        return self

    def kept(
        self, key: str, record: IndicatorRecorded | TargetRecorded | ObservationRecorded
    ) -> None:
        """A record an agent has just written to its table."""
        if self.generation != app.consumer_generation_id:
            return  # rebuilt from the tables at the next look
        if isinstance(record, IndicatorRecorded):
            self.indicators[key] = record
        elif isinstance(record, TargetRecorded):
            self.targets[key] = record
        else:
            self.observations[key] = record

    def live_kept(self, key: str, stored: dict[str, Any]) -> None:
        if self.generation == app.consumer_generation_id:
            self.live[key] = _live_figure(stored)


_decoded = _Decoded()
_publication = Publication(Topic.METRICS_PROGRAMME, "programme progress")


def _keep_latest(
    table: Any, key: str, record: IndicatorRecorded | TargetRecorded | ObservationRecorded
) -> bool:
    """Keep `record` unless the table holds its revision or a later one (a replay changes
    nothing); whether it was kept."""
    current = table.get(key)
    if current is not None and int(current["revision"]) >= record.revision:
        return False
    table[key] = record.model_dump(mode="json")
    _decoded.kept(key, record)
    _state.changed = True
    return True


@app.agent(indicators_topic)
async def follow_indicators(stream: faust.StreamT[bytes]) -> None:
    async for event in stream.events():
        with whole_batch_or_none():
            envelope = await decoded(event)
            if envelope is None or not isinstance(envelope.payload, IndicatorRecorded):
                continue
            indicator = envelope.payload
            was_read = (indicator.live_metric, indicator.live_window) in _read_metrics()
            if _keep_latest(indicators, indicator.code, indicator):
                _state.read_metrics = None
                if indicator.live_metric is not None and not was_read:
                    # Figures of a metric nobody read were not kept: have them published again.
                    mark_everything_changed()


@app.agent(targets_topic)
async def follow_targets(stream: faust.StreamT[bytes]) -> None:
    async for event in stream.events():
        with whole_batch_or_none():
            envelope = await decoded(event)
            if envelope is not None and isinstance(envelope.payload, TargetRecorded):
                _keep_latest(targets, envelope.payload.target_id, envelope.payload)


@app.agent(observations_topic)
async def follow_observations(stream: faust.StreamT[bytes]) -> None:
    async for event in stream.events():
        with whole_batch_or_none():
            envelope = await decoded(event)
            if envelope is not None and isinstance(envelope.payload, ObservationRecorded):
                _keep_latest(observations, envelope.payload.record_key(), envelope.payload)


def _read_metrics() -> set[tuple[str, str]]:
    if _state.read_metrics is None:
        _state.read_metrics = {
            (i.live_metric, i.live_window)
            for i in _decoded.current().indicators.values()
            if i.live_metric is not None and i.live_window is not None
        }
    return _state.read_metrics


def _figure_published(figure: _MetricValue) -> None:
    """Keep a published figure that a live indicator reads, with its history by day."""
    if (figure.metric, figure.granularity) not in _read_metrics():
        return
    key = figure.record_key()
    history = _history(_pending_live.get(key) or live.get(key))
    if figure.granularity == "all_time":
        history = programme.remember(history, programme.local_day(datetime.now(UTC)), figure.value)
    stored = _pending_live[key] = {
        "metric": figure.metric,
        "dimensions": figure.dimensions,
        "granularity": figure.granularity,
        "start": figure.window_start.isoformat() if figure.window_start else None,
        "end": figure.window_end.isoformat() if figure.window_end else None,
        "value": figure.value,
        "history": {day.isoformat(): value for day, value in history.items()},
    }
    _decoded.live_kept(key, stored)
    _state.changed = True


async def _write_live_figures(last: Any) -> None:
    """Write the live figures taken since the last merged batch, on its partition."""
    with processing(last):
        for key, stored in _pending_live.items():
            live[key] = stored
    _pending_live.clear()


on_published.append(_figure_published)
mirror.after_merge.append(_write_live_figures)


def _history(stored: dict[str, Any] | None) -> dict[date, float]:
    if stored is None:
        return {}
    return {date.fromisoformat(day): float(v) for day, v in stored["history"].items()}


def _live_figure(stored: dict[str, Any]) -> programme.LiveFigure:
    return programme.LiveFigure(
        metric=stored["metric"],
        dimensions=dict(stored["dimensions"]),
        granularity=stored["granularity"],
        start=datetime.fromisoformat(stored["start"]) if stored["start"] else None,
        end=datetime.fromisoformat(stored["end"]) if stored["end"] else None,
        value=float(stored["value"]),
        history=_history(stored),
    )


def progress(now: datetime) -> list[TargetProgressUpdated]:
    """Every active target's progress, as the tables stand."""
    decoded = _decoded.current()
    known = decoded.indicators
    figures = list(decoded.live.values())
    reported: dict[tuple[str, str, str | None], list[ObservationRecorded]] = {}
    for observation in decoded.observations.values():
        scope = (observation.indicator, observation.scope, observation.scope_code)
        reported.setdefault(scope, []).append(observation)
    today = programme.local_day(now)
    out = []
    for target in decoded.targets.values():
        indicator = known.get(target.indicator)
        if not target.active or indicator is None:
            continue
        points = [
            *programme.observed_points(
                reported.get((target.indicator, target.scope, target.scope_code), [])
            ),
            *programme.live_points(target, indicator, figures, now),
        ]
        out.append(programme.target_progress(target, indicator, points, today))
    return out


async def publish_progress(now: datetime | None = None) -> int:
    """Publish each target whose progress changed since it was last published."""
    if not tables_recovered():
        return 0
    _state.changed = False
    return await _publication.publish_computed(
        lambda: ((payload.target_id, payload) for payload in progress(now or datetime.now(UTC)))
    )


@app.timer(1.0)  # type: ignore[untyped-decorator]
async def _publish_when_changed() -> None:
    if _state.changed:
        await publish_progress()


@app.timer(PROGRESS_INTERVAL)  # type: ignore[untyped-decorator]
async def _publish_on_interval() -> None:
    await publish_progress()
