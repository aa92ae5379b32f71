"""Counters in a Faust table that count every event exactly once, even across crashes.

A counter is kept per cell *and per source partition*, with the offset of the last
record that incremented it, in one table value `[count, offset]`. Both are written in
the same changelog record, so after a crash the restored table knows exactly which
records each counter has seen: a record redelivered from before the last commit finds
its offset already applied and changes nothing. Records of one partition arrive in
order, so `offset <= applied` means "already counted". A cell's value is the sum over
partitions: the worker holding the merged copy (`mirror.py`) adds them up, whichever
workers counted them.

Events whose contracts allow duplicates under new offsets (the same event id published
twice) go through `FirstSeen`, which remembers where an id was first seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from services.metrics.domain.figures import Cell
from services.metrics.worker import mirror
from services.metrics.worker.app import table
from services.metrics.worker.batches import processing


def counter_key(partition: int, encoded_cell: str) -> str:
    """A counter's table key: the cell's count from one source partition."""
    return f"{partition}|{encoded_cell}"


def cell_of(key: str) -> Cell:
    return Cell.decode(key.split("|", 1)[1])


class Counters:
    """Exactly-once counters of cells, on a table co-partitioned with its source topic.

    `stage` and `write_staged` must be called from an agent, before the events are
    acknowledged. What is written is forwarded to the merged copy, which is where the
    counts are read (`merged`).
    """

    def __init__(self, name: str, partitions: int) -> None:
        self.partitions = partitions
        self.table = table(name, default=None, partitions=partitions)
        self.merged = mirror.merged_counts(
            self.table,
            cell_of,
            lambda cell: [counter_key(p, cell.encode()) for p in range(partitions)],
        )
        # Counts of this batch not yet written: key -> [count, offset, last event].
        self._staged: dict[str, list[Any]] = {}

    def stage(self, cell: Cell, event: Any) -> None:
        """Count the event in the cell, unless it already was; written by `write_staged`."""
        partition, offset = event.message.partition, event.message.offset
        key = counter_key(partition, cell.encode())
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

    def write_staged(self) -> None:
        """Write every staged cell once (each to its source partition's changelog), and
        hand it to the forwarding.

        Must run before the staged events are acknowledged, i.e. inside the agent's batch.
        """
        for key, (count, offset, event) in self._staged.items():
            with processing(event):
                mirror.keep(self.table, key, [count, offset])
        self._staged.clear()


class FirstSeen:
    """Where each id (an event id, a citizen) was first seen: `[partition, offset]`.

    With `forget_after`, an id is remembered that long after it was first seen (the
    platform's dedup horizon), so the table does not grow for ever: the same id coming
    again later counts again. A replayed record whose id was forgotten still counts once,
    since the counters' offsets guard it.
    """

    def __init__(self, name: str, partitions: int, forget_after: timedelta | None = None) -> None:
        self.table = table(name, default=None, partitions=partitions, forget_after=forget_after)

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
