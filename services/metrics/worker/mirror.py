"""One worker publishes every figure, however many workers count.

Workers share the source topics' partitions, so each counts its share of every figure and
keeps its share of the catalog's registers; a figure is a sum, or a ratio of sums, over
all partitions. A worker publishing what it holds would publish part of a figure, and two
workers would overwrite each other's parts on the compacted metrics topics. So:

1. Every worker forwards what its agents write to the tables the figures are read from
   (`keep`) at every flush interval, in records of at most 256 KB (`rows.py`), on
   the worker's own topic `<app id>-rows`, which has one partition.
2. The worker holding that partition keeps every worker's rows in a table of its own per
   source table, `merged-<table>` (RocksDB and a changelog, like every table: a restart
   replays only its tail), read as that table was (`MergedRows`, `MergedCounts`: a
   cell's count summed over its source partitions). It alone has anything to publish.
   The programme's and the evaluations' tables have one partition too, and Faust gives
   the same worker partition 0 of every one-partition topic, so the targets' progress
   and the evaluations are computed there, and the live indicators take the figures as
   they are published instead of reading them back from the metrics topics.

A row is absolute (a counter's count up to an offset of its source partition; a
register's latest state), so a row forwarded twice changes nothing, and a counter's row
older than the copy's (a former owner's, arriving late) is ignored. After every
(re)assignment each worker forwards every row it holds again, since a crash may have cut
the last forwarding short; and the holder of the copy rebuilds its views from the table,
which then hold what the assignment restored.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import faust

from services.metrics.domain.figures import Cell, CountsSnapshot
from services.metrics.worker.app import app, settings, table, tables_recovered
from services.metrics.worker.batches import (
    BATCH_SIZE,
    processing,
    whole_batch_or_none,
)
from services.metrics.worker.rows import records, rows_of
from shared.logging import get_logger

log = get_logger(__name__)

#: The worker's topic of forwarded rows (within its own prefix, so its principal owns it).
ROWS_TOPIC = f"{settings.app_id}-rows"
#: The copy keeps the state; a holder away for longer than this gets every row again,
#: forwarded anew after the rebalance its return causes.
ROWS_RETENTION_MS = 7 * 24 * 3600 * 1000
#: Made before Faust starts, with the tables' changelogs (`changelogs.ensure_own_topics`).
OWN_TOPICS = {ROWS_TOPIC: (1, {"cleanup.policy": "delete", "retention.ms": str(ROWS_RETENTION_MS)})}

#: The copy's wait for more forwarded records before merging: shorter than the agents'
#: (they come a few a second at most, each with many rows), for the figures' freshness.
#: Shorter still (20 ms) measured slower catching up, for reasons not found yet.
MERGE_WITHIN_SECONDS = 0.05

rows_topic = app.topic(ROWS_TOPIC, key_serializer="raw", value_serializer="raw", partitions=1)


class MergedRows:
    """One forwarded table as every worker's rows make it, in a table of the copy's own
    (`merged-<table>`), and in memory: a register's rows, few, read whole at every look."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.table = table(f"merged-{name}", default=None, partitions=1)
        self.rows: dict[str, Any] = {}
        self._touched = True

    def accepts(self, current: Any, value: Any) -> bool:
        """Whether `value` may replace `current` (a register's latest state always may)."""
        return True

    def merge(self, key: str, value: Any, event: Any) -> None:
        """Keep a forwarded row, unless it is the copy's already or older (inside the
        merge agent: `event`, the record that carried it, says the changelog partition)."""
        current = self.table.get(key)
        if value == current or not self.accepts(current, value):
            return
        with processing(event):
            self.table[key] = value
        self.kept(key, value)

    def kept(self, key: str, value: Any) -> None:
        self.rows[key] = value
        self._touched = True

    def rebuild(self) -> None:
        """Read the copy's table again (it holds what a (re)assignment restored)."""
        self.rows.clear()
        for key, value in list(self.table.items()):
            if value is not None:
                self.kept(str(key), value)
        self._touched = True

    def items(self) -> list[tuple[str, Any]]:
        return list(self.rows.items())

    def values(self) -> list[Any]:
        return list(self.rows.values())

    def take_touched(self) -> bool:
        """Whether a row changed since the last call."""
        touched, self._touched = self._touched, False
        return touched


