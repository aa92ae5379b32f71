"""Figures of the window's adoption: services by maturity, agencies connected.

These come from the catalog's compacted state topics, so they are recomputed from the
current state of every service and agency, never counted from events: replaying a state
record changes nothing.

Which agencies count: the programme's agencies are the national executive agencies that
offer services, so an agency counts while it is active and national. The 31 provincial
ICT directorates general are in the register (they report for their provinces) but are
the programme's own field offices, not agencies to be connected: counting them made the
window's share 22% where the programme reports 99%. An agency is connected to the window
from the date the register gives; it is connected to the exchange when it *used* the
exchange (as consumer or provider) in the current Jalali quarter, as the exchange's own
transactions show, not by a date typed into the register.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from services.metrics.domain.figures import Cell, Dimensions, Figure, dims, ratio
from services.metrics.domain.windows import ALL_TIME, window_of
from shared.events.catalog import AgencyRecorded, ServiceRecorded

SERVICES = "adoption.services"
ELECTRONIC_SHARE = "adoption.electronic_share"
SMART_SHARE = "adoption.smart_share"
AGENCIES = "adoption.agencies"
WINDOW_CONNECTED = "adoption.agencies_window_connected"
WINDOW_SHARE = "adoption.agencies_window_share"
EXCHANGE_CONNECTED = "adoption.agencies_exchange_connected"
EXCHANGE_SHARE = "adoption.agencies_exchange_share"
ELECTRONIC_FROM = 3
SMART = 5


@dataclass(frozen=True)
class ServiceState:
    agency: str
    maturity: int
    published: bool
    revision: int

    @classmethod
    def of(cls, service: ServiceRecorded) -> ServiceState:
        return cls(
            service.agency, service.maturity, service.status == "published", service.revision
        )


@dataclass(frozen=True)
class AgencyState:
    code: str
    active: bool
    national: bool
    window_connected: bool
    revision: int

    @classmethod
    def of(cls, agency: AgencyRecorded) -> AgencyState:
        return cls(
            agency.code,
            agency.active,
            agency.province is None,
            agency.window_connected_since is not None,
            agency.revision,
        )

    @property
    def counted(self) -> bool:
        """Whether the programme's agency figures count it (the module's rule)."""
        return self.active and self.national


def _maturity_figures(
    services: list[ServiceState], scope: Dimensions, windows: list[Cell]
) -> list[Figure]:
    out: list[Figure] = []
    total = len(services)
    electronic = sum(1 for s in services if s.maturity >= ELECTRONIC_FROM)
    smart = sum(1 for s in services if s.maturity == SMART)
    for base in windows:
        window = base.window
        out.append(Figure(Cell(SERVICES, scope, window), total, "count"))
        out.append(Figure(Cell(ELECTRONIC_SHARE, scope, window), ratio(electronic, total), "ratio"))
        out.append(Figure(Cell(SMART_SHARE, scope, window), ratio(smart, total), "ratio"))
        if not scope:
            for level in range(6):
                count = sum(1 for s in services if s.maturity == level)
                out.append(
                    Figure(Cell(SERVICES, dims(maturity=str(level)), window), count, "count")
                )
    return out


def figures(
    services: Iterable[ServiceState],
    agencies: Iterable[AgencyState],
    exchange_users: set[str],
    now: datetime,
) -> list[Figure]:
    """The adoption figures as the register stands, all time and for today and the quarter.

    Only published services count; agencies count by the module's rule, and
    `exchange_users` are the agencies that used the exchange this quarter. The day and
    quarter windows hold the latest state seen in them, so their series shows the trend.
    """
    windows = [
        Cell("", (), ALL_TIME),
        *(Cell("", (), window_of(g, now)) for g in ("day", "quarter")),
    ]
    published = [s for s in services if s.published]
    out = _maturity_figures(published, (), windows)
    by_agency: dict[str, list[ServiceState]] = {}
    for service in published:
        by_agency.setdefault(service.agency, []).append(service)
    for agency, owned in sorted(by_agency.items()):
        out.extend(_maturity_figures(owned, dims(agency=agency), windows[:1]))
    active = [a for a in agencies if a.counted]
    window_connected = sum(1 for a in active if a.window_connected)
    exchange_connected = sum(1 for a in active if a.code in exchange_users)
    for base in windows:
        window = base.window
        out.append(Figure(Cell(AGENCIES, (), window), len(active), "count"))
        out.append(Figure(Cell(WINDOW_CONNECTED, (), window), window_connected, "count"))
        out.append(
            Figure(Cell(WINDOW_SHARE, (), window), ratio(window_connected, len(active)), "ratio")
        )
        out.append(Figure(Cell(EXCHANGE_CONNECTED, (), window), exchange_connected, "count"))
        out.append(
            Figure(
                Cell(EXCHANGE_SHARE, (), window), ratio(exchange_connected, len(active)), "ratio"
            )
        )
    return out
