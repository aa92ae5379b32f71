"""Counters in a Faust table that count every event exactly once, even across crashes.

A counter is kept per cell *and per source partition*, with the offset of the last
record that incremented it, in one table value `[count, offset]`. Both are written in
the same changelog record, so after a crash the restored table knows exactly which
records each counter has seen: a record redelivered from before the last commit finds
its offset already applied and changes nothing. Records of one partition arrive in
order, so `offset <= applied` means "already counted". A cell's value is the sum over
partitions.

Events whose contracts allow duplicates under new offsets (the same event id published
twice) go through `FirstSeen`, which remembers where an id was first seen.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from faust.streams import _current_event

from services.metrics.domain.figures import Cell, CountsSnapshot
from services.metrics.worker import EXIT_BATCH_FAILED
from services.metrics.worker.app import table
from shared.failpoints import failpoint
from shared.logging import get_logger

log = get_logger(__name__)

BATCH_SIZE = 1000
BATCH_WITHIN_SECONDS = 0.1


@contextmanager
def whole_batch_or_none() -> Iterator[None]:
    """Count a batch (or one event) whole, or end the worker before anything of it is
    acknowledged.

    Faust acknowledges the events it handed an agent whatever the agent did with them:
    `take_events` acks its batch on the way out, an exception too. A batch that failed
    halfway would then be lost (its staged counts never written) or, written in part,
    counted in part. So a failure ends the process on the spot, as SIGKILL would, whose
    exactness the counters are built for (see the module's docstring): nothing after the
    last commit was acknowledged, and the worker started again counts it all, once.
    """
    try:
        failpoint("metrics.batch_begun")
        yield
    except Exception as error:
        log.critical("a batch failed; the worker stops before acknowledging it", error=repr(error))
        logging.shutdown()
        os._exit(EXIT_BATCH_FAILED)


@contextmanager
def processing(event: Any) -> Iterator[None]:
    """Make `event` Faust's current event, so a table write goes to its partition's changelog.

    Agents take events in batches and write each counter once per batch; Faust picks the
    changelog partition of a write from the current event, which must be the event (of the
    right partition) that the write accounts for.
    """
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def _key(partition: int, encoded_cell: str) -> str:
    """A counter's table key: the cell's count from one source partition."""
    return f"{partition}|{encoded_cell}"


def _cell_of(key: str) -> Cell:
    return Cell.decode(key.split("|", 1)[1])


class Counters:
    """Exactly-once counters of cells, on a table co-partitioned with its source topic.

    `stage` and `write_staged` must be called from an agent, before the events are
    acknowledged; reads may happen anywhere. `take_changed()` hands out the cells changed
    since the last call.
    """

    def __init__(self, name: str, partitions: int) -> None:
        self.partitions = partitions
        self.table = table(name, default=None, partitions=partitions)
        self._changed: set[Cell] = set()
        # Counts of this batch not yet written: key -> [count, offset, last event].
        self._staged: dict[str, list[Any]] = {}

    def stage(self, cell: Cell, event: Any) -> None:
        """Count the event in the cell, unless it already was; written by `write_staged`."""
        partition, offset = event.message.partition, event.message.offset
        key = _key(partition, cell.encode())
        staged = self._staged.get(key)
        if staged is None:
            current = self.table.get(key)
            if current is not None and current[1] >= offset:
                return
            staged = self._staged[key] = [current[0] if current else 0, -1, None]
        elif staged[1] >= offset:
            return
        staged[0] += 1
        staged[1] = offset
        staged[2] = event
        self._changed.add(cell)

    def write_staged(self) -> None:
        """Write every staged cell once (each to its source partition's changelog).

        Must run before the staged events are acknowledged, i.e. inside the agent's batch.
        """
        for key, (count, offset, event) in self._staged.items():
            with processing(event):
                self.table[key] = [count, offset]
        self._staged.clear()

    def value(self, cell: Cell) -> float:
        encoded = cell.encode()
        total = 0.0
        for partition in range(self.partitions):
            current = self.table.get(_key(partition, encoded))
            if current is not None:
                total += current[0]
        return total

    def cells(self, metric: str) -> Iterable[Cell]:
        return [cell for cell in self._all() if cell.metric == metric]

    def _all(self) -> set[Cell]:
        return {_cell_of(key) for key in list(self.table.keys())}

    def snapshot(self) -> CountsSnapshot:
        """Every cell's value as the table stands, read in one pass over it."""
        values: dict[Cell, float] = {}
        for key, current in list(self.table.items()):
            if current is not None:
                cell = _cell_of(key)
                values[cell] = values.get(cell, 0.0) + current[0]
        return CountsSnapshot(values)

    def mark_all_changed(self) -> None:
        """After recovery: every cell's figure is re-published (a crash may have cut the
        last publication short)."""
        self._changed |= self._all()

    def take_changed(self) -> set[Cell]:
        changed, self._changed = self._changed, set()
        return changed


class FirstSeen:
    """Where each id (an event id, a citizen) was first seen: `[partition, offset]`."""

    def __init__(self, name: str, partitions: int) -> None:
        self.table = table(name, default=None, partitions=partitions)

    def is_first(self, identity: str, event: Any) -> bool:
        """True for the record where `identity` was first seen (also when it is replayed).

        The first time an id is seen, this record is remembered as its first; a replay of
        that same record is still its first, so counting it again is left to `Counters`'
        offset guard; any other record with the id is a repeat.
        """
        here = [event.message.partition, event.message.offset]
        first = self.table.get(identity)
        if first is None:
            with processing(event):
                self.table[identity] = here
            return True
        return list(first) == here

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.table.keys()))