class MergedCounts(MergedRows):
    """A `Counters` table merged: each cell's count summed over its source partitions
    (`domain.figures.Counts`), and the cells changed since the last `take_changed`.

    The counts are read from the copy's table, not kept in memory: with a cell per window
    (every hour among them) they grow with every day of history."""

    def __init__(
        self, name: str, cell_of: Callable[[str], Cell], keys_of: Callable[[Cell], list[str]]
    ) -> None:
        super().__init__(name)
        self._cell_of = cell_of
        self._keys_of = keys_of
        self._changed: set[Cell] = set()

    def accepts(self, current: Any, value: Any) -> bool:
        # [count, offset]: a count up to an earlier offset is an older one.
        return current is None or int(value[1]) >= int(current[1])

    def kept(self, key: str, value: Any) -> None:
        self._changed.add(self._cell_of(key))
        self._touched = True

    def rebuild(self) -> None:
        self._changed.clear()
        self.mark_all_changed()
        self._touched = True

    def value(self, cell: Cell) -> float:
        total = 0
        for key in self._keys_of(cell):
            current = self.table.get(key)
            if current is not None:
                total += int(current[0])
        return float(total)

    def cells(self, metric: str) -> Iterable[Cell]:
        return [cell for cell in self._all() if cell.metric == metric]

    def _all(self) -> set[Cell]:
        return {self._cell_of(str(key)) for key in list(self.table.keys())}

    def snapshot(self) -> CountsSnapshot:
        """Every cell's count as the copy stands, read in one pass over its table."""
        values: dict[Cell, float] = {}
        for key, current in list(self.table.items()):
            if current is not None:
                cell = self._cell_of(str(key))
                values[cell] = values.get(cell, 0.0) + current[0]
        return CountsSnapshot(values)

    def mark_all_changed(self) -> None:
        """Have every cell's figure published again (after a recovery)."""
        self._changed |= self._all()

    def take_changed(self) -> set[Cell]:
        changed, self._changed = self._changed, set()
        return changed


class _Forwarding:
    """Stage one: the rows written since the last forwarding, by table name; set
    `written` when there are some, and one forwarding at a time (`lock`): two in flight
    could deliver a register's older row after its newer one."""

    def __init__(self) -> None:
        self.tables: dict[str, Any] = {}
        self.pending: dict[str, dict[str, Any]] = {}
        self.generation: object | None = None
        self.written = asyncio.Event()
        self.lock = asyncio.Lock()
        self.last_started = 0.0


class _Merging:
    """Stage two: the views, and the consumer generation they were built for."""

    def __init__(self) -> None:
        self.views: dict[str, MergedRows] = {}
        self.generation: object | None = None


_forwarding = _Forwarding()
_merging = _Merging()
#: Called at the end of each merged batch with its last record, inside the agent (so a
#: table write can go to the rows topic's partition): the publisher publishes what
#: changed, then the programme keeps the live figures it took from that publication.
after_merge: list[Callable[[Any], Awaitable[None]]] = []


def _register(faust_table: Any, view: MergedRows) -> None:
    _forwarding.tables[faust_table.name] = faust_table
    _merging.views[faust_table.name] = view


def merged_rows(faust_table: Any) -> MergedRows:
    """Forward `faust_table`'s writes; the merged view its readers read."""
    view = MergedRows(faust_table.name)
    _register(faust_table, view)
    return view


def merged_counts(
    faust_table: Any, cell_of: Callable[[str], Cell], keys_of: Callable[[Cell], list[str]]
) -> MergedCounts:
    """Forward a counters table's writes; the merged counts its figures read (`keys_of`: a
    cell's keys in the table, one per source partition)."""
    view = MergedCounts(faust_table.name, cell_of, keys_of)
    _register(faust_table, view)
    return view


def keep(faust_table: Any, key: str, value: Any) -> None:
    """Write a row to a forwarded table (from an agent) and forward it at the next
    forwarding."""
    faust_table[key] = value
    _forwarding.pending.setdefault(faust_table.name, {})[key] = value
    _forwarding.written.set()


