"""Counters and figures: what the worker counts, and what it publishes.

A `Cell` is one counter: a metric, its dimensions and its window. Events increment
cells; a `Figure` is a value to publish, either a cell's count as it stands or a value
derived from several cells (a ratio, a percentile). Domain modules say which cells an
event increments and which figures follow from changed cells; they never do I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, Protocol

from services.metrics.domain.windows import Window, window_from_label
from shared.events.metrics import Granularity

Unit = Literal["count", "ratio", "milliseconds", "people"]
Dimensions = tuple[tuple[str, str], ...]


def dims(**values: str) -> Dimensions:
    """Dimensions in their canonical (sorted) order."""
    return tuple(sorted(values.items()))


@dataclass(frozen=True, order=True)
class Cell:
    """One counter: a metric, its dimensions and its window."""

    metric: str
    dimensions: Dimensions
    window: Window

    def encode(self) -> str:
        """A stable text form, for table keys (dimension values may hold any character)."""
        return _encode(self)

    @classmethod
    def decode(cls, text: str) -> Cell:
        """The cell `encode` wrote as `text`."""
        return _decode(text)

    def with_metric(self, metric: str, dimensions: Dimensions | None = None) -> Cell:
        return Cell(metric, self.dimensions if dimensions is None else dimensions, self.window)

    def record_key(self) -> str:
        """The key its figure carries on a metrics topic (as `_MetricValue.record_key`)."""
        text = ",".join(f"{k}={v}" for k, v in self.dimensions)
        return f"{self.metric}|{text}|{self.window.granularity}:{self.window.label}"


@lru_cache(maxsize=262_144)
def _encode(cell: Cell) -> str:
    return json.dumps(
        [
            cell.metric,
            [list(d) for d in cell.dimensions],
            cell.window.granularity,
            cell.window.label,
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )


@lru_cache(maxsize=262_144)
def _decode(text: str) -> Cell:
    # Cached: the worker decodes every table key when it re-publishes after a recovery.
    metric, dimensions, granularity, label = json.loads(text)
    return Cell(
        metric,
        tuple((str(k), str(v)) for k, v in dimensions),
        window_from_label(granularity, label),
    )


@dataclass(frozen=True)
class Figure:
    """A value to publish for a cell."""

    cell: Cell
    value: float
    unit: Unit


class Counts(Protocol):
    """Read access to the counters, as the worker holds them."""

    def value(self, cell: Cell) -> float:
        """The cell's count; 0 for a cell never incremented."""

    def cells(self, metric: str) -> Iterable[Cell]:
        """Every cell of a metric that has a count."""


class CountsSnapshot:
    """Counters read once, for a computation that asks for thousands of values: each
    question a dictionary look-up, not a read of every partition's row in the store."""

    def __init__(self, values: dict[Cell, float]) -> None:
        self._values = values

    def __add__(self, other: CountsSnapshot) -> CountsSnapshot:
        merged = dict(self._values)
        for cell, value in other._values.items():
            merged[cell] = merged.get(cell, 0.0) + value
        return CountsSnapshot(merged)

    def value(self, cell: Cell) -> float:
        return self._values.get(cell, 0.0)

    def cells(self, metric: str) -> Iterable[Cell]:
        return [cell for cell in self._values if cell.metric == metric]


def cells_in(
    metric: str,
    windows: Iterable[Window],
    *dimension_sets: Dimensions,
) -> Iterator[Cell]:
    """A cell for each window and each dimension set."""
    for window in windows:
        for dimensions in dimension_sets:
            yield Cell(metric, dimensions, window)


def ratio(numerator: float, denominator: float) -> float:
    """A share; 0 when nothing was counted (never a division by zero)."""
    return numerator / denominator if denominator else 0.0


def by_granularity(cells: Iterable[Cell], granularity: Granularity) -> list[Cell]:
    return [cell for cell in cells if cell.window.granularity == granularity]
