"""The traffic simulator against the whole running platform, as `make up` starts it.

Its actors use only the services' public doors (identity's, the catalog's and the
exchange's HTTP APIs, the exchange client library, the SMS topic a phone stands for),
and what they do must come out of the real services: deliveries the catalog accepted,
citizens identity authenticated, exchange transactions answered.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.request
from collections.abc import Callable
from typing import Any, get_args

import pytest

from infra.platform import SERVICE_PROCESSES, LocalPlatform
from shared.events.metrics import ProgressStatus
from shared.topics import Topic, channel
from simulator.app import SERVICES
from tests.groups import until_settled
from tests.kcat import kcat
from tests.slots import e2e_ports

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

PORTS = e2e_ports()


def _records(platform: LocalPlatform, topic: str, principal: str = "admin") -> list[dict[str, Any]]:
    credentials = str(platform.credentials_file(principal))
    args = ("-F", credentials, "-C", "-t", topic, "-o", "beginning", "-e", "-q")
    out = kcat(*args, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _eventually(
    platform: LocalPlatform,
    topic: str,
    found: Callable[[dict[str, Any]], bool],
    timeout: float,
    principal: str = "admin",
) -> int:
    deadline = time.monotonic() + timeout
    while True:
        count = sum(1 for record in _records(platform, topic, principal) if found(record))
        if count or time.monotonic() > deadline:
            return count
        time.sleep(2)


def _health() -> dict[str, Any]:
    url = f"http://127.0.0.1:{PORTS.simulator}/health"
    with urllib.request.urlopen(url, timeout=5) as response:
        body: dict[str, Any] = json.loads(response.read())
        return body


def test_simulated_traffic_goes_through_the_real_services(platform: LocalPlatform) -> None:
    # `up` returns once the reference register's agencies' channels exist, but the
    # catalog reads an agency's deliveries only once its group has found that channel (a
    # metadata refresh and a rebalance later). That is provisioning; the deliveries'
    # window starts after it.
    agencies = sorted({agency for agency, _ in SERVICES})
    deliveries = [channel(Topic.AGENCY_DELIVERIES, agency) for agency in agencies]
    asyncio.run(until_settled(platform.kafka_admin, "catalog", deliveries, timeout=150))
    recorded = _eventually(
        platform,
        "catalog.deliveries",
        lambda r: (
            r.get("type") == "DeliveryRecorded"
            and (r["payload"].get("agency"), r["payload"].get("service_id")) in SERVICES
        ),
        timeout=90,
    )
    authenticated = _eventually(
        platform,
        "identity.authentications",
        lambda r: r.get("type") == "CitizenAuthenticated",
        timeout=60,
    )
    answered = _eventually(
        platform,
        "exchange.transactions",
        lambda r: (
            r.get("type") == "TransactionRecorded" and r["payload"].get("outcome") == "answered"
        ),
        timeout=60,
    )
    health = _health()

    assert recorded > 0, health
    assert authenticated > 0, health
    assert answered > 0, health
    assert health["wired"] == {
        "report_delivery": True,
        "sign_in": True,
        "request_data": True,
        "register_catalog": True,
    }
    assert health["working"] == {
        "register_catalog": "working",
        "sign_in": "working",
        "request_data": "working",
        "report_provinces": "working",
    }


def test_an_analyst_reads_where_targets_stand_and_how_agencies_rank_with_kcat(
    platform: LocalPlatform,
) -> None:
    # A stranger to the code: kcat with the analyst's credentials, each record plain JSON.
    on_track_or_not = _eventually(
        platform,
        "metrics.programme",
        lambda r: (
            r.get("type") == "TargetProgressUpdated"
            and r["payload"]["status"] in get_args(ProgressStatus)
            and r["payload"]["target_value"] is not None
        ),
        timeout=90,
        principal="analyst",
    )
    ranked = _eventually(
        platform,
        "metrics.evaluations",
        lambda r: (
            r.get("type") == "AgencyEvaluated"
            and re.fullmatch(r"[0-9]{4}-Q[1-4]", r["payload"]["quarter"]) is not None
            and isinstance(r["payload"]["measures"], list)
        ),
        timeout=120,
        principal="analyst",
    )
    assert on_track_or_not > 0, _log_tail(platform, "metrics-worker")
    assert ranked > 0, _log_tail(platform, "metrics-worker")


def _api_totals(prefix: str) -> dict[str, float]:
    """All-time totals (no dimensions) of the figures under `prefix`, from the metrics API."""
    url = (
        f"http://127.0.0.1:{PORTS.metrics}/api/metrics"
        f"?prefix={prefix}&granularity=all_time&dimensions="
    )
    with urllib.request.urlopen(url, timeout=5) as response:
        figures = json.loads(response.read())["figures"]
    return {figure["metric"]: float(figure["value"]) for figure in figures}


def _log_tail(platform: LocalPlatform, name: str) -> str:
    [process] = [s for s in SERVICE_PROCESSES if s.name == name]
    return f"--- {name} log:\n{platform.process(process).log_tail(60)}"


def test_the_real_services_events_become_figures_on_topics_and_in_the_api(
    platform: LocalPlatform,
) -> None:
    wanted = {
        "metrics.deliveries": "deliveries.count",
        "metrics.identity": "identity.people_authenticated",
        "metrics.exchange": "exchange.transactions",
    }

    def figure_of(metric: str) -> Callable[[dict[str, Any]], bool]:
        def matches(record: dict[str, Any]) -> bool:
            payload = record.get("payload", {})
            return bool(payload.get("metric") == metric and payload.get("value", 0) > 0)

        return matches

    for topic, metric in wanted.items():
        published = _eventually(platform, topic, figure_of(metric), timeout=90)
        assert published > 0, (
            f"no {metric} figure on {topic}\n{_log_tail(platform, 'metrics-worker')}"
        )

    deadline = time.monotonic() + 60
    while True:
        totals = {
            **_api_totals("deliveries."),
            **_api_totals("identity."),
            **_api_totals("exchange."),
        }
        if all(totals.get(m, 0) > 0 for m in wanted.values()) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert all(totals.get(m, 0) > 0 for m in wanted.values()), (
        f"{totals}\n{_log_tail(platform, 'metrics')}"
    )