async def forward_pending() -> int:
    """Send the rows written since the last call (every row held, after a (re)assignment);
    returns how many. One call at a time."""
    async with _forwarding.lock:
        _forwarding.last_started = time.monotonic()
        return await _forward_pending()


async def _forward_pending() -> int:
    if not tables_recovered():
        return 0
    generation = app.consumer_generation_id
    if _forwarding.generation != generation:
        _forwarding.generation = generation
        for name, faust_table in _forwarding.tables.items():
            pending = _forwarding.pending.setdefault(name, {})
            pending.update((k, v) for k, v in list(faust_table.items()) if v is not None)
    pending, _forwarding.pending = _forwarding.pending, {}
    sent = 0
    for name, rows in pending.items():
        for body in records(name, rows.items()):
            await app.producer.send(
                ROWS_TOPIC,
                name.encode(),
                body,
                partition=None,
                timestamp=None,
                headers=None,
            )
        sent += len(rows)
    if sent:
        await app.producer.flush()
    return sent


#: Least time between two forwardings started by writes. While rows keep coming (a worker
#: catching up), the gap doubles up to the flush interval, so that the copy merges and
#: publishes a few times a second, not after every batch; it is short again once the
#: forwarder finds nothing written.
FORWARDING_GAP_SECONDS = 0.05


@app.task  # type: ignore[untyped-decorator]
async def _forward_when_written() -> None:
    """Forward rows as soon as an agent has written them: a figure's freshness is then the
    two hops and the two batches' waits, not a flush interval."""
    gap = FORWARDING_GAP_SECONDS
    while not app.should_stop:
        idle = not _forwarding.written.is_set()
        await _forwarding.written.wait()
        _forwarding.written.clear()
        try:
            await forward_pending()
        except Exception as error:  # the timer forwards what this could not
            log.warning("forwarding rows failed", error=repr(error))
        gap = next_forwarding_gap(gap, idle=idle, most=settings.flush_interval)
        await asyncio.sleep(gap)


def next_forwarding_gap(gap: float, *, idle: bool, most: float) -> float:
    """The wait after a forwarding: the shortest when the forwarder had waited for rows,
    else twice the last, up to `most`."""
    if idle:
        return FORWARDING_GAP_SECONDS
    return min(gap * 2, max(most, FORWARDING_GAP_SECONDS))


@app.timer(settings.flush_interval)  # type: ignore[untyped-decorator]
async def _forward_on_timer() -> None:
    """Whatever was not forwarded when written: every row again after a (re)assignment,
    and rows kept while the tables were still recovering. Not when the forwarder has just
    forwarded: a worker catching up would merge and publish twice as often."""
    if time.monotonic() - _forwarding.last_started >= settings.flush_interval:
        await forward_pending()


def views_current() -> bool:
    """Whether the merged views hold the copy as this worker has it: read again from their
    tables after each (re)assignment, once the tables are recovered."""
    generation = app.consumer_generation_id
    if _merging.generation == generation:
        return True
    if not tables_recovered():
        return False
    for view in _merging.views.values():
        view.rebuild()
    _merging.generation = generation
    return True


def _rows_of(event: Any) -> tuple[MergedRows, list[tuple[str, Any]]] | None:
    """The view and rows a forwarded record carries; None (logged) for one that is not
    such a record: only the worker's own principal writes this topic, so that is a bug."""
    try:
        name, rows = rows_of(event.value)
        return _merging.views[name], rows
    except (ValueError, KeyError, TypeError) as error:
        log.error(
            "a forwarded record was not understood",
            error=repr(error),
            offset=event.message.offset,
        )
        return None


@app.agent(rows_topic)
async def merge_rows(stream: faust.StreamT[bytes]) -> None:
    async for batch in stream.take_events(BATCH_SIZE, MERGE_WITHIN_SECONDS):  # type: ignore[attr-defined]
        with whole_batch_or_none():
            views_current()
            for event in batch:
                found = _rows_of(event)
                if found is None:
                    continue
                view, rows = found
                for key, value in rows:
                    view.merge(key, value, event)
            for hook in after_merge:
                await hook(batch[-1])
