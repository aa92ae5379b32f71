"""What a reader may ask of the figures: a granularity and a set of dimensions, checked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from shared.errors import Malformed
from shared.events.metrics import Granularity


def parse_granularity(value: str) -> Granularity:
    """A granularity named by a reader; `unknown_granularity` if there is no such one."""
    if value not in get_args(Granularity):
        raise Malformed("unknown_granularity", f"granularity {value!r}")
    return value  # type: ignore[return-value]


def parse_dimensions(text: str) -> dict[str, str]:
    """`province=IR-15,channel=online` → a dict; '' means no dimensions (totals)."""
    if text == "":
        return {}
    pairs = [part.split("=", 1) for part in text.split(",")]
    if any(len(pair) != 2 or not pair[0] for pair in pairs):
        raise Malformed("invalid_dimensions", f"dimensions {text!r}")
    return {name: value for name, value in pairs}


@dataclass(frozen=True)
class FigureQuery:
    """Filters on the current figures; None means any."""

    metric: str | None = None
    prefix: str | None = None
    granularity: Granularity | None = None
    window_label: str | None = None
    dimensions: dict[str, str] | None = None
    limit: int = 1000

    @classmethod
    def parse(
        cls,
        *,
        metric: str | None,
        prefix: str | None,
        granularity: str | None,
        window_label: str | None,
        dimensions: str | None,
        limit: int,
    ) -> FigureQuery:
        return cls(
            metric=metric,
            prefix=prefix,
            granularity=None if granularity is None else parse_granularity(granularity),
            window_label=window_label,
            dimensions=None if dimensions is None else parse_dimensions(dimensions),
            limit=limit,
        )
