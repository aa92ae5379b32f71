"""Reference figures: adult population by province and the programme's baselines."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import yaml

from shared.reference.provinces import BY_CODE


@dataclass(frozen=True)
class Reference:
    """Figures no event carries, with the version of the file they came from."""

    version: int
    source: str
    adults_by_province: dict[str, int]
    in_person_visits_per_day: float

    @property
    def adults(self) -> int:
        return sum(self.adults_by_province.values())


def parse_reference(text: str) -> Reference:
    """Read the reference file; ValueError if a province is missing or unknown."""
    document = yaml.safe_load(text)
    share = float(document["adult_share_estimate"])
    provinces: dict[str, dict[str, int]] = document["provinces"]
    unknown = set(provinces) - set(BY_CODE)
    missing = set(BY_CODE) - set(provinces)
    if unknown or missing:
        raise ValueError(
            f"reference provinces: unknown {sorted(unknown)}, missing {sorted(missing)}"
        )
    return Reference(
        version=int(document["version"]),
        source=str(document["source"]["name_en"]),
        adults_by_province={
            code: round(int(entry["total_2016"]) * share) for code, entry in provinces.items()
        },
        in_person_visits_per_day=float(document["baselines"]["in_person_visits_per_day"]),
    )


def load_reference() -> Reference:
    """The reference file shipped with the service."""
    text = (resources.files("services.metrics.reference") / "population.yaml").read_text("utf-8")
    return parse_reference(text)
