"""An in-memory stand-in for the worker's counters."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from services.metrics.domain.figures import Cell


class FakeCounts:
    def __init__(self) -> None:
        self.counts: Counter[Cell] = Counter()

    def add_all(self, cells: Iterable[Cell]) -> set[Cell]:
        changed = set()
        for cell in cells:
            self.counts[cell] += 1
            changed.add(cell)
        return changed

    def value(self, cell: Cell) -> float:
        return float(self.counts[cell])

    def cells(self, metric: str) -> Iterable[Cell]:
        return [cell for cell in self.counts if cell.metric == metric]
