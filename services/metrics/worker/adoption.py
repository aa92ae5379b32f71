"""Adoption figures, from the catalog's compacted registers of services and agencies."""

from __future__ import annotations

from datetime import datetime

import faust

from services.metrics.domain import adoption
from services.metrics.domain.figures import Figure
from services.metrics.worker import exchange, mirror
from services.metrics.worker.app import Follower, app, decoded, partitions_of, source_topic, table
from services.metrics.worker.batches import whole_batch_or_none
from services.metrics.worker.publisher import Source, register
from shared.events.catalog import AgencyRecorded, ServiceRecorded
from shared.events.metrics import AdoptionMetricUpdated
from shared.topics import Topic

services_topic = source_topic(Topic.CATALOG_SERVICES)
agencies_topic = source_topic(Topic.CATALOG_AGENCIES)
# The latest state of each service and agency, as [agency, maturity, published, revision]
# and [active, window, national, "national", revision]: state, not counters, so replays
# change nothing. (Agencies were once [active, window, exchange, revision], without
# whether they are national; such a record counts as national until its agency changes.)
services = table(
    "adoption-services", default=None, partitions=partitions_of(Topic.CATALOG_SERVICES)
)
agencies = table(
    "adoption-agencies", default=None, partitions=partitions_of(Topic.CATALOG_AGENCIES)
)
# Both registers whole, from every worker's share: what the figures are computed from.
merged_services = mirror.merged_rows(services)
merged_agencies = mirror.merged_rows(agencies)


#: Others keeping state from each service and agency record (the evaluation of agencies).
service_followers: list[Follower] = []
agency_followers: list[Follower] = []


class _Changed:
    flag = False


_changed = _Changed()


def _newer(current: list[object] | None, revision: int) -> bool:
    return current is None or int(current[-1]) <= revision  # type: ignore[call-overload]


@app.agent(services_topic)
async def follow_services(stream: faust.StreamT[bytes]) -> None:
    async for event in stream.events():
        with whole_batch_or_none():
            envelope = await decoded(event)
            if envelope is None or not isinstance(envelope.payload, ServiceRecorded):
                continue
            service = envelope.payload
            if _newer(services.get(service.service_id), service.revision):
                state = adoption.ServiceState.of(service)
                stored = [state.agency, state.maturity, state.published, state.revision]
                mirror.keep(services, service.service_id, stored)
            for follow in service_followers:
                follow(envelope, event)


@app.agent(agencies_topic)
async def follow_agencies(stream: faust.StreamT[bytes]) -> None:
    async for event in stream.events():
        with whole_batch_or_none():
            envelope = await decoded(event)
            if envelope is None or not isinstance(envelope.payload, AgencyRecorded):
                continue
            agency = envelope.payload
            if _newer(agencies.get(agency.code), agency.revision):
                state = adoption.AgencyState.of(agency)
                stored = [
                    state.active,
                    state.window_connected,
                    state.national,
                    "national",
                    state.revision,
                ]
                mirror.keep(agencies, agency.code, stored)
            for follow in agency_followers:
                follow(envelope, event)


def figures(now: datetime) -> list[Figure]:
    # Both views asked, so neither keeps a change for later.
    touched = [merged_services.take_touched(), merged_agencies.take_touched()]
    if not (any(touched) or _changed.flag):
        return []
    _changed.flag = False
    service_states = [
        adoption.ServiceState(str(a), int(m), bool(p), int(r))
        for a, m, p, r in merged_services.values()
    ]
    agency_states = [_agency_state(code, stored) for code, stored in merged_agencies.items()]
    return adoption.figures(service_states, agency_states, exchange.users_this_quarter(now), now)


def _agency_state(code: str, stored: list[object]) -> adoption.AgencyState:
    active, window, *rest = stored
    national = rest[0] if len(rest) == 3 and rest[1] == "national" else True
    return adoption.AgencyState(
        code, bool(active), bool(national), bool(window), int(str(rest[-1]))
    )


def _mark_all_changed() -> None:
    _changed.flag = True


# An agency's first use of the exchange this quarter changes who counts as connected.
exchange.on_new_user = _mark_all_changed


register(Source("adoption", AdoptionMetricUpdated, figures, _mark_all_changed))
